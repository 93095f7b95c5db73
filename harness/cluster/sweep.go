package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

// Down removes exactly the cluster called name, kept or not: every VM that
// is one of its nodes (CLUS1-NN, never CLUS10-NN) and its state. It takes
// the cluster's lock first, so it returns a *BusyError instead of pulling a
// cluster from under the process bringing it up or tearing it down.
// Before deleting, it checks every running node's kernel; findings come
// back as a *KernelFindingsError after the cluster is removed.
// Removing a cluster that does not exist is not an error; it reports what
// it removed. A cluster recorded as made by another provider than p is
// refused with a *ProviderMismatchError, before anything is removed.
func Down(ctx context.Context, p provider.Provider, stateDir, name string, log io.Writer) ([]string, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	dir := filepath.Join(ClustersDir(stateDir), name)
	lock, err := lockCluster(dir, name)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	rec, err := loadClusterRecord(dir)
	if err == nil && rec.Provider != "" && rec.Provider != p.Name() {
		return nil, &ProviderMismatchError{Cluster: name, Recorded: rec.Provider, Current: p.Name()}
	}
	_, serr := os.Stat(dir)
	kerr := checkKernelsBeforeDown(ctx, p, name, log)
	removed, err := destroy(ctx, p, name, dir, log)
	if err != nil {
		return removed, errors.Join(err, kerr)
	}
	if serr == nil {
		removed = append(removed, "state "+dir)
	}
	return removed, kerr
}

// ProviderMismatchError says a cluster was made with another provider than
// the one at hand: its VMs are that provider's, so removing it through
// this one would delete nothing of it and then its state, client key
// included, leaving its VMs running.
type ProviderMismatchError struct {
	Cluster, Recorded, Current string
}

func (e *ProviderMismatchError) Error() string { return "removing " + e.Cluster + ": " + e.reason() }

func (e *ProviderMismatchError) reason() string {
	return fmt.Sprintf("it was made with provider %s, not %s; remove it with `bcmtest down %s --provider %s`",
		e.Recorded, e.Current, e.Cluster, e.Recorded)
}

// RecordedProvider returns the provider cluster name was made with, from
// its record in stateDir; "" when it has no record or names none.
func RecordedProvider(stateDir, name string) (string, error) {
	return recorded(stateDir, name, func(r *record) string { return r.Provider })
}

// RecordedImage returns the Debian release cluster name's nodes run, from
// its record in stateDir; "" when it has no record or names none.
func RecordedImage(stateDir, name string) (string, error) {
	return recorded(stateDir, name, func(r *record) string { return r.Image })
}

// recorded reads one field of cluster name's record; "" without a record.
func recorded(stateDir, name string, field func(*record) string) (string, error) {
	if err := ValidateName(name); err != nil {
		return "", err
	}
	rec, err := loadClusterRecord(filepath.Join(ClustersDir(stateDir), name))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return field(rec), nil
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
	// Kept is set when the cluster was left up on purpose, and why.
	Kept *KeptMark
	// Stale: its owner died and it was neither kept nor meant to outlive
	// it, or died before it was ever ready (a `bcmtest up` killed mid-join).
	Stale bool
	// Problem says why the harness cannot judge the cluster (an unreadable
	// record, VMs without a cluster name); sweeps leave it alone.
	Problem string
}

