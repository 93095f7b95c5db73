package framework

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	lxd "github.com/canonical/lxd/client"
	"github.com/canonical/lxd/shared/api"
	"github.com/gruntwork-io/terratest/modules/testing"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
	"github.com/BitcoinCacheMachine/bcmtest/harness/workload"
)

// lxdFor is a client of cluster c whose requests end with ctx: a member
// that stops answering (paused) does not hold a spec past its context.
func lxdFor(ctx context.Context, c *cluster.Cluster) (lxd.InstanceServer, error) {
	srv, err := c.LXD(ctx)
	if err != nil {
		return nil, err
	}
	return workload.WithContext(ctx, srv), nil
}

// opContext bounds one LXD operation by the named plain interval.
func opContext(ctx context.Context, name string) (context.Context, context.CancelFunc) {
	GinkgoHelper()
	iv, err := Intervals().Get(name)
	Expect(err).NotTo(HaveOccurred())
	return context.WithTimeout(ctx, iv.Timeout)
}

// waitOp waits for op within the named interval, naming what it was, by
// asking LXD (workload.WaitOperation) instead of listening for the end on
// the client's event feed. It uses no Gomega, so goroutines may call it.
func waitOp(ctx context.Context, srv workload.OperationWaiter, interval string, op lxd.Operation, err error, what string) error {
	_, err = waitOpEnded(ctx, srv, interval, op, err, what)
	return err
}

// waitOpEnded is waitOp returning the operation as it ended.
func waitOpEnded(ctx context.Context, srv workload.OperationWaiter, interval string, op lxd.Operation, err error, what string) (*api.Operation, error) {
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer workload.ReleaseListener(op)
	iv, err := wait.Load()
	if err != nil {
		return nil, err
	}
	in, err := iv.Get(interval)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, in.Timeout)
	defer cancel()
	ended, err := workload.WaitOperation(ctx, srv, op.Get().ID, in.Poll)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return ended, nil
}

// ImportInstanceImageInput is the cluster the instance image goes into.
type ImportInstanceImageInput struct {
	Cluster *cluster.Cluster
	// Alias names the image for launches.
	Alias string
	// Recipe is the image to build; zero means the recipe of the nodes'
	// own Debian release (provider.Releaser), or workload.DefaultImageRecipe
	// when the provider chooses none.
	Recipe workload.ImageRecipe
}

// InstanceImageRecipe is the instance image for p's nodes: a container of
// the Debian release they run, so instances run what their host runs.
func InstanceImageRecipe(p provider.Provider) workload.ImageRecipe {
	if rel := provider.ReleaseOf(p); rel != "" {
		return workload.ImageRecipeFor(rel)
	}
	return workload.DefaultImageRecipe()
}

// ImportedImage is the instance image in the host's cache and the cluster.
type ImportedImage struct {
	workload.Image
	Alias string
	// Lookup is how long the host cache took to find (or build) it.
	Lookup time.Duration
	Import workload.ImportResult
}

