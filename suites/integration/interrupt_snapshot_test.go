package integration

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/BitcoinCacheMachine/bcmtest/harness/leaks"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
	"github.com/BitcoinCacheMachine/bcmtest/suites/framework"
)

var _ = Describe("interrupting a snapshot", Label("interrupt", "snapshot"), func() {
	It("leaves no half-written snapshot, template qemu or held lock after SIGINT", func(ctx SpecContext) {
		bin := buildCLI(ctx)
		real, err := state.Default()
		Expect(err).NotTo(HaveOccurred())
		// No snapshots, so `up` has to make one.
		cache := scratchCache(real)
		GinkgoT().Setenv("BCMTEST_CACHE_DIR", cache)
		name := runID("isn")

		up := startUntil(ctx, bin, "template booting", "up", name, "0", "--cpus", "1", "--memory", "1280M")
		DeferCleanup(func() { up.Process.Kill(); exec.Command(bin, "down", name).Run() })
		Expect(up.Process.Signal(syscall.SIGINT)).To(Succeed())
		err = up.Wait()
		var ee *exec.ExitError
		Expect(errors.As(err, &ee)).To(BeTrue(), "up exited 0 after SIGINT")
		Expect(ee.ExitCode()).To(Equal(130))

		snaps := filepath.Join(cache, "snapshots")
		Expect(leaks.Files(snaps, 1, "*.tmp-*")).To(BeEmpty(), "a temporary snapshot was left")
		Expect(leaks.Files(snaps, 2, "snapshot.json")).To(BeEmpty(), "an interrupted snapshot looks complete")
		// Only a qemu with this cache's path is this run's template: other
		// runs on the host may have VMs up.
		Eventually(func() []string { return leaks.ProcessesWithAll("qemu-system", snaps) }, framework.GetIntervals("leak-check")...).
			WithContext(ctx).Should(BeEmpty(), "the template's qemu is still running")
		Expect(leaks.Files(os.TempDir(), 1, "bcmtest-template-*")).To(BeEmpty(), "the template's runtime directory was left")
		locks, _ := filepath.Glob(filepath.Join(snaps, "*.lock"))
		for _, l := range locks {
			lk, err := state.TryLock(l)
			Expect(err).NotTo(HaveOccurred(), "lock %s is still held", l)
			lk.Unlock()
		}
	}, NodeTimeout(15*time.Minute))
})

// scratchCache is a cache directory of its own that shares real's image
// (built once, minutes) and apt cache but has no snapshots.
func scratchCache(real state.Dirs) string {
	cache := GinkgoT().TempDir()
	for _, sub := range []string{"images", "apt"} {
		Expect(os.MkdirAll(filepath.Join(real.Cache, sub), 0o700)).To(Succeed())
		Expect(os.Symlink(filepath.Join(real.Cache, sub), filepath.Join(cache, sub))).To(Succeed())
	}
	return cache
}