// List returns every cluster known from the state directory and the
// provider's VMs. VMs without a record are grouped by their group name, or
// by the cluster their node name (NAME-NN) says when they have no group.
func List(ctx context.Context, p provider.Provider, stateDir string) ([]ClusterStatus, error) {
	byName := map[string]*ClusterStatus{}
	entries, err := os.ReadDir(ClustersDir(stateDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("listing clusters: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue // NAME.lock
		}
		dir := filepath.Join(ClustersDir(stateDir), e.Name())
		if err := ValidateName(e.Name()); err != nil {
			byName[e.Name()] = &ClusterStatus{Name: e.Name(), Problem: fmt.Sprintf("%s is not a cluster's state directory: %v", dir, err)}
			continue
		}
		rec, err := loadClusterRecord(dir)
		if err != nil {
			// Unknown is not stale: a record being written, or one a
			// person should look at, is never grounds for removal.
			byName[e.Name()] = &ClusterStatus{Name: e.Name(), Problem: "unreadable record: " + err.Error()}
			continue
		}
		byName[rec.Name] = recordStatus(rec)
	}
	vms, err := p.List(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("listing VMs: %w", err)
	}
	for _, v := range vms {
		name := v.Group
		if name == "" {
			name, _, _ = splitNodeName(v.Name)
		}
		cs := byName[name]
		if cs == nil {
			// Without a record, only a VM whose recorded owner died is
			// stale; an unknown owner (0) may be someone's on purpose.
			alive := v.Owner != 0 && state.ProcessAlive(v.Owner)
			cs = &ClusterStatus{Name: name, Provider: v.Provider, Owner: v.Owner, OwnerAlive: alive, Stale: v.Owner != 0 && !alive, Persistent: v.Owner == 0}
			byName[name] = cs
		}
		cs.Nodes = append(cs.Nodes, v)
	}
	if cs := byName[""]; cs != nil {
		var names []string
		for _, n := range cs.Nodes {
			names = append(names, n.Name)
		}
		cs.Stale = false
		cs.Problem = fmt.Sprintf("VM(s) %s have no group and no NAME-NN node name, so no cluster to remove them with", strings.Join(names, ", "))
	}
	var out []ClusterStatus
	for _, cs := range byName {
		out = append(out, *cs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func recordStatus(rec *record) *ClusterStatus {
	alive := rec.Owner != 0 && state.ProcessAlive(rec.Owner)
	return &ClusterStatus{Name: rec.Name, Provider: rec.Provider, Owner: rec.Owner, OwnerAlive: alive,
		Persistent: rec.Persistent, Ready: rec.Ready, Kept: rec.Kept,
		Stale: !alive && rec.Kept == nil && (!rec.Persistent || !rec.Ready)}
}

// SweepStale removes every cluster whose owning process died without
// tearing it down (a crash, SIGKILL), and reports what it removed.
// Clusters made to outlive their process (bcmtest up) or kept on purpose
// are left alone, and so is anything it cannot judge (logged to log).
func SweepStale(ctx context.Context, p provider.Provider, stateDir string, log io.Writer) ([]string, error) {
	all, err := List(ctx, p, stateDir)
	if err != nil {
		return nil, fmt.Errorf("sweeping: %w", err)
	}
	var removed []string
	var errs []error
	for _, cs := range all {
		if cs.Problem != "" {
			logf(log, "sweep: leaving %q alone: %s", cs.Name, cs.Problem)
			continue
		}
		if !cs.Stale {
			continue
		}
		r, err := sweepOne(ctx, p, stateDir, cs, log)
		if err != nil {
			errs = append(errs, fmt.Errorf("sweeping %s: %w", cs.Name, err))
		}
		if r != "" {
			removed = append(removed, r)
		}
	}
	return removed, errors.Join(errs...)
}

// sweepOne removes one cluster List found stale, after taking its lock and
// judging it again: its owner may have kept it since.
func sweepOne(ctx context.Context, p provider.Provider, stateDir string, cs ClusterStatus, log io.Writer) (string, error) {
	if cs.Name == "" || cs.Name == "." || cs.Name == ".." || strings.ContainsAny(cs.Name, `/\`) {
		logf(log, "sweep: leaving VMs of group %q alone: not a name the harness gives", cs.Name)
		return "", nil
	}
	dir := filepath.Join(ClustersDir(stateDir), cs.Name)
	lock, err := lockCluster(dir, cs.Name)
	var be *BusyError
	if errors.As(err, &be) {
		logf(log, "sweep: leaving %s alone: %v", cs.Name, be)
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer lock.Unlock()
	rec, err := loadClusterRecord(dir)
	switch {
	case err == nil:
		if now := recordStatus(rec); !now.Stale {
			return "", nil
		}
		if rec.Provider != "" && rec.Provider != p.Name() {
			pm := &ProviderMismatchError{Cluster: cs.Name, Recorded: rec.Provider, Current: p.Name()}
			logf(log, "sweep: leaving %s alone: %s", cs.Name, pm.reason())
			return "", nil
		}
	case errors.Is(err, fs.ErrNotExist):
		if _, serr := os.Stat(dir); serr == nil {
			logf(log, "sweep: leaving %s alone: %s has no cluster.json", cs.Name, dir)
			return "", nil
		}
		// VMs only; a group that is not a cluster name has no state.
		dir = ""
	default:
		logf(log, "sweep: leaving %s alone: %v", cs.Name, err)
		return "", nil
	}
	logf(log, "sweep: removing %s left by dead process %d (%d VM(s))", cs.Name, cs.Owner, len(cs.Nodes))
	deleted, err := destroy(ctx, p, cs.Name, dir, log)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s (VMs: %s)", cs.Name, strings.Join(deleted, ", ")), nil
}
