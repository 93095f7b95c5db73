package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/BitcoinCacheMachine/bcmtest/cloudinit"
	"github.com/BitcoinCacheMachine/bcmtest/fixtures"
	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/diag"
	"github.com/BitcoinCacheMachine/bcmtest/harness/inventory"
	"github.com/BitcoinCacheMachine/bcmtest/harness/progress"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
	"github.com/BitcoinCacheMachine/bcmtest/harness/providers"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
	"github.com/BitcoinCacheMachine/bcmtest/suites/framework"
)

// cfg is read when the spec tree is built so the size label is known.
var cfg, cfgErr = LoadConfig()

// The one cluster every spec of this run shares.
var (
	bcm       *cluster.Cluster
	cloudInit []byte
)

func TestE2E(t *testing.T) {
	if os.Getenv("BCMTEST_E2E") != "1" {
		t.Skip("boots an LXD cluster on real VMs; run with BCMTEST_E2E=1 (make e2e)")
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, fmt.Sprintf("BCM LXD cluster e2e (%d members)", cfg.Members))
}

// sizeLabel lets --label-filter pick specs by cluster size (size-1 = 1 member).
func sizeLabel() Labels { return Label(fmt.Sprintf("size-%d", cfg.Members)) }

var suiteFailed bool

var _ = ReportAfterEach(func(r SpecReport) {
	if r.Failed() {
		suiteFailed = true
	}
})

