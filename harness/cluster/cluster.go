package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	lxd "github.com/canonical/lxd/client"
	"golang.org/x/sync/errgroup"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

// Member is one node of a running cluster.
type Member struct {
	Name string
	// Address is the private-segment IP that LXD and peers use.
	Address string
	// Endpoint is a host-reachable host:port for the node's LXD API.
	Endpoint string
	Info     provider.Info
}

// Timings are per-phase wall times of Up.
//
// Formation overlaps the boots: Launch is when the last node's cloud-init
// was done, BootstrapAt when the bootstrap finished and Formed when the
// last member joined, all from the first launch; Launch > BootstrapAt
// shows the overlap.
type Timings struct {
	Image       time.Duration            // VM image and booted snapshot: built, or looked up
	Launch      time.Duration            // all VMs started and cloud-init done
	Booted      map[string]time.Duration // per node: launch start to its cloud-init done
	CloudInit   map[string]time.Duration // per node, from cloud-init's own status
	Bootstrap   time.Duration
	BootstrapAt time.Duration
	Joins       map[string]time.Duration // per member, token to Online
	Formed      time.Duration
	Ready       time.Duration // roles settled after the last join
	Total       time.Duration
}

func newTimings() Timings {
	return Timings{Booted: map[string]time.Duration{}, CloudInit: map[string]time.Duration{}, Joins: map[string]time.Duration{}}
}

// String renders timings on one line for logs and reports.
func (t Timings) String() string {
	var joins []string
	for n, d := range t.Joins {
		joins = append(joins, fmt.Sprintf("%s=%s", n, d.Round(time.Second)))
	}
	sort.Strings(joins)
	var booted []string
	for n, d := range t.Booted {
		booted = append(booted, fmt.Sprintf("%s@%s", n, d.Round(time.Second)))
	}
	sort.Strings(booted)
	return fmt.Sprintf("image %s, launch+cloud-init %s [%s], bootstrap %s (done @%s), joins [%s], formed @%s, ready %s, total %s",
		t.Image.Round(100*time.Millisecond), t.Launch.Round(time.Second), strings.Join(booted, " "), t.Bootstrap.Round(time.Second), t.BootstrapAt.Round(time.Second),
		strings.Join(joins, " "), t.Formed.Round(time.Second), t.Ready.Round(time.Second), t.Total.Round(time.Second))
}

// Step is one named step run on the formed cluster after Up (the workload
// suite's instance image import, its instance network) and how long it took.
type Step struct {
	Name string
	Took time.Duration
}

// StepsString renders steps on one line, in the order they ran.
func StepsString(steps []Step) string {
	var parts []string
	for _, st := range steps {
		parts = append(parts, fmt.Sprintf("%s %s", st.Name, st.Took.Round(100*time.Millisecond)))
	}
	return strings.Join(parts, ", ")
}

// Cluster is a handle to a running cluster. Destroy is idempotent.
type Cluster struct {
	spec    resolved
	p       provider.Provider
	rec     *record
	creds   Credentials
	members []Member
	timings Timings
	// attached: the handle is to a cluster this run reused or opened, not
	// created; it never tears it down, and changes its record only by a
	// Grow or Shrink.
	attached bool
	// useLock is the cluster's lock an attached handle holds while the
	// run uses the cluster; Destroy and Keep release it.
	useLock *state.Lock

	// change serialises Grow and Shrink on one handle; since is when
	// the running one started (progress events count from it).
	change sync.Mutex
	since  time.Time

	mu        sync.Mutex
	destroyed bool
	steps     []Step
}

// Attached reports whether the handle is to an existing cluster this run
// reused rather than created; Destroy leaves such a cluster up.
func (c *Cluster) Attached() bool { return c.attached }

// Name is the cluster's name.
func (c *Cluster) Name() string { return c.spec.Name }

// Spec is the spec the cluster was made from, with defaults and any sizing
// applied.
func (c *Cluster) Spec() Spec {
	s := c.spec.Spec
	s.Memory = fmt.Sprintf("%dM", c.spec.MemoryMiB)
	return s
}

