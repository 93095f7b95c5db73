package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gruntwork-io/terratest/modules/shell"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/BitcoinCacheMachine/bcmtest/fixtures"
	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/leaks"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/multipass"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu"
	"github.com/BitcoinCacheMachine/bcmtest/harness/providers"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
	"github.com/BitcoinCacheMachine/bcmtest/suites/framework"
)

// standinProxy is argv[0] of the stand-in's detached proxies, so a leak
// check can find them by command line.
const standinProxy = "bcmtest-standin-proxy"

// setenv sets an environment variable for the rest of the current node
// (spec or BeforeAll) and restores it afterwards; the multipass provider's
// client runs inherit it.
func setenv(key, value string) {
	old, had := os.LookupEnv(key)
	os.Setenv(key, value)
	DeferCleanup(func() {
		if had {
			os.Setenv(key, old)
		} else {
			os.Unsetenv(key)
		}
	})
}

// unsetenv is setenv's counterpart for a variable that must be absent.
func unsetenv(key string) {
	old, had := os.LookupEnv(key)
	os.Unsetenv(key)
	DeferCleanup(func() {
		if had {
			os.Setenv(key, old)
		}
	})
}

// standinCall is one line of the stand-in's call log.
type standinCall struct {
	Argv []string `json:"argv"`
}

// readCalls returns every command line the stand-in logged, in order.
func readCalls(path string) [][]string {
	GinkgoHelper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	Expect(err).NotTo(HaveOccurred())
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var c standinCall
		Expect(json.Unmarshal(sc.Bytes(), &c)).To(Succeed(), "call log line %q", sc.Text())
		out = append(out, c.Argv)
	}
	Expect(sc.Err()).NotTo(HaveOccurred())
	return out
}

// loopbackAddrs lists the IPv4 addresses on the host's lo.
func loopbackAddrs(ctx context.Context) []string {
	GinkgoHelper()
	out, err := exec.CommandContext(ctx, "ip", "-4", "-o", "addr", "show", "dev", "lo").CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "ip addr show dev lo: %s", out)
	var addrs []string
	for _, f := range strings.Fields(string(out)) {
		if strings.Count(f, ".") == 3 && strings.Contains(f, "/") {
			addrs = append(addrs, f)
		}
	}
	return addrs
}

