package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

// OpenInput names a kept cluster to change (Grow, Shrink) from a process
// that did not make it, such as `bcmtest grow` after `bcmtest up`.
type OpenInput struct {
	Name     string
	Provider provider.Provider
	// StateDir holds the cluster's record; required.
	StateDir string
	// CloudInit is the user-data for nodes a Grow adds when the record
	// holds none (a cluster made before files were recorded); the recorded
	// file always wins.
	CloudInit     []byte
	CloudInitName string
	// Intervals bounds every wait; zero means wait.Load.
	Intervals wait.Intervals
	Log       io.Writer
	OnEvent   func(Event)
	OnPhase   func(node string) func(provider.BootPhase)
}

// UnavailableError says why a cluster cannot be opened for a change.
// Unknown is set when nothing of it exists: no record and no VM.
type UnavailableError struct {
	Cluster string
	Reason  string
	Unknown bool
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("cluster %s: %s", e.Cluster, e.Reason)
}

// Open returns a handle to the kept cluster in.Name, found the way a
// reuse finds it (its record in the state directory, its VMs on the
// provider it was made with, left up on purpose, its owner gone), with
// the nodes' shape and cloud-init file from its record. The handle holds
// the cluster's lock until Release, so no `down`, reuse or other change
// runs meanwhile. A cluster that cannot be opened is an
// *UnavailableError; a locked one a *BusyError.
func Open(ctx context.Context, in OpenInput) (*Cluster, error) {
	if err := ValidateName(in.Name); err != nil {
		return nil, err
	}
	if in.Provider == nil || in.StateDir == "" {
		return nil, fmt.Errorf("opening %s: a provider and a state directory are required", in.Name)
	}
	dir := filepath.Join(ClustersDir(in.StateDir), in.Name)
	reason, unknown, err := keptProblem(ctx, in.Provider, in.StateDir, in.Name)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", in.Name, err)
	}
	if reason != "" {
		return nil, &UnavailableError{Cluster: in.Name, Reason: reason, Unknown: unknown}
	}
	lock, err := lockCluster(dir, in.Name)
	if err != nil {
		return nil, err
	}
	c, err := open(ctx, in, dir)
	if err != nil {
		lock.Unlock()
		return nil, fmt.Errorf("opening %s: %w", in.Name, err)
	}
	c.useLock = lock
	return c, nil
}

func open(ctx context.Context, in OpenInput, dir string) (*Cluster, error) {
	rec, err := loadClusterRecord(dir)
	if err != nil {
		return nil, err
	}
	vms, err := nodesOf(ctx, in.Provider, in.Name)
	if err != nil {
		return nil, err
	}
	spec := Spec{Name: in.Name, Members: len(vms) - 1, Provider: in.Provider, StateDir: in.StateDir, PoolName: rec.PoolName,
		Intervals: in.Intervals, Log: in.Log, OnEvent: in.OnEvent, OnPhase: in.OnPhase, Persistent: rec.Persistent,
		CloudInit: in.CloudInit, CloudInitName: in.CloudInitName}
	ci, err := rec.userData()
	switch {
	case err == nil:
		spec.CloudInit, spec.CloudInitName = ci.Data, ci.Name
	case !errors.Is(err, ErrNoRecordedCloudInit):
		return nil, err
	}
	if s := rec.Shape; s != nil {
		spec.CPUs, spec.Memory = s.CPUs, fmt.Sprintf("%dM", s.MemoryMiB)
		spec.Disk, spec.PoolSize = fmt.Sprintf("%dG", s.DiskGiB), fmt.Sprintf("%dG", s.PoolGiB)
	}
	r, err := spec.resolve(Host(in.StateDir))
	if err != nil {
		return nil, fmt.Errorf("the recorded spec: %w", err)
	}
	if s := rec.Shape; s != nil {
		// The nodes already run at the recorded size, whatever the host
		// would size a new cluster down to.
		r.CPUs, r.MemoryMiB = s.CPUs, s.MemoryMiB
	}
	c := &Cluster{spec: r, p: in.Provider, rec: rec, timings: newTimings(), attached: true}
	cert, key, err := loadOrCreateClientCert(dir, in.Name)
	if err != nil {
		return nil, err
	}
	cc, err := os.ReadFile(filepath.Join(dir, "cluster.crt"))
	if err != nil {
		return nil, err
	}
	c.creds = Credentials{ClientCert: cert, ClientKey: key, ClusterCert: string(cc)}
	var ms []Member
	for _, v := range vms {
		ms = append(ms, Member{Name: v.Name, Address: v.PrivateIP, Endpoint: v.Endpoint(lxdPort), Info: v})
	}
	c.setMembers(ms)
	return c, nil
}

// Release lets go of a cluster this process opened or reused, leaving it
// up: the same as Destroy on such a handle.
func (c *Cluster) Release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.attached && c.useLock != nil && !c.destroyed {
		c.useLock.Unlock()
		c.destroyed = true
	}
}