// Members lists the nodes, bootstrap first.
func (c *Cluster) Members() []Member { return append([]Member(nil), c.members...) }

// Provider is the provider the cluster runs on.
func (c *Cluster) Provider() provider.Provider { return c.p }

// Timings returns the per-phase timings of Up, or of the last Grow.
func (c *Cluster) Timings() Timings { return c.timings }

// RecordStep adds a step run on the formed cluster (an image import, a
// network) after Up's phases. Safe for concurrent use.
func (c *Cluster) RecordStep(name string, took time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.steps = append(c.steps, Step{Name: name, Took: took})
}

// Steps returns the steps recorded so far, in order (a copy).
func (c *Cluster) Steps() []Step {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Step(nil), c.steps...)
}

// RecordedCloudInit returns the cloud-init file the cluster was made with,
// as recorded with it: for a reused cluster, the file its specs must judge
// it by, whatever this run was given. It matches ErrNoRecordedCloudInit
// for a cluster made before files were recorded.
func (c *Cluster) RecordedCloudInit() (CloudInitFile, error) {
	return c.rec.userData()
}

// Credentials returns the harness's client certificate and the pinned
// cluster certificate (for `lxc remote add`).
func (c *Cluster) Credentials() Credentials { return c.creds }

// StateDir is where the cluster's record and client certificate live.
func (c *Cluster) StateDir() string { return c.rec.dir }

// Node returns the node called name.
func (c *Cluster) Node(name string) (*Node, error) {
	for _, m := range c.members {
		if m.Name == name {
			return &Node{Member: m, p: c.p}, nil
		}
	}
	return nil, fmt.Errorf("cluster %s has no node %s", c.Name(), name)
}

// Node runs commands on one member.
type Node struct {
	Member
	p provider.Provider
}

// Exec runs argv as root on the node; a non-zero exit is an error.
func (n *Node) Exec(ctx context.Context, argv ...string) (string, error) {
	return provider.Run(ctx, n.p, n.Name, argv...)
}

// ExecResult runs argv and returns the raw result (exit code included).
func (n *Node) ExecResult(ctx context.Context, argv ...string) (provider.ExecResult, error) {
	return n.p.Exec(ctx, n.Name, provider.ExecInput{Argv: argv})
}

// LXD returns a client for the cluster, connected to the bootstrap node.
func (c *Cluster) LXD(ctx context.Context) (lxd.InstanceServer, error) {
	return c.LXDOn(ctx, c.members[0].Name)
}

// LXDOn connects directly to member name's API, pinning the cluster
// certificate; it proves that member answers for itself.
func (c *Cluster) LXDOn(ctx context.Context, name string) (lxd.InstanceServer, error) {
	for _, m := range c.members {
		if m.Name == name {
			return connect(ctx, m.Endpoint, c.creds)
		}
	}
	return nil, fmt.Errorf("cluster %s has no node %s", c.Name(), name)
}

// LXDTarget returns a client whose requests target member name, routed
// through the bootstrap node (?target=).
func (c *Cluster) LXDTarget(ctx context.Context, name string) (lxd.InstanceServer, error) {
	s, err := c.LXD(ctx)
	if err != nil {
		return nil, err
	}
	return s.UseTarget(name), nil
}