var _ = BeforeSuite(func(ctx SpecContext) {
	Expect(cfgErr).NotTo(HaveOccurred())
	GinkgoWriter.Printf("run %s: %d member(s), provider %s, artifacts %s\n", cfg.RunID, cfg.Members, cfg.Provider, cfg.Artifacts)
	Expect(CheckArtifactsDir(cfg.Artifacts)).To(Succeed())

	// The same progress events as `bcmtest up` prints, as timestamped lines
	// (a suite's output is never a terminal). The provider logs through it
	// too, so an image build is one stream of named stages with one "still
	// in" line per quiet stretch.
	prog := progress.New(GinkgoWriter, progress.Options{Mode: progress.Plain})
	DeferCleanup(prog.Close)
	p, err := providers.New(ctx, providers.Options{Name: cfg.Provider, Log: prog})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(p.Close)

	// Sweep what crashed or killed earlier runs left before adding more.
	if st, err := state.Default(); err == nil {
		removed, err := cluster.SweepStale(ctx, p, st.State, GinkgoWriter)
		for _, r := range removed {
			GinkgoWriter.Printf("swept leftover of a dead run: %s\n", r)
		}
		Expect(err).NotTo(HaveOccurred(), "sweeping leftovers of dead runs")
	}

	name := cfg.CloudInit
	if name == "" {
		name = fixtures.For(p.Name())
		cloudInit = fixtures.MustRead(name)
	} else {
		cloudInit, err = cloudinit.LoadContext(ctx, name)
		Expect(err).NotTo(HaveOccurred())
		// Say what the provider's VMs cannot give the file (snap on the
		// offline Debian image, removing its LXD...) before booting them.
		st, err := state.Default()
		Expect(err).NotTo(HaveOccurred())
		problems, err := cloudinit.ProviderLint(ctx, name, cloudInit, providers.LintTarget(p.Name(), st, image.Release(provider.ReleaseOf(p))))
		Expect(err).NotTo(HaveOccurred())
		for _, pr := range problems {
			GinkgoWriter.Printf("cloud-init lint for %s: %s\n", p.Name(), pr.Error())
		}
		if len(problems) > 0 && !cfg.Force {
			Fail(fmt.Sprintf("%s needs what the %s provider's VMs cannot give (%d problem(s)):\n%s\nfix the file, or run anyway with FORCE=1 (BCMTEST_FORCE=1)",
				name, p.Name(), len(problems), joinProblems(problems)))
		}
	}
	clusterName := cfg.Reuse
	if clusterName == "" {
		clusterName = framework.RunName("bcme2e")
	}
	collect := func(ctx context.Context, nodes []string) {
		files, err := diag.Collect(ctx, diag.CollectInput{Provider: p, Nodes: nodes, Dir: cfg.Artifacts, Log: GinkgoWriter})
		GinkgoWriter.Printf("collected %d diagnostic files under %s (%v)\n", len(files), cfg.Artifacts, err)
	}
	bcm, err = cluster.Up(ctx, cluster.Spec{
		Name: clusterName, Members: cfg.Members, CPUs: cfg.CPUs, Memory: cfg.Memory, Disk: cfg.Disk,
		CloudInit: cloudInit, CloudInitName: name, Provider: p, Log: prog,
		OnEvent: prog.Cluster, OnPhase: prog.OnPhase,
		KeepOnFailure: cfg.KeepOnFailure, Reuse: cfg.Reuse != "",
		OnFailure: func(ctx context.Context, _ *cluster.Cluster, _ error) {
			// Whatever VMs exist by now; a failed Up may not have made all.
			vms, _ := p.List(ctx, clusterName)
			var present []string
			for _, v := range vms {
				present = append(present, v.Name)
			}
			collect(ctx, present)
		},
	})
	Expect(err).NotTo(HaveOccurred())
	// A reused cluster is judged by the file it was made with, not by
	// the fixture or the file this run was given.
	recorded, recErr := bcm.RecordedCloudInit()
	judged, data, note, err := cloudInitChoice{Reuse: cfg.Reuse, Named: cfg.CloudInit != "", GivenName: name, Given: cloudInit,
		Recorded: recorded, RecordErr: recErr}.decide()
	Expect(err).NotTo(HaveOccurred())
	if note != "" {
		GinkgoWriter.Printf("%s\n", note)
	}
	if cfg.Reuse != "" {
		GinkgoWriter.Printf("judging the reused cluster %s by the cloud-init file it was made with: %s\n", cfg.Reuse, judged)
	}
	cloudInit = data
	AddReportEntry("phase timings", bcm.Timings().String())
	writeTimings(bcm)
	DeferCleanup(func(ctx SpecContext) {
		// What a person asked to keep is marked kept, so no later run's
		// sweep removes it; only `bcmtest down NAME` does. A reused cluster
		// is left as it was found (Keep and Destroy leave it alone).
		why := ""
		switch {
		case bcm.Attached():
			why = "reused, not created by this run"
		case cfg.SkipTeardown:
			why = "BCMTEST_SKIP_TEARDOWN=1"
		case cfg.KeepOnFailure && suiteFailed:
			why = "BCMTEST_KEEP_ON_FAILURE=1 and specs failed"
		}
		if why != "" {
			Expect(bcm.Keep(why)).To(Succeed())
			GinkgoWriter.Printf("leaving cluster %s up (%s); remove it with `bcmtest down %s`\n", bcm.Name(), why, bcm.Name())
			return
		}
		Expect(bcm.Destroy(ctx)).To(Succeed())
	}, NodeTimeout(5*time.Minute))
	// Registered after teardown, so it runs first: logs before teardown.
	DeferCleanup(func(ctx SpecContext) {
		if suiteFailed || cfg.CollectAlways {
			collect(ctx, memberNames(bcm))
		}
	}, NodeTimeout(5*time.Minute))
	// LXD's heartbeat lateness during the run, from the members' logs.
	DeferCleanup(func(ctx SpecContext) {
		framework.RecordHeartbeats(ctx, framework.RecordHeartbeatsInput{Cluster: bcm, Dir: cfg.Artifacts})
	}, NodeTimeout(5*time.Minute))
	// Each node's inventory, which `bcmtest inventory diff` compares with
	// another run's (before the kernel check below, which runs first).
	// The collector runs on all nodes at once: each is its own VM, and the
	// teardown waits for the slowest, not for the sum.
	DeferCleanup(func(ctx SpecContext) {
		var wg sync.WaitGroup
		for _, m := range bcm.Members() {
			wg.Add(1)
			go func(node string) {
				defer GinkgoRecover()
				defer wg.Done()
				writeInventory(ctx, p, node)
			}(m.Name)
		}
		wg.Wait()
	}, NodeTimeout(5*time.Minute))
	// Registered last, so it runs first: every node's kernel is checked
	// while the nodes are there, and a finding counts as a failed run.
	DeferCleanup(func(ctx SpecContext) {
		framework.CheckKernelsAtTeardown(ctx, framework.TeardownKernelCheckInput{
			KernelHealthInput: framework.KernelHealthInput{Provider: p, Nodes: memberNames(bcm)},
			Dir:               cfg.Artifacts, OnFindings: func() { suiteFailed = true }})
	}, NodeTimeout(5*time.Minute))
}, NodeTimeout(60*time.Minute))

