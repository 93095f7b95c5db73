package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

// Down removes exactly the cluster called name: every VM that is one of its
// nodes (CLUS1-NN, never CLUS10-NN) and its state. Removing a cluster that
// does not exist is not an error; it reports what it removed.
func Down(ctx context.Context, p provider.Provider, stateDir, name string, log io.Writer) ([]string, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	vms, err := nodesOf(ctx, p, name)
	if err != nil {
		return nil, fmt.Errorf("removing %s: %w", name, err)
	}
	dir := filepath.Join(ClustersDir(stateDir), name)
	var removed []string
	for _, v := range vms {
		removed = append(removed, v.Name)
	}
	if _, err := os.Stat(dir); err == nil {
		removed = append(removed, "state "+dir)
	}
	if err := destroy(ctx, p, name, dir, log); err != nil {
		return nil, err
	}
	os.Remove(dir + ".lock")
	return removed, nil
}

// ClusterStatus is what the harness knows about a cluster on this host.
type ClusterStatus struct {
	Name       string
	Provider   string
	Nodes      []provider.Info
	Owner      int
	OwnerAlive bool
	Persistent bool
	Ready      bool
	// Stale: its owner died and it was not meant to outlive it, or died
	// before it was ever ready (a `bcmtest up` killed mid-join).
	Stale bool
}

// List returns every cluster known from the state directory and the
// provider's VMs (VMs without a record are grouped by their group name).
func List(ctx context.Context, p provider.Provider, stateDir string) ([]ClusterStatus, error) {
	byName := map[string]*ClusterStatus{}
	entries, _ := os.ReadDir(ClustersDir(stateDir))
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		rec, err := loadClusterRecord(filepath.Join(ClustersDir(stateDir), e.Name()))
		if err != nil {
			byName[e.Name()] = &ClusterStatus{Name: e.Name(), Stale: true}
			continue
		}
		alive := state.ProcessAlive(rec.Owner) && rec.Owner != 0
		byName[rec.Name] = &ClusterStatus{Name: rec.Name, Provider: rec.Provider, Owner: rec.Owner, OwnerAlive: alive,
			Persistent: rec.Persistent, Ready: rec.Ready, Stale: !alive && (!rec.Persistent || !rec.Ready)}
	}
	vms, err := p.List(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("listing VMs: %w", err)
	}
	for _, v := range vms {
		cs := byName[v.Group]
		if cs == nil {
			// Without a record, only a VM whose recorded owner died is
			// stale; an unknown owner (0) may be someone's on purpose.
			alive := v.Owner != 0 && state.ProcessAlive(v.Owner)
			cs = &ClusterStatus{Name: v.Group, Provider: v.Provider, Owner: v.Owner, OwnerAlive: alive, Stale: v.Owner != 0 && !alive, Persistent: v.Owner == 0}
			byName[v.Group] = cs
		}
		cs.Nodes = append(cs.Nodes, v)
	}
	var out []ClusterStatus
	for _, cs := range byName {
		out = append(out, *cs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// SweepStale removes every cluster whose owning process died without
// tearing it down (a crash, SIGKILL), and reports what it removed.
// Clusters made to outlive their process (bcmtest up) are left alone.
func SweepStale(ctx context.Context, p provider.Provider, stateDir string, log io.Writer) ([]string, error) {
	all, err := List(ctx, p, stateDir)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, cs := range all {
		if !cs.Stale {
			continue
		}
		dir := filepath.Join(ClustersDir(stateDir), cs.Name)
		lock, err := state.TryLock(dir + ".lock")
		if err != nil {
			continue // a live process holds it after all
		}
		logf(log, "sweep: removing %s left by dead process %d (%d VM(s))", cs.Name, cs.Owner, len(cs.Nodes))
		derr := destroy(ctx, p, cs.Name, dir, log)
		lock.Unlock()
		if derr != nil {
			errs = append(errs, derr)
			continue
		}
		os.Remove(dir + ".lock")
		var vms []string
		for _, n := range cs.Nodes {
			vms = append(vms, n.Name)
		}
		removed = append(removed, fmt.Sprintf("%s (VMs: %s)", cs.Name, strings.Join(vms, ", ")))
	}
	return removed, errors.Join(errs...)
}
