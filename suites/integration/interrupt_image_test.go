package integration

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/BitcoinCacheMachine/bcmtest/harness/leaks"
	"github.com/BitcoinCacheMachine/bcmtest/suites/framework"
)

var _ = Describe("interrupting an image build", Label("interrupt"), func() {
	It("makes a second run wait instead of building twice, and SIGINT leaves no half-written image", func(ctx SpecContext) {
		bin := buildCLI(ctx)
		cache := GinkgoT().TempDir() // a cold cache of its own
		GinkgoT().Setenv("BCMTEST_CACHE_DIR", cache)

		first := startUntil(ctx, bin, "building Debian", "image", "build")
		second := startUntil(ctx, bin, "another run is making it; waiting", "image", "build")
		DeferCleanup(func() { first.Process.Kill(); second.Process.Kill() })

		Expect(first.Process.Signal(syscall.SIGINT)).To(Succeed())
		err := first.Wait()
		var ee *exec.ExitError
		Expect(errors.As(err, &ee)).To(BeTrue(), "image build exited 0 after SIGINT")
		Expect(ee.ExitCode()).To(Equal(130))

		// The waiting run now holds the lock and builds; interrupt it too.
		Eventually(func() []string { return leaks.ProcessesWithAll("mmdebstrap", cache) }, framework.GetIntervals("process-start")...).WithContext(ctx).ShouldNot(BeEmpty())
		Expect(second.Process.Signal(syscall.SIGINT)).To(Succeed())
		err = second.Wait()
		Expect(errors.As(err, &ee)).To(BeTrue())
		Expect(ee.ExitCode()).To(Equal(130))

		images := filepath.Join(cache, "images")
		Expect(leaks.Files(images, 1, "*.tmp-*")).To(BeEmpty(), "temporary build left")
		Expect(leaks.Files(images, 2, "manifest.json")).To(BeEmpty(), "an interrupted build looks complete")
		Eventually(func() []string { return leaks.ProcessesWithAll("mmdebstrap", cache) }, framework.GetIntervals("leak-check")...).WithContext(ctx).Should(BeEmpty())
		mounts, _ := os.ReadFile("/proc/mounts")
		Expect(string(mounts)).NotTo(ContainSubstring("mmdebstrap."), "mmdebstrap left mounts")
		Expect(strings.Count(string(mounts), cache)).To(BeZero())
	}, NodeTimeout(10*time.Minute))
})
