package integration

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gruntwork-io/terratest/modules/shell"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/sync/errgroup"

	"github.com/BitcoinCacheMachine/bcmtest/harness/leaks"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
	"github.com/BitcoinCacheMachine/bcmtest/suites/framework"
)

var _ = Describe("interrupting the harness in each phase", Label("interrupt"), func() {
	DescribeTable("SIGINT tears down and exits 130, leaving nothing",
		func(ctx SpecContext, marker string) {
			dirs, err := state.Default()
			Expect(err).NotTo(HaveOccurred())
			bin := buildCLI(ctx)
			name := runID("sig") + strings.Map(func(r rune) rune {
				if r >= 'a' && r <= 'z' {
					return r
				}
				return -1
			}, marker)[:3]
			downLater(bin, name)
			cmd := startUntil(ctx, bin, marker, "up", name, "0", "--cpus", "1", "--memory", "1536M", "--disk", "12G", "--pool-size", "2G", "--provider", "qemu")
			aptCache := leaks.Children(cmd.Process.Pid, "apt-cacher-ng")
			Expect(cmd.Process.Signal(syscall.SIGINT)).To(Succeed())
			err = cmd.Wait()
			var ee *exec.ExitError
			Expect(errors.As(err, &ee)).To(BeTrue(), "bcmtest exited 0 after SIGINT")
			Expect(ee.ExitCode()).To(Equal(130))
			Expect(leftovers(dirs, name)).To(BeEmpty())
			Expect(leaks.Alive(aptCache)).To(BeEmpty(), "this run's apt cache left running")
		},
		Entry("during launch", NodeTimeout(10*time.Minute), "qemu started"),
		Entry("during the cloud-init wait", NodeTimeout(10*time.Minute), "waiting for cloud-init"),
		Entry("during bootstrap", NodeTimeout(15*time.Minute), "node(s) up with cloud-init done"),
	)

	It("leaves a SIGKILLed run for `bcmtest down --stale`, which removes all of it and says so", func(ctx SpecContext) {
		dirs, err := state.Default()
		Expect(err).NotTo(HaveOccurred())
		bin := buildCLI(ctx)
		name := runID("kil")
		downLater(bin, name)
		cmd := startUntil(ctx, bin, "join token for "+name+"-01", "up", name, "1", "--cpus", "1", "--memory", "1536M", "--disk", "12G", "--pool-size", "2G", "--provider", "qemu")
		Expect(cmd.Process.Kill()).To(Succeed())
		cmd.Wait()
		Expect(leftovers(dirs, name)).NotTo(BeEmpty(), "a killed run cannot tear down; its VMs should still be there")
		if os.Getenv("BCMTEST_SEGMENT") != "multicast" {
			Expect(switchOf(dirs, name)).To(HaveLen(1), "a killed run's segment switch should still be there")
		}
		out := shell.RunCommandContextAndGetOutput(GinkgoT(), ctx, framework.HostCommand(bin, "down", "--stale"))
		Expect(out).To(ContainSubstring("removed " + name + " (VMs: " + name + "-00, " + name + "-01)"))
		Eventually(func() []string { return leftovers(dirs, name) }, framework.GetIntervals("leak-check")...).WithContext(ctx).Should(BeEmpty())
	}, NodeTimeout(20*time.Minute))

	It("runs CLUS and CLUS0 at once without touching each other's VMs, segments or state", func(ctx SpecContext) {
		dirs, err := state.Default()
		Expect(err).NotTo(HaveOccurred())
		bin := buildCLI(ctx)
		a := runID("par")
		b := a + "0" // a's name is a prefix of b's, as CLUS1 is of CLUS10
		for _, n := range []string{a, b} {
			downLater(bin, n)
		}
		args := []string{"0", "--cpus", "1", "--memory", "1536M", "--disk", "12G", "--pool-size", "2G", "--provider", "qemu"}
		names := []string{a, b}
		errs := make([]error, len(names))
		var g errgroup.Group
		for i, n := range names {
			g.Go(func() error {
				errs[i] = shell.RunCommandContextE(GinkgoT(), ctx, framework.HostCommand(bin, append([]string{"up", n}, args...)...))
				return errs[i]
			})
		}
		g.Wait()
		for i, n := range names {
			Expect(errs[i]).NotTo(HaveOccurred(), "bcmtest up %s", n)
		}

		vms := filepath.Join(dirs.State, "qemu", "vms")
		pa := leaks.Processes(filepath.Join(vms, a+"-00") + "/")
		pb := leaks.Processes(filepath.Join(vms, b+"-00") + "/")
		Expect(pa).To(HaveLen(1))
		Expect(pb).To(HaveLen(1))
		// NIC 1's backend: a switch's socket directory, or a multicast port.
		seg := func(cmdline string) string {
			i := strings.Index(cmdline, "id=n1,")
			Expect(i).To(BeNumerically(">=", 0), "no private segment in %s", cmdline)
			return strings.Fields(cmdline[i:])[0]
		}
		Expect(seg(pa[0])).NotTo(Equal(seg(pb[0])), "the two clusters share a private segment")

		out := shell.RunCommandContextAndGetOutput(GinkgoT(), ctx, framework.HostCommand(bin, "down", a))
		Expect(out).NotTo(ContainSubstring(b))
		Expect(leftovers(dirs, a)).To(BeEmpty())
		Expect(leaks.Processes(filepath.Join(vms, b+"-00")+"/")).To(HaveLen(1), "down %s touched %s", a, b)
		if os.Getenv("BCMTEST_SEGMENT") != "multicast" {
			Expect(switchOf(dirs, b)).To(HaveLen(1), "down %s stopped %s's segment switch", a, b)
		}
		out = shell.RunCommandContextAndGetOutput(GinkgoT(), ctx, framework.HostCommand(bin, "exec", b+"-00", "--", "lxc", "cluster", "list"))
		Expect(out).To(ContainSubstring("ONLINE"))
	}, NodeTimeout(20*time.Minute))
})