// sweepStandin is the safety net after a failure: whatever the harness's
// teardown left of nodes is removed through the stand-in, then through the
// QEMU provider directly; proxies still running are ended. It does nothing
// after a clean teardown.
func sweepStandin(ctx context.Context, bin string, dirs state.Dirs, nodes []string) {
	for _, n := range nodes {
		if _, err := os.Stat(filepath.Join(dirs.State, "standin", n+".json")); err == nil {
			out, err := exec.CommandContext(ctx, bin, "delete", "--purge", n).CombinedOutput()
			GinkgoWriter.Printf("safety net: multipass delete --purge %s: %v %s\n", n, err, out)
		}
	}
	q, err := qemu.New(qemu.Config{Dirs: dirs, Log: GinkgoWriter})
	if err == nil {
		for _, n := range nodes {
			q.Delete(ctx, n)
		}
		q.Close()
	}
	for _, n := range nodes {
		// A proxy whose VM is gone removes its address and exits by itself.
		needle := standinProxy + " " + n + " "
		wait.For(ctx, framework.Intervals().LeakCheck, func(context.Context) (bool, string, error) {
			return len(leaks.Processes(needle)) == 0, "proxy of " + n + " still running", nil
		})
		for _, l := range leaks.Processes(needle) {
			if pid, err := strconv.Atoi(strings.SplitN(l, ":", 2)[0]); err == nil {
				GinkgoWriter.Printf("safety net: killing %s\n", l)
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

var _ = Describe("the multipass provider on the multipass stand-in", Label("multipass"), Ordered, func() {
	var (
		dirs state.Dirs
		dir  string // holds the stand-in, named multipass
		bin  string
	)

	BeforeAll(func(ctx SpecContext) {
		var err error
		dirs, err = state.Default()
		Expect(err).NotTo(HaveOccurred())
		dir, err = os.MkdirTemp("", "bcmtest-standin-")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(os.RemoveAll, dir)
		bin = filepath.Join(dir, "multipass")
		By("building the stand-in as " + bin)
		shell.RunCommandContext(GinkgoT(), ctx, framework.HostCommand("go", "build", "-o", bin, "github.com/BitcoinCacheMachine/bcmtest/suites/integration/standin"))

		By("getting the image the stand-in boots (building it when absent)")
		q, err := qemu.New(qemu.Config{Dirs: dirs, Log: GinkgoWriter})
		Expect(err).NotTo(HaveOccurred())
		defer q.Close()
		_, err = q.Image(ctx)
		Expect(err).NotTo(HaveOccurred())
	}, NodeTimeout(45*time.Minute))

	It("is what the automatic choice picks when `multipass` on PATH answers", func(ctx SpecContext) {
		calls := filepath.Join(GinkgoT().TempDir(), "calls.jsonl")
		setenv("BCMTEST_STANDIN_LOG", calls)
		unsetenv("BCMTEST_PROVIDER")
		unsetenv("BCMTEST_MULTIPASS")
		setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
		p, err := providers.New(ctx, providers.Options{Name: providers.Auto, Log: GinkgoWriter})
		Expect(err).NotTo(HaveOccurred())
		defer p.Close()
		Expect(p.Name()).To(Equal("multipass"))
		Expect(readCalls(calls)).To(ContainElement([]string{"version", "--format", "json"}))
	}, Label("ci"), NodeTimeout(time.Minute))

	It("answers like multipass for an instance that does not exist", Label("ci"), func(ctx SpecContext) {
		calls := filepath.Join(GinkgoT().TempDir(), "calls.jsonl")
		setenv("BCMTEST_STANDIN_LOG", calls)
		p, err := providers.New(ctx, providers.Options{Name: providers.Multipass, MultipassBinary: bin, Log: GinkgoWriter})
		Expect(err).NotTo(HaveOccurred())
		defer p.Close()
		missing := runID("mpnone") + "-00"
		_, err = p.Info(ctx, missing)
		Expect(err).To(MatchError(provider.ErrNotFound))
		Expect(err).To(MatchError(ContainSubstring(`instance "` + missing + `" does not exist (exit 2)`)))
		_, err = p.Exec(ctx, missing, provider.ExecInput{Argv: []string{"true"}})
		Expect(err).To(MatchError(provider.ErrNotFound))
		Expect(p.Delete(ctx, missing)).To(Succeed(), "deleting a VM that does not exist is not an error")
		Expect(readCalls(calls)).To(ContainElement([]string{"delete", "--purge", missing}))

		By("refusing the global purge, which the harness never runs")
		out, err := exec.CommandContext(ctx, bin, "purge").CombinedOutput()
		var ee *exec.ExitError
		Expect(errors.As(err, &ee)).To(BeTrue(), "purge exited 0: %s", out)
		Expect(ee.ExitCode()).To(Equal(2))
		Expect(string(out)).To(HavePrefix("purge failed: "))
	}, NodeTimeout(2*time.Minute))

	It("reports an expired --timeout as multipass does and leaves the instance for the caller to delete", func(ctx SpecContext) {
		calls := filepath.Join(GinkgoT().TempDir(), "calls.jsonl")
		setenv("BCMTEST_STANDIN_LOG", calls)
		// Built directly: providers.New has no launch timeout to set.
		p, err := multipass.New(multipass.Config{Binary: bin, LaunchTimeout: 5 * time.Second, Log: GinkgoWriter})
		Expect(err).NotTo(HaveOccurred())
		name := runID("mpto") + "-00"
		DeferCleanup(func(ctx SpecContext) { sweepStandin(ctx, bin, dirs, []string{name}) }, NodeTimeout(2*time.Minute))
		_, err = p.Launch(ctx, provider.LaunchInput{Name: name, CPUs: framework.NodeCPUs, MemoryMiB: framework.NodeMemoryMiB, DiskGiB: 10,
			UserData: fixtures.MustRead(fixtures.VMSmoke), Log: GinkgoWriter})
		Expect(err).To(MatchError(multipass.ErrTimeout))
		var ce *provider.CloudInitError
		Expect(errors.As(err, &ce)).To(BeTrue(), "want a *provider.CloudInitError, got %v", err)
		Expect(err).To(MatchError(ContainSubstring("Timed out waiting for instance launch. (exit 5)")))

		info, err := p.Info(ctx, name)
		Expect(err).NotTo(HaveOccurred(), "the timed-out instance is kept")
		Expect(info.Group).To(Equal(name))
		Expect(p.Delete(ctx, name)).To(Succeed())
		_, err = p.Info(ctx, name)
		Expect(err).To(MatchError(provider.ErrNotFound))

		var deleted [][]string
		for _, argv := range readCalls(calls) {
			if argv[0] == "delete" || argv[0] == "purge" {
				deleted = append(deleted, argv)
			}
		}
		Expect(deleted).To(Equal([][]string{{"delete", "--purge", name}}))
		vms := filepath.Join(dirs.State, "qemu", "vms")
		Eventually(func() []string {
			return append(leaks.Processes(filepath.Join(vms, name)), leaks.Processes(standinProxy+" "+name+" ")...)
		}, framework.GetIntervals("leak-check")...).WithContext(ctx).Should(BeEmpty())
		Expect(leaks.Files(vms, 1, name, "."+name+"*")).To(BeEmpty())
	}, NodeTimeout(5*time.Minute))

	It("brings NAME-00 and NAME-01 up as one LXD cluster on real VMs and deletes exactly those", func(ctx SpecContext) {
		tmp := GinkgoT().TempDir()
		calls, trace := filepath.Join(tmp, "calls.jsonl"), filepath.Join(tmp, "trace.log")
		setenv("BCMTEST_MULTIPASS", bin)
		setenv("BCMTEST_STANDIN_LOG", calls)
		setenv("BCMTEST_STANDIN_TRACE", trace)
		DeferCleanup(func() {
			if CurrentSpecReport().Failed() {
				b, _ := os.ReadFile(trace)
				GinkgoWriter.Printf("--- stand-in trace ---\n%s", b)
			}
		})
		p, err := providers.New(ctx, providers.Options{Name: providers.Multipass, MultipassBinary: bin, Log: GinkgoWriter})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(p.Close)
		Expect(p.Name()).To(Equal("multipass"))

		name := runID("mp")
		nodes := []string{cluster.NodeName(name, 0), cluster.NodeName(name, 1)}
		DeferCleanup(func(ctx SpecContext) { sweepStandin(ctx, bin, dirs, nodes) }, NodeTimeout(3*time.Minute))
		c, err := cluster.Up(ctx, cluster.Spec{
			Name: name, Members: 1, CPUs: framework.NodeCPUs, Memory: framework.NodeMemory, Disk: "12G", PoolSize: "2G",
			CloudInit: fixtures.MustRead(fixtures.BCMDebian), CloudInitName: fixtures.BCMDebian,
			Provider: p, StateDir: dirs.State, Log: GinkgoWriter,
		})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) { Expect(c.Destroy(ctx)).To(Succeed()) }, NodeTimeout(3*time.Minute))
		AddReportEntry("timings "+name, c.Timings().String())

		By("reaching each member's LXD at its private address, as on multipass's bridge")
		var addrs []string
		for _, m := range c.Members() {
			Expect(m.Info.Provider).To(Equal("multipass"))
			Expect(m.Info.Forwards).To(BeEmpty())
			Expect(m.Endpoint).To(Equal(m.Address+":8443"), "member %s", m.Name)
			addrs = append(addrs, m.Address)
			srv, err := c.LXDOn(ctx, m.Name)
			Expect(err).NotTo(HaveOccurred())
			info, _, err := srv.GetServer()
			Expect(err).NotTo(HaveOccurred(), "LXD of %s at %s", m.Name, m.Endpoint)
			Expect(info.Environment.ServerName).To(Equal(m.Name))
		}
		Expect(addrs).To(HaveLen(2))
		Expect(addrs[0]).NotTo(Equal(addrs[1]))

		framework.ExpectMembersOnlineOnZFS(ctx, framework.ExpectMembersOnlineOnZFSInput{Cluster: c, Members: nodes})

		By("destroying it")
		Expect(c.Destroy(ctx)).To(Succeed())

		By("finding in the stand-in's log launches in multipass's grammar and `delete --purge` of exactly its nodes")
		var launched, deleted [][]string
		for _, argv := range readCalls(calls) {
			Expect(argv).NotTo(BeEmpty())
			Expect(argv[0]).NotTo(Equal("purge"), "the harness ran the global purge")
			switch argv[0] {
			case "launch":
				launched = append(launched, argv)
			case "delete":
				deleted = append(deleted, argv)
			}
		}
		Expect(deleted).To(ConsistOf([]string{"delete", "--purge", nodes[0]}, []string{"delete", "--purge", nodes[1]}))
		Expect(launched).To(HaveLen(2))
		for i, argv := range launched {
			Expect(argv).To(HaveLen(14), "launch %d: %q", i, argv)
			Expect(argv[1:9]).To(Equal([]string{"--name", argv[2], "--cpus", "1", "--memory", "1536M", "--disk", "12G"}))
			Expect(argv[2]).To(BeElementOf(nodes))
			Expect(argv[9]).To(Equal("--cloud-init"))
			Expect(argv[11]).To(Equal("--timeout"))
			Expect(argv[13]).To(Equal(multipass.DefaultImage))
		}

		By("finding nothing left on the host: qemu, VM directories, proxies, loopback addresses, records")
		vms := filepath.Join(dirs.State, "qemu", "vms")
		Eventually(func() []string {
			return append(leaks.Processes(filepath.Join(vms, name+"-")), leaks.Processes(standinProxy+" "+name+"-")...)
		}, framework.GetIntervals("leak-check")...).WithContext(ctx).Should(BeEmpty())
		Expect(leaks.Files(vms, 1, name+"-*", "."+name+"-*")).To(BeEmpty())
		lo := loopbackAddrs(ctx)
		for _, a := range addrs {
			Expect(lo).NotTo(ContainElement(a+"/32"), "address %s left on lo", a)
		}
		Expect(leaks.Files(filepath.Join(dirs.State, "standin"), 1, name+"-*", "."+name+"-*")).To(BeEmpty())
		Expect(leaks.Files(filepath.Join(dirs.State, "multipass"), 1, name+"-*")).To(BeEmpty())
		Expect(leaks.Files(cluster.ClustersDir(dirs.State), 1, name)).To(BeEmpty())
	}, NodeTimeout(40*time.Minute))
})