// ImportInstanceImage finds the instance image in the host's artifact
// cache (building it from Debian's archive when absent, within
// image-build) and imports it into the cluster (image-import), recording
// both as steps of the cluster's timings. The image is deleted from the
// cluster when the calling node's cleanup runs, if this call uploaded it.
func ImportInstanceImage(ctx context.Context, in ImportInstanceImageInput) ImportedImage {
	GinkgoHelper()
	Expect(in.Cluster).NotTo(BeNil(), "ImportInstanceImage needs a cluster")
	r := in.Recipe
	if r.Suite == "" {
		r = InstanceImageRecipe(in.Cluster.Provider())
	}
	dirs, err := state.Default()
	Expect(err).NotTo(HaveOccurred())
	store := workload.ImageStore{Dir: filepath.Join(dirs.Cache, "images"), Progress: GinkgoWriter}
	bctx, cancel := context.WithTimeout(ctx, Intervals().ImageBuild)
	defer cancel()
	start := time.Now()
	_, lookupErr := store.Lookup(r)
	img, err := store.Get(bctx, r)
	Expect(err).NotTo(HaveOccurred(), "building or finding instance image %s in %s", r.Key(), store.Dir)
	out := ImportedImage{Image: img, Alias: in.Alias, Lookup: time.Since(start)}
	step := "instance image lookup"
	if lookupErr != nil {
		step = "instance image build"
	}
	in.Cluster.RecordStep(step, out.Lookup)
	GinkgoWriter.Printf("%s: %s %s in %s\n", in.Cluster.Name(), step, img.Key, out.Lookup.Round(time.Millisecond))

	srv, err := in.Cluster.LXD(ctx)
	Expect(err).NotTo(HaveOccurred())
	ictx, icancel := opContext(ctx, "image-import")
	defer icancel()
	out.Import, err = workload.Import(ictx, workload.ImportInput{Server: srv, Image: img, Alias: in.Alias, Progress: GinkgoWriter})
	Expect(err).NotTo(HaveOccurred(), "importing instance image %s into %s", img.Key, in.Cluster.Name())
	if out.Import.Uploaded {
		fp := out.Import.Fingerprint
		// Asked through a member at cleanup time: the node it was imported
		// through may have left the cluster since (a shrink).
		DeferCleanup(func(ctx SpecContext) {
			srv, err := in.Cluster.LXD(ctx)
			Expect(err).NotTo(HaveOccurred(), "connecting to %s to delete image %s", in.Cluster.Name(), fp[:12])
			op, err := workload.WithContext(ctx, srv).DeleteImage(fp)
			if api.StatusErrorCheck(err, 404) {
				return
			}
			Expect(waitOp(ctx, srv, "instance-op", op, err, "deleting image "+fp[:12]+" from "+in.Cluster.Name())).To(Succeed())
		})
	}
	in.Cluster.RecordStep("instance image import", out.Import.Took)
	GinkgoWriter.Printf("%s: instance image %s as %s (%s) in %s (uploaded: %v)\n", in.Cluster.Name(), img.Key, in.Alias,
		out.Import.Fingerprint[:12], out.Import.Took.Round(time.Millisecond), out.Import.Uploaded)
	return out
}

// CreateInstanceNetworkInput is the cluster and the network's name.
type CreateInstanceNetworkInput struct {
	Cluster *cluster.Cluster
	Name    string
}

