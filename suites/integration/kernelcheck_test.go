package integration

import (
	"context"
	"errors"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/BitcoinCacheMachine/bcmtest/harness/kernelcheck"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
	"github.com/BitcoinCacheMachine/bcmtest/suites/framework"
)

// injected is the kernel message the spec writes: what the watchdog prints
// for a soft lockup, with a task name that says where it came from.
const injected = "watchdog: BUG: soft lockup - CPU#0 stuck for 23s! [bcmtest-inject:1]"

// fatalRecorder is a terratest TestingT that records Fatal instead of
// ending the spec, to see what ExpectKernelHealthy would fail with.
type fatalRecorder struct {
	GinkgoTInterface
	fatal []string
}

func (r *fatalRecorder) Fatal(args ...any) { r.fatal = append(r.fatal, fmt.Sprint(args...)) }

var _ = Describe("Kernel health check", Label("kernelcheck"), func() {
	It("passes on a freshly booted node, then fails naming a soft lockup written to its kernel log", func(ctx SpecContext) {
		dirs, err := state.Default()
		Expect(err).NotTo(HaveOccurred())
		p, err := qemu.New(qemu.Config{Dirs: dirs, Log: GinkgoWriter})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(p.Close)
		name := runID("kchk") + "-00"
		DeferCleanup(func(ctx SpecContext) { Expect(p.Delete(ctx, name)).To(Succeed()) }, NodeTimeout(2*time.Minute))
		_, err = p.Launch(ctx, provider.LaunchInput{Name: name, CPUs: 1, MemoryMiB: 1536, DiskGiB: 10,
			UserData: []byte("#cloud-config\n"), Log: GinkgoWriter})
		Expect(err).NotTo(HaveOccurred())
		in := framework.KernelHealthInput{Provider: p, Nodes: []string{name}}

		By("checking the healthy node: no finding, both sources read")
		res, err := framework.ExpectKernelHealthyE(ctx, GinkgoT(), in)
		Expect(err).NotTo(HaveOccurred(), "a freshly booted node")
		Expect(res.Unread).To(BeEmpty())

		By("writing a soft lockup to /dev/kmsg at level 2 (critical), which reaches the console too")
		framework.Run(ctx, GinkgoT(), framework.Node{Provider: p, Name: name}, "sh", "-c", fmt.Sprintf("echo '<2>%s' > /dev/kmsg", injected))

		By("checking again: the E variant returns the finding, from both sources")
		var found kernelcheck.Finding
		Eventually(func(g Gomega) {
			_, err := framework.ExpectKernelHealthyE(ctx, GinkgoT(), in)
			var kerr *kernelcheck.Error
			g.Expect(errors.As(err, &kerr)).To(BeTrue(), "want a *kernelcheck.Error, got %v", err)
			g.Expect(kerr.Findings).To(HaveLen(1))
			found = kerr.Findings[0]
			// The console is a file qemu appends to; give it its time.
			g.Expect(found.Sources).To(ConsistOf(kernelcheck.Console, kernelcheck.KernelLog))
		}, framework.GetIntervals("journal-entry")...).WithContext(ctx).Should(Succeed())
		Expect(found.Node).To(Equal(name))
		Expect(found.Kind).To(Equal(kernelcheck.SoftLockup))
		Expect(found.Line).To(ContainSubstring("[bcmtest-inject:1]"))
		Expect(found.Timed).To(BeTrue(), "the printk timestamp is read: %s", found.Line)
		Expect(found.SinceBoot).To(BeNumerically(">", 0))
		AddReportEntry("injected finding", found.String())

		By("the failing variant fails naming node, kind, time since boot and line")
		rec := &fatalRecorder{GinkgoTInterface: GinkgoT()}
		framework.ExpectKernelHealthy(ctx, rec, in)
		Expect(rec.fatal).To(HaveLen(1))
		for _, w := range []string{name, "soft lockup", found.When(), "[bcmtest-inject:1]"} {
			Expect(rec.fatal[0]).To(ContainSubstring(w))
		}

		// Deleted here, not only in cleanup: the suite's check after each
		// spec must not meet the finding this spec made on purpose.
		Expect(p.Delete(ctx, name)).To(Succeed())
	}, NodeTimeout(30*time.Minute))
})

// checkOwnedVMs is the integration suite's kernel check after each spec:
// every VM of the default state directory that this process launched and
// that is still there (the spec's cleanup, which deletes it, runs after
// AfterEach) is checked. VMs of other state directories and of child
// processes (the interrupt specs' bcmtest) are not seen here.
func checkOwnedVMs(ctx context.Context) {
	GinkgoHelper()
	dirs, err := state.Default()
	if err != nil {
		return
	}
	p, err := qemu.New(qemu.Config{Dirs: dirs})
	if err != nil {
		GinkgoWriter.Printf("kernel health after the spec: no qemu provider here: %v\n", err)
		return
	}
	defer p.Close()
	vms, err := p.List(ctx, "")
	Expect(err).NotTo(HaveOccurred(), "listing VMs for the kernel check")
	var mine []string
	for _, vm := range vms {
		if vm.Owner == ownPID && vm.State == provider.StateRunning {
			mine = append(mine, vm.Name)
		}
	}
	if len(mine) == 0 {
		return
	}
	framework.CheckKernelsAtTeardown(ctx, framework.TeardownKernelCheckInput{KernelHealthInput: framework.KernelHealthInput{Provider: p, Nodes: mine}})
}
