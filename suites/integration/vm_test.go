package integration

import (
	"context"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/BitcoinCacheMachine/bcmtest/fixtures"
	"github.com/BitcoinCacheMachine/bcmtest/harness/leaks"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
	"github.com/BitcoinCacheMachine/bcmtest/suites/framework"
)

var _ = Describe("the embedded QEMU provider", Label("vm"), Ordered, func() {
	var (
		p     *qemu.Provider
		dirs  state.Dirs
		names []string
		infos = map[string]provider.Info{}
	)

	BeforeAll(func(ctx SpecContext) {
		var err error
		dirs, err = state.Default()
		Expect(err).NotTo(HaveOccurred())
		p, err = qemu.New(qemu.Config{Dirs: dirs, Log: GinkgoWriter})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(p.Close)
		By("getting the image (building it when absent)")
		_, err = p.Image(ctx)
		Expect(err).NotTo(HaveOccurred())
		group := runID("vmt")
		names = []string{group + "-00", group + "-01"}
		DeferCleanup(func(ctx SpecContext) {
			for _, n := range names {
				Expect(p.Delete(ctx, n)).To(Succeed())
			}
		}, NodeTimeout(2*time.Minute))
	}, NodeTimeout(45*time.Minute))

	It("launches two VMs at once that run the user's cloud-init file", func(ctx SpecContext) {
		ud := fixtures.MustRead(fixtures.VMSmoke)
		launched := make([]provider.Info, len(names))
		errs := make([]error, len(names))
		var g errgroup.Group
		for i, n := range names {
			g.Go(func() error {
				defer GinkgoRecover()
				launched[i], errs[i] = p.Launch(ctx, provider.LaunchInput{Name: n, Group: strings.TrimSuffix(n, n[len(n)-3:]), CPUs: framework.NodeCPUs, MemoryMiB: framework.NodeMemoryMiB, DiskGiB: 10, UserData: ud, Log: GinkgoWriter})
				return errs[i]
			})
		}
		g.Wait() // the first error; errs holds each launch's
		for i, n := range names {
			Expect(errs[i]).NotTo(HaveOccurred(), "launching %s", n)
			Expect(launched[i].State).To(Equal(provider.StateRunning))
			infos[n] = launched[i]
		}
	}, NodeTimeout(20*time.Minute))

	It("wrote the marker and installed jq through the apt cache on both", func(ctx SpecContext) {
		for _, n := range names {
			out, err := provider.Run(ctx, p, n, "cat", "/var/lib/bcmtest/marker")
			Expect(err).NotTo(HaveOccurred())
			Expect(out).To(Equal("written by cloud-init\n"))
			out, err = provider.Run(ctx, p, n, "jq", "--version")
			Expect(err).NotTo(HaveOccurred())
			Expect(out).To(HavePrefix("jq-"))
			out, err = provider.Run(ctx, p, n, "sh", "-c", "grep -h 10.0.2.100 /etc/apt/apt.conf.d/*")
			Expect(err).NotTo(HaveOccurred(), "apt proxy configured on %s", n)
			Expect(out).To(ContainSubstring("http://" + qemu.AptProxyAddr))
		}
	}, NodeTimeout(2*time.Minute))

	It("connects the two over the private segment and nowhere else", func(ctx SpecContext) {
		a, b := names[0], names[1]
		_, err := provider.Run(ctx, p, a, "ping", "-c", "2", "-W", "5", infos[b].PrivateIP)
		Expect(err).NotTo(HaveOccurred())
		_, err = provider.Run(ctx, p, b, "ping", "-c", "2", "-W", "5", infos[a].PrivateIP)
		Expect(err).NotTo(HaveOccurred())
		By("finding no route off the machine")
		res, err := p.Exec(ctx, a, provider.ExecInput{Argv: []string{"curl", "-sS", "-m", "5", "-o", "/dev/null", "http://deb.debian.org/"}})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.ExitCode).NotTo(Equal(0), "a VM reached deb.debian.org directly")
	}, NodeTimeout(2*time.Minute))

	It("copies a file in and out", func(ctx SpecContext) {
		Expect(p.CopyIn(ctx, names[0], "/tmp/bcmtest-copy", []byte("round trip\n"), 0o640)).To(Succeed())
		b, err := p.CopyOut(ctx, names[0], "/tmp/bcmtest-copy")
		Expect(err).NotTo(HaveOccurred())
		Expect(string(b)).To(Equal("round trip\n"))
		out, err := provider.Run(ctx, p, names[0], "stat", "-c", "%a", "/tmp/bcmtest-copy")
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.TrimSpace(out)).To(Equal("640"))
	}, NodeTimeout(time.Minute))

	It("deletes both and leaves no qemu process, overlay, seed or state entry", func(ctx SpecContext) {
		for _, n := range names {
			Expect(p.Delete(ctx, n)).To(Succeed())
		}
		vms := filepath.Join(dirs.State, "qemu", "vms")
		Eventually(func() []string { return leaks.Processes(filepath.Join(vms, names[0]), filepath.Join(vms, names[1])) }, framework.GetIntervals("leak-check")...).
			WithContext(ctx).Should(BeEmpty())
		Expect(leaks.Files(vms, 2, names[0]+"*", names[1]+"*", "."+names[0]+"*", "."+names[1]+"*")).To(BeEmpty())
		segment := filepath.Join(dirs.State, "qemu", "segments", strings.TrimSuffix(names[0], "-00"))
		Expect(leaks.Processes(segment+"/")).To(BeEmpty(), "the cluster's segment switch outlived its VMs")
		Expect(segment).NotTo(BeADirectory())
		left, err := p.List(context.Background(), strings.TrimSuffix(names[0], "-00"))
		Expect(err).NotTo(HaveOccurred())
		Expect(left).To(BeEmpty())
	}, NodeTimeout(2*time.Minute))
})