// CreateInstanceNetwork creates the instance network (a macvlan on each
// member's private NIC, found on the member) through the LXD API, records
// it as a step of the cluster's timings, and deletes it at cleanup.
func CreateInstanceNetwork(ctx context.Context, in CreateInstanceNetworkInput) {
	GinkgoHelper()
	Expect(in.Cluster).NotTo(BeNil(), "CreateInstanceNetwork needs a cluster")
	start := time.Now()
	parents := map[string]string{}
	ms := in.Cluster.Members()
	nics, errs := make([]string, len(ms)), make([]error, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := in.Cluster.Node(m.Name)
			if err == nil {
				nics[i], err = workload.PrivateNIC(ctx, n)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, m := range ms {
		Expect(errs[i]).NotTo(HaveOccurred())
		parents[m.Name] = nics[i]
	}
	srv, err := in.Cluster.LXD(ctx)
	Expect(err).NotTo(HaveOccurred())
	_, _, getErr := workload.WithContext(ctx, srv).GetNetwork(in.Name)
	if getErr != nil {
		// Registered before LXD is asked: CreateNetwork deletes what it
		// began when it fails, this deletes what it made.
		DeferCleanup(func(ctx SpecContext) {
			_, err := RetryTransientE(ctx, GinkgoT(), "deleting network "+in.Name, func() (string, error) {
				srv, err := in.Cluster.LXD(ctx) // a member now: the first may have left
				if err != nil {
					return "", err
				}
				err = workload.WithContext(ctx, srv).DeleteNetwork(in.Name)
				if api.StatusErrorCheck(err, 404) {
					return "", nil
				}
				return "", err
			})
			Expect(err).NotTo(HaveOccurred(), "deleting instance network %s from %s", in.Name, in.Cluster.Name())
		})
	}
	iv, err := Intervals().Get("instance-op")
	Expect(err).NotTo(HaveOccurred())
	Expect(workload.CreateNetwork(ctx, workload.NetworkInput{Server: srv, Name: in.Name, Parents: parents, CleanupTimeout: iv.Timeout})).To(Succeed())
	took := time.Since(start)
	in.Cluster.RecordStep("instance network", took)
	GinkgoWriter.Printf("%s: instance network %s (%s on %v) in %s\n", in.Cluster.Name(), in.Name, workload.NetworkType, parents, took.Round(time.Millisecond))
}

// InstanceSpec is one container to launch.
type InstanceSpec struct {
	Name string
	// Target is the member it is placed on.
	Target string
	// Address (CIDR) is put on its eth0 by the image's init; "" for none.
	Address string
	// Config is added to the instance's config (cluster.evacuate...).
	Config map[string]string
}

// LaunchInstancesInput is what to launch, from which image, on which network.
type LaunchInstancesInput struct {
	Cluster *cluster.Cluster
	Image   string // alias
	Network string // "" for no NIC
	// Instances are created at once (LXD runs the operations side by
	// side), then started, each on its target.
	Instances []InstanceSpec
}

// LaunchInstances creates every instance on its target member with its
// root disk in the cluster's pool (instance-op each), registers its
// deletion at cleanup as soon as LXD accepted it, starts it, and waits
// until each is Running on its target (instance-state).
func LaunchInstances(ctx context.Context, in LaunchInstancesInput) {
	GinkgoHelper()
	Expect(in.Cluster).NotTo(BeNil(), "LaunchInstances needs a cluster")
	Expect(in.Image).NotTo(BeEmpty(), "LaunchInstances needs an image alias")
	Expect(in.Instances).NotTo(BeEmpty(), "LaunchInstances needs instances")
	srv, err := lxdFor(ctx, in.Cluster)
	Expect(err).NotTo(HaveOccurred())
	pool := in.Cluster.Spec().PoolName
	for i, spec := range in.Instances {
		Expect(spec.Name).NotTo(BeEmpty(), "instance %d has no name", i)
		Expect(spec.Target).NotTo(BeEmpty(), "instance %s has no target member", spec.Name)
		// Registered before LXD is asked: an instance it half made is
		// deleted too, and one it never made is no error.
		DeferInstanceDeletion(in.Cluster, spec.Name)
	}
	// Each create is waited for in its own goroutine from the moment it
	// is accepted: LXD forgets a finished operation after a few seconds,
	// so one waited for only after another would be "not found".
	errs := make([]error, len(in.Instances))
	var wg sync.WaitGroup
	for i, spec := range in.Instances {
		cfg := map[string]string{}
		for k, v := range spec.Config {
			cfg[k] = v
		}
		if spec.Address != "" {
			cfg["environment."+workload.AddressEnv] = spec.Address
		}
		devices := map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": pool}}
		if in.Network != "" {
			devices["eth0"] = map[string]string{"type": "nic", "network": in.Network, "name": "eth0"}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			op, err := srv.UseTarget(spec.Target).CreateInstance(api.InstancesPost{
				Name: spec.Name, Type: api.InstanceTypeContainer,
				Source:      api.InstanceSource{Type: "image", Alias: in.Image},
				InstancePut: api.InstancePut{Config: cfg, Devices: devices},
			})
			errs[i] = waitOp(ctx, srv, "instance-op", op, err, fmt.Sprintf("creating instance %s on %s from %s", spec.Name, spec.Target, in.Image))
		}()
	}
	wg.Wait()
	for i := range in.Instances {
		Expect(errs[i]).NotTo(HaveOccurred())
	}
	for _, spec := range in.Instances {
		Expect(SetInstanceStateE(ctx, GinkgoT(), InstanceStateInput{Cluster: in.Cluster, Instance: spec.Name, Action: "start"})).To(Succeed())
	}
	for _, spec := range in.Instances {
		WaitForInstance(ctx, WaitForInstanceInput{Cluster: in.Cluster, Instance: spec.Name, Status: "Running", Location: spec.Target})
	}
}

// DeferInstanceDeletion registers, in the calling node, the forced stop
// and deletion of instance name; one already gone is fine.
func DeferInstanceDeletion(c *cluster.Cluster, name string) {
	DeferCleanup(func(ctx SpecContext) {
		Expect(DeleteInstanceE(ctx, GinkgoT(), DeleteInstanceInput{Cluster: c, Instance: name})).To(Succeed())
	})
}

// DeleteInstanceInput is an instance to delete.
type DeleteInstanceInput struct {
	Cluster  *cluster.Cluster
	Instance string
}

// DeleteInstanceE stops instance (forced) and deletes it with its
// snapshots; an instance that does not exist is not an error.
func DeleteInstanceE(ctx context.Context, t testing.TestingT, in DeleteInstanceInput) error {
	srv, err := lxdFor(ctx, in.Cluster)
	if err != nil {
		return err
	}
	inst, _, err := srv.GetInstance(in.Instance)
	if api.StatusErrorCheck(err, 404) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("looking up instance %s to delete it: %w", in.Instance, err)
	}
	if inst.StatusCode != api.Stopped {
		op, err := srv.UpdateInstanceState(in.Instance, api.InstanceStatePut{Action: "stop", Force: true, Timeout: -1}, "")
		if err := waitOp(ctx, srv, "instance-op", op, err, "stopping instance "+in.Instance+" to delete it"); err != nil {
			return err
		}
	}
	op, err := srv.DeleteInstance(in.Instance)
	return waitOp(ctx, srv, "instance-op", op, err, "deleting instance "+in.Instance+" from "+inst.Location)
}

// InstanceStateInput is a state change of one instance.
type InstanceStateInput struct {
	Cluster  *cluster.Cluster
	Instance string
	// Action is start, stop or restart.
	Action string
	// Force stops without waiting for the instance's init.
	Force bool
}

// SetInstanceStateE starts, stops or restarts an instance and waits for
// the operation (instance-op).
func SetInstanceStateE(ctx context.Context, t testing.TestingT, in InstanceStateInput) error {
	switch in.Action {
	case "start", "stop", "restart":
	default:
		return fmt.Errorf("instance %s: action %q must be start, stop or restart", in.Instance, in.Action)
	}
	srv, err := lxdFor(ctx, in.Cluster)
	if err != nil {
		return err
	}
	op, err := srv.UpdateInstanceState(in.Instance, api.InstanceStatePut{Action: in.Action, Force: in.Force, Timeout: -1}, "")
	return waitOp(ctx, srv, "instance-op", op, err, fmt.Sprintf("%s instance %s", in.Action, in.Instance))
}

// SetInstanceState is SetInstanceStateE that fails the test on an error.
func SetInstanceState(ctx context.Context, t testing.TestingT, in InstanceStateInput) {
	t.Helper()
	if err := SetInstanceStateE(ctx, t, in); err != nil {
		t.Fatal(err)
	}
}

// WaitForInstanceInput is the state an instance must reach.
type WaitForInstanceInput struct {
	Cluster  *cluster.Cluster
	Instance string
	// Status is LXD's: Running, Stopped...
	Status string
	// Location is the member it must be on; "" for any.
	Location string
}

// WaitForInstance polls until the instance has input.Status on
// input.Location (instance-state unless intervals are given) and returns
// the instance as LXD last reported it.
func WaitForInstance(ctx context.Context, in WaitForInstanceInput, intervals ...any) *api.Instance {
	GinkgoHelper()
	var inst *api.Instance
	Eventually(func(g Gomega) {
		srv, err := lxdFor(ctx, in.Cluster)
		g.Expect(err).NotTo(HaveOccurred())
		inst, _, err = srv.GetInstance(in.Instance)
		g.Expect(err).NotTo(HaveOccurred(), "looking up instance %s", in.Instance)
		g.Expect(inst.Status).To(Equal(in.Status), "status of instance %s on %s", in.Instance, inst.Location)
		if in.Location != "" {
			g.Expect(inst.Location).To(Equal(in.Location), "location of instance %s", in.Instance)
		}
	}, intervalsOr(intervals, "instance-state")...).WithContext(ctx).Should(Succeed())
	return inst
}

// ExecInInstanceInput is a command to run in an instance.
type ExecInInstanceInput struct {
	Cluster  *cluster.Cluster
	Instance string
	Argv     []string
	Stdin    string
}

// InstanceExecResult is what a command in an instance did.
type InstanceExecResult struct {
	Stdout, Stderr string
	ExitCode       int
}

// lockedBuffer is a bytes.Buffer the exec websockets write from their goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// ExecInInstanceE runs argv in the instance through the LXD API (exec
// with its websockets, routed by the cluster to the instance's member)
// and returns its output and exit code; a non-zero exit is a result, not
// an error (instance-op bounds it).
func ExecInInstanceE(ctx context.Context, t testing.TestingT, in ExecInInstanceInput) (InstanceExecResult, error) {
	if len(in.Argv) == 0 {
		return InstanceExecResult{}, fmt.Errorf("executing in instance %s: no command given", in.Instance)
	}
	srv, err := lxdFor(ctx, in.Cluster)
	if err != nil {
		return InstanceExecResult{}, err
	}
	var stdout, stderr lockedBuffer
	done := make(chan bool)
	what := fmt.Sprintf("executing %q in instance %s", strings.Join(in.Argv, " "), in.Instance)
	op, err := srv.ExecInstance(in.Instance, api.InstanceExecPost{Command: in.Argv, WaitForWS: true},
		&lxd.InstanceExecArgs{Stdin: strings.NewReader(in.Stdin), Stdout: &stdout, Stderr: &stderr, DataDone: done})
	ended, err := waitOpEnded(ctx, srv, "instance-op", op, err, what)
	if err != nil {
		return InstanceExecResult{}, err
	}
	select {
	case <-done:
	case <-ctx.Done():
		return InstanceExecResult{}, fmt.Errorf("%s: waiting for its output: %w", what, ctx.Err())
	}
	code, ok := ended.Metadata["return"].(float64)
	if !ok {
		return InstanceExecResult{}, fmt.Errorf("%s: LXD reported no exit code (metadata %v)", what, ended.Metadata)
	}
	return InstanceExecResult{Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: int(code)}, nil
}

// ExecInInstance is ExecInInstanceE that fails the test on an error.
func ExecInInstance(ctx context.Context, t testing.TestingT, in ExecInInstanceInput) InstanceExecResult {
	t.Helper()
	res, err := ExecInInstanceE(ctx, t, in)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// RunInInstanceE runs argv in the instance and returns its stdout; a
// non-zero exit is an error with its stderr.
func RunInInstanceE(ctx context.Context, t testing.TestingT, in ExecInInstanceInput) (string, error) {
	res, err := ExecInInstanceE(ctx, t, in)
	if err != nil {
		return "", err
	}
	if res.ExitCode != 0 {
		return res.Stdout, fmt.Errorf("%q in instance %s exited %d: %s", strings.Join(in.Argv, " "), in.Instance, res.ExitCode, strings.TrimSpace(res.Stderr))
	}
	return res.Stdout, nil
}

// RunInInstance is RunInInstanceE that fails the test on an error.
func RunInInstance(ctx context.Context, t testing.TestingT, in ExecInInstanceInput) string {
	t.Helper()
	out, err := RunInInstanceE(ctx, t, in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// zpoolOf is the ZFS pool behind the cluster's storage pool on member.
func zpoolOf(ctx context.Context, c *cluster.Cluster, member string) (string, error) {
	srv, err := c.LXDTarget(ctx, member)
	if err != nil {
		return "", err
	}
	srv = workload.WithContext(ctx, srv)
	pool, _, err := srv.GetStoragePool(c.Spec().PoolName)
	if err != nil {
		return "", fmt.Errorf("reading storage pool %s on %s: %w", c.Spec().PoolName, member, err)
	}
	if pool.Driver != "zfs" {
		return "", fmt.Errorf("storage pool %s on %s has driver %s, not zfs", pool.Name, member, pool.Driver)
	}
	if z := pool.Config["zfs.pool_name"]; z != "" {
		return z, nil
	}
	return pool.Name, nil
}

// InstanceDataset is the ZFS dataset LXD keeps a container's root in.
func InstanceDataset(zpool, instance string) string { return zpool + "/containers/" + instance }

// ExpectInstanceOnZFSInput is an instance and the member it must be on.
type ExpectInstanceOnZFSInput struct {
	Cluster  *cluster.Cluster
	Instance string
	Member   string
}

// ExpectInstanceOnZFS checks through LXD that the instance is on
// input.Member with its root disk in the cluster's zfs pool, and on the
// members themselves (zfs list) that its dataset is on input.Member, and
// on no other member.
func ExpectInstanceOnZFS(ctx context.Context, in ExpectInstanceOnZFSInput) {
	GinkgoHelper()
	srv, err := lxdFor(ctx, in.Cluster)
	Expect(err).NotTo(HaveOccurred())
	inst, _, err := srv.GetInstance(in.Instance)
	Expect(err).NotTo(HaveOccurred(), "looking up instance %s", in.Instance)
	Expect(inst.Location).To(Equal(in.Member), "location of instance %s", in.Instance)
	Expect(inst.ExpandedDevices["root"]).To(HaveKeyWithValue("pool", in.Cluster.Spec().PoolName), "root disk of instance %s", in.Instance)
	// One zfs list per member, side by side: each is an SSH round trip.
	ms := in.Cluster.Members()
	datasets := make([]string, len(ms))
	results := make([]provider.ExecResult, len(ms))
	errs := make([]error, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		zpool, err := zpoolOf(ctx, in.Cluster, m.Name)
		Expect(err).NotTo(HaveOccurred())
		datasets[i] = InstanceDataset(zpool, in.Instance)
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = ExecE(ctx, GinkgoT(), NodeOf(in.Cluster, m.Name), "zfs", "list", "-H", "-o", "name,type", datasets[i])
		}()
	}
	wg.Wait()
	for i, m := range ms {
		Expect(errs[i]).NotTo(HaveOccurred())
		listed, err := datasetListed(datasets[i], results[i])
		Expect(err).NotTo(HaveOccurred(), "looking for the dataset of instance %s on %s", in.Instance, m.Name)
		if m.Name == in.Member {
			Expect(listed).To(BeTrue(), "instance %s is on %s, yet it has no dataset %s", in.Instance, m.Name, datasets[i])
		} else {
			Expect(listed).To(BeFalse(), "instance %s is on %s, yet %s has dataset %s", in.Instance, in.Member, m.Name, datasets[i])
		}
	}
}

// datasetListed reads `zfs list -H -o name,type DS` as run on a member:
// whether filesystem ds is there. Only zfs's own answer for ds, exit 1
// and "cannot open 'DS': dataset does not exist", means absent; any other
// failure (no zfs, its module not loaded, a pool it cannot read) is an
// error: a member that cannot answer must not pass for one without the
// dataset.
func datasetListed(ds string, res provider.ExecResult) (bool, error) {
	stderr := strings.TrimSpace(string(res.Stderr))
	switch {
	case res.ExitCode == 1 && stderr == "cannot open '"+ds+"': dataset does not exist":
		return false, nil
	case res.ExitCode != 0:
		return false, fmt.Errorf("zfs list %s exited %d: %s", ds, res.ExitCode, stderr)
	}
	if got, want := strings.TrimSpace(string(res.Stdout)), ds+"\tfilesystem"; got != want {
		return false, fmt.Errorf("zfs list %s said %q, want %q", ds, got, want)
	}
	return true, nil
}

// ZFSSnapshotsE lists the ZFS snapshots of the instance's dataset on member.
func ZFSSnapshotsE(ctx context.Context, t testing.TestingT, c *cluster.Cluster, member, instance string) ([]string, error) {
	zpool, err := zpoolOf(ctx, c, member)
	if err != nil {
		return nil, err
	}
	out, err := RunE(ctx, t, NodeOf(c, member), "zfs", "list", "-H", "-t", "snapshot", "-o", "name", "-r", InstanceDataset(zpool, instance))
	if err != nil {
		return nil, fmt.Errorf("listing ZFS snapshots of instance %s on %s: %w", instance, member, err)
	}
	return strings.Fields(out), nil
}

// SnapshotInstanceInput is a snapshot to take or restore.
type SnapshotInstanceInput struct {
	Cluster  *cluster.Cluster
	Instance string
	Snapshot string
}

// SnapshotInstanceE takes a (stateless) snapshot of the instance.
func SnapshotInstanceE(ctx context.Context, t testing.TestingT, in SnapshotInstanceInput) error {
	srv, err := lxdFor(ctx, in.Cluster)
	if err != nil {
		return err
	}
	op, err := srv.CreateInstanceSnapshot(in.Instance, api.InstanceSnapshotsPost{Name: in.Snapshot})
	return waitOp(ctx, srv, "instance-op", op, err, fmt.Sprintf("snapshotting instance %s as %s", in.Instance, in.Snapshot))
}

// RestoreInstanceE restores the instance to the snapshot.
func RestoreInstanceE(ctx context.Context, t testing.TestingT, in SnapshotInstanceInput) error {
	srv, err := lxdFor(ctx, in.Cluster)
	if err != nil {
		return err
	}
	op, err := srv.UpdateInstance(in.Instance, api.InstancePut{Restore: in.Snapshot}, "")
	return waitOp(ctx, srv, "instance-op", op, err, fmt.Sprintf("restoring instance %s to snapshot %s", in.Instance, in.Snapshot))
}

// MoveInstanceInput is a stopped instance and the member it moves to.
type MoveInstanceInput struct {
	Cluster  *cluster.Cluster
	Instance string
	Target   string
}

// MoveInstanceE moves the (stopped) instance to input.Target, snapshots
// and all, as `lxc move --target` does.
func MoveInstanceE(ctx context.Context, t testing.TestingT, in MoveInstanceInput) error {
	srv, err := lxdFor(ctx, in.Cluster)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("moving instance %s to %s", in.Instance, in.Target)
	return moveOnceOnline(
		func() error {
			op, err := srv.UseTarget(in.Target).MigrateInstance(in.Instance, api.InstancePost{Name: in.Instance, Migration: true})
			return waitOp(ctx, srv, "instance-op", op, err, what)
		},
		func() (bool, error) { return memberOnline(srv, in.Target) },
		func() error {
			iv, err := wait.Load()
			if err != nil {
				return err
			}
			return wait.For(ctx, iv.MembersOnline, func(context.Context) (bool, string, error) {
				online, err := memberOnline(srv, in.Target)
				if err != nil {
					return false, err.Error(), nil
				}
				return online, in.Target + " is not Online", nil
			})
		})
}

// moveOnceOnline runs move; if it failed while the cluster lists the
// target as not Online (LXD marks a member offline after a missed
// heartbeat, which a busy TCG host produces, and refuses it as a target
// until the next round), it waits for the target to be Online and moves
// once more. The decision reads the member's state, not the error's text.
func moveOnceOnline(move func() error, online func() (bool, error), waitOnline func() error) error {
	err := move()
	if err == nil {
		return nil
	}
	if up, serr := online(); serr != nil || up {
		return err
	}
	if werr := waitOnline(); werr != nil {
		return fmt.Errorf("%w (the target was not Online and stayed so: %w)", err, werr)
	}
	return move()
}

// memberOnline says whether the cluster lists member as Online.
func memberOnline(srv lxd.InstanceServer, member string) (bool, error) {
	m, _, err := srv.GetClusterMember(member)
	if err != nil {
		return false, fmt.Errorf("looking up member %s: %w", member, err)
	}
	return m.Status == "Online", nil
}

// CopyInstanceInput is an instance to copy to another member.
type CopyInstanceInput struct {
	Cluster *cluster.Cluster
	Source  string
	Name    string
	Target  string
	// Config overrides the source's (a new address: the copy gets new MACs).
	Config map[string]string
}

// CopyInstanceE copies the (stopped) source, without its snapshots, to a
// new instance on input.Target, as `lxc copy --target` does (the source's
// architecture, config and devices, none of its volatile keys), and
// registers the copy's deletion at cleanup.
func CopyInstanceE(ctx context.Context, t testing.TestingT, in CopyInstanceInput) error {
	srv, err := lxdFor(ctx, in.Cluster)
	if err != nil {
		return err
	}
	src, _, err := srv.GetInstance(in.Source)
	if err != nil {
		return fmt.Errorf("looking up instance %s to copy it: %w", in.Source, err)
	}
	put := src.Writable()
	if put.Config == nil {
		put.Config = map[string]string{}
	}
	for k := range put.Config {
		if strings.HasPrefix(k, "volatile.") {
			delete(put.Config, k)
		}
	}
	for k, v := range in.Config {
		put.Config[k] = v
	}
	DeferInstanceDeletion(in.Cluster, in.Name)
	op, err := srv.UseTarget(in.Target).CreateInstance(api.InstancesPost{
		Name: in.Name, Type: api.InstanceType(src.Type), InstancePut: put,
		Source: api.InstanceSource{Type: "copy", Source: in.Source, BaseImage: src.Config["volatile.base_image"], InstanceOnly: true},
	})
	return waitOp(ctx, srv, "instance-op", op, err, fmt.Sprintf("copying instance %s to %s on %s", in.Source, in.Name, in.Target))
}

// MemberStateInput is an evacuation or a restore of a member.
type MemberStateInput struct {
	Cluster *cluster.Cluster
	Member  string
	// Action is evacuate or restore.
	Action string
}

// SetMemberStateE evacuates or restores a member (member-evacuate): LXD
// moves or stops its instances as each one's cluster.evacuate says, and
// brings them back on restore.
func SetMemberStateE(ctx context.Context, t testing.TestingT, in MemberStateInput) error {
	if in.Action != "evacuate" && in.Action != "restore" {
		return fmt.Errorf("member %s: action %q must be evacuate or restore", in.Member, in.Action)
	}
	srv, err := lxdFor(ctx, in.Cluster)
	if err != nil {
		return err
	}
	if !srv.HasExtension("clustering_evacuation") {
		return errors.New("this LXD lacks the clustering_evacuation API extension: cannot evacuate members")
	}
	op, err := srv.UpdateClusterMemberState(in.Member, api.ClusterMemberStatePost{Action: in.Action})
	return waitOp(ctx, srv, "member-evacuate", op, err, fmt.Sprintf("%s member %s", in.Action, in.Member))
}

// ExpectNoLeftoverDatasetsInput names what must be gone from every pool.
type ExpectNoLeftoverDatasetsInput struct {
	Cluster *cluster.Cluster
	// Containing are substrings (an instance name prefix, an image
	// fingerprint) no dataset or snapshot may have.
	Containing []string
}

// ExpectNoLeftoverDatasets polls (zfs-dataset-gone) `zfs list -t all` on
// every member until no dataset or snapshot in the pool contains any of
// input.Containing; LXD removes an image's dataset once no clone needs it.
func ExpectNoLeftoverDatasets(ctx context.Context, in ExpectNoLeftoverDatasetsInput, intervals ...any) {
	GinkgoHelper()
	Expect(in.Containing).NotTo(BeEmpty(), "ExpectNoLeftoverDatasets needs what to look for")
	for _, m := range in.Cluster.Members() {
		zpool, err := zpoolOf(ctx, in.Cluster, m.Name)
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) []string {
			out, err := RunE(ctx, GinkgoT(), NodeOf(in.Cluster, m.Name), "zfs", "list", "-H", "-t", "all", "-o", "name", "-r", zpool)
			g.Expect(err).NotTo(HaveOccurred())
			var left []string
			for _, ds := range strings.Fields(out) {
				for _, s := range in.Containing {
					if s != "" && strings.Contains(ds, s) {
						left = append(left, ds)
					}
				}
			}
			return left
		}, intervalsOr(intervals, "zfs-dataset-gone")...).WithContext(ctx).Should(BeEmpty(), "datasets left in pool %s on %s", zpool, m.Name)
	}
}