// writeInventory leaves a node's inventory in its artifacts directory.
// A node that cannot be inventoried is said, not a failed suite.
func writeInventory(ctx context.Context, p provider.Provider, node string) {
	col, err := inventory.Collect(ctx, p, node)
	if err == nil {
		var b []byte
		if b, err = col.Inventory.Marshal(); err == nil {
			dir := filepath.Join(cfg.Artifacts, node)
			if err = os.MkdirAll(dir, 0o750); err == nil {
				err = os.WriteFile(filepath.Join(dir, "inventory.json"), b, 0o640)
			}
		}
	}
	if err != nil {
		GinkgoWriter.Printf("inventory of %s: %v\n", node, err)
		return
	}
	GinkgoWriter.Printf("inventory of %s: %s\n", node, filepath.Join(cfg.Artifacts, node, "inventory.json"))
}

// memberNames are the names of the cluster's nodes.
func memberNames(c *cluster.Cluster) []string {
	var nodes []string
	for _, m := range c.Members() {
		nodes = append(nodes, m.Name)
	}
	return nodes
}

func joinProblems(ps []cloudinit.Problem) string {
	var lines []string
	for _, p := range ps {
		lines = append(lines, "  "+p.Error())
	}
	return strings.Join(lines, "\n")
}

// writeTimings leaves the phase timings beside the reports, for people and
// for `bcmtest matrix`, which charts them against cluster size.
func writeTimings(c *cluster.Cluster) {
	t := c.Timings()
	b, err := json.MarshalIndent(t, "", "  ")
	if err == nil {
		os.WriteFile(filepath.Join(cfg.Artifacts, "timings.json"), b, 0o644)
	}
	s := t.String() + "\n"
	for n, d := range t.CloudInit {
		s += fmt.Sprintf("cloud-init %s: %s\n", n, d.Round(time.Second))
	}
	os.WriteFile(filepath.Join(cfg.Artifacts, "timings.txt"), []byte(s), 0o644)
	if ms := c.Members(); len(ms) > 0 {
		os.WriteFile(filepath.Join(cfg.Artifacts, "provider.txt"), []byte(ms[0].Info.Provider+" "+ms[0].Info.Accel+"\n"), 0o644)
	}
}

// specInput is what the specs need from the suite, handed to each
// Describe in a BeforeEach instead of read from the suite's globals in
// spec bodies.
type specInput struct {
	Cluster   *cluster.Cluster
	Members   int    // joining members the cluster was made with
	CloudInit []byte // the user-data every node booted with
}

// suiteInput is the input for specs of this run; BeforeSuite has set it up.
func suiteInput() specInput {
	return specInput{Cluster: bcm, Members: cfg.Members, CloudInit: cloudInit}
}

// forEachSpec returns the input, filled before each spec of a Describe.
func forEachSpec() *specInput {
	in := &specInput{}
	BeforeEach(func() { *in = suiteInput() })
	return in
}

// node is member name of the spec's cluster, for the framework's Run/Exec.
func (in *specInput) node(name string) framework.Node { return framework.NodeOf(in.Cluster, name) }

// run is framework.Run on a member: stdout, and a non-zero exit fails.
func (in *specInput) run(ctx context.Context, name string, argv ...string) string {
	GinkgoHelper()
	return framework.Run(ctx, GinkgoT(), in.node(name), argv...)
}

// result is framework.Exec on a member: the exit code is the spec's to check.
func (in *specInput) result(ctx context.Context, name string, argv ...string) provider.ExecResult {
	GinkgoHelper()
	return framework.Exec(ctx, GinkgoT(), in.node(name), argv...)
}