// connect's first request (GET /1.0) ends with ctx: a member that accepts
// and never answers must not hold the caller past its deadline. The
// client's later requests are not tied to ctx (LXD's client would keep it
// for every request): Up hands the bootstrap's client from the phase that
// made it to the joins that follow.
func connect(ctx context.Context, endpoint string, cr Credentials) (lxd.InstanceServer, error) {
	s, err := lxd.ConnectLXDWithContext(ctx, "https://"+endpoint, &lxd.ConnectionArgs{
		TLSClientCert: cr.ClientCert, TLSClientKey: cr.ClientKey, TLSServerCert: cr.ClusterCert,
		UserAgent: "bcmtest",
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to LXD at %s: %w", endpoint, err)
	}
	if wc, ok := s.(interface {
		WithContext(context.Context) lxd.InstanceServer
	}); ok {
		s = wc.WithContext(context.WithoutCancel(ctx))
	}
	return s, nil
}

// Destroy deletes every VM of the cluster and its state. It is idempotent
// and also removes VMs of this exact name that the handle did not know. A
// cluster this run attached to is left up, and its lock released. It takes the cluster's lock
// (a *BusyError if another process holds it), except in Up's own teardown
// after a failure, where Up already holds it.
func (c *Cluster) Destroy(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.destroyed {
		return nil
	}
	if c.attached {
		c.useLock.Unlock()
		logf(c.spec.Log, "%s: attached, not created by this run; leaving it up", c.Name())
		return nil
	}
	lock, err := lockUnlessHeldHere(c.rec.dir, c.Name())
	if err != nil {
		return err
	}
	defer lock.Unlock()
	ctx, cancel := context.WithTimeout(ctx, c.spec.Intervals.Teardown)
	defer cancel()
	logf(c.spec.Log, "%s: tearing down", c.Name())
	if _, err := destroy(ctx, c.p, c.spec.Name, c.rec.dir, c.spec.Log); err != nil {
		return err
	}
	c.destroyed = true
	return nil
}

// destroy removes every VM that is exactly a node of name (or in its
// group), then the cluster's state directory dir when dir is not "". It
// returns the VMs it deleted.
func destroy(ctx context.Context, p provider.Provider, name, dir string, log interface{ Write([]byte) (int, error) }) ([]string, error) {
	if name == "" {
		// Every VM without a group would match.
		return nil, errors.New("destroying a cluster: no cluster name given")
	}
	if dir != "" {
		if err := checkStateDir(name, dir); err != nil {
			return nil, fmt.Errorf("destroying %s: %w", name, err)
		}
	}
	vms, err := p.List(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("destroying %s: listing VMs: %w", name, err)
	}
	var mine []provider.Info
	for _, vm := range vms {
		if isMember(vm.Name, vm.Group, name) {
			mine = append(mine, vm)
		}
	}
	// Every deletion runs to its end: one VM failing to go is no reason to
	// leave the others, so each keeps its own error and all are reported.
	errs := make([]error, len(mine))
	var g errgroup.Group
	for i, vm := range mine {
		g.Go(func() error {
			if err := p.Delete(ctx, vm.Name); err != nil {
				errs[i] = fmt.Errorf("destroying %s: deleting %s: %w", name, vm.Name, err)
				return errs[i]
			}
			logf(log, "%s: deleted %s", name, vm.Name)
			return nil
		})
	}
	g.Wait() // the first error; errs holds them all
	var deleted []string
	for i, vm := range mine {
		if errs[i] == nil {
			deleted = append(deleted, vm.Name)
		}
	}
	sort.Strings(deleted)
	err = errors.Join(errs...)
	if err == nil && dir != "" {
		if rerr := os.RemoveAll(dir); rerr != nil {
			err = fmt.Errorf("destroying %s: removing state: %w", name, rerr)
		}
	}
	return deleted, err
}

// checkStateDir makes sure dir is the state directory of cluster name
// (STATE/clusters/NAME with a valid NAME) before anything removes it: an
// empty or odd name must never turn into removing clusters/ itself, with
// every other cluster's record and client key.
func checkStateDir(name, dir string) error {
	if err := ValidateName(name); err != nil {
		return fmt.Errorf("refusing to remove %s: %w", dir, err)
	}
	clean := filepath.Clean(dir)
	if filepath.Base(clean) != name || filepath.Base(filepath.Dir(clean)) != "clusters" {
		return fmt.Errorf("refusing to remove %s: not the state directory of cluster %s", dir, name)
	}
	return nil
}

func logf(w interface{ Write([]byte) (int, error) }, format string, args ...any) {
	if w == nil {
		return
	}
	fmt.Fprintf(w, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
