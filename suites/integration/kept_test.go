package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/gruntwork-io/terratest/modules/shell"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/BitcoinCacheMachine/bcmtest/harness/leaks"
	"github.com/BitcoinCacheMachine/bcmtest/suites/framework"
)

// A cluster `bcmtest up` leaves for a person is one they work in: apt must
// work there as it did during cloud-init, after `up` has returned, and the
// apt cache that serves it must end with the cluster's `down`.
var _ = Describe("a kept cluster", Label("kept", "cluster"), func() {
	It("installs packages with apt after `bcmtest up` returned, and leaves no apt cache after `bcmtest down`", func(ctx SpecContext) {
		// A state directory of its own: the apt cache lives while any VM
		// of its state directory runs, so no other cluster may share it.
		stateDir := GinkgoT().TempDir()
		env := map[string]string{"BCMTEST_STATE_DIR": stateDir}
		bin := buildCLI(ctx)
		cli := func(args ...string) *shell.Command {
			c := framework.HostCommand(bin, args...)
			c.Env = env
			return c
		}
		name := runID("kpt")
		DeferCleanup(func(ctx SpecContext) {
			if err := shell.RunCommandContextE(GinkgoT(), ctx, cli("down", name)); err != nil {
				GinkgoWriter.Printf("safety net: bcmtest down %s: %v\n", name, err)
			}
		})
		shell.RunCommandContext(GinkgoT(), ctx, cli("up", name, "1", "--cpus", "1", "--memory", "1536M", "--disk", "12G", "--pool-size", "2G", "--provider", "qemu"))

		// `up` has exited; its VMs and the state directory's cache run on.
		var rec struct {
			PID int    `json:"pid"`
			Dir string `json:"dir"`
		}
		b, err := os.ReadFile(filepath.Join(stateDir, "aptcache", "cache.json"))
		Expect(err).NotTo(HaveOccurred(), "the shared apt cache's record")
		Expect(json.Unmarshal(b, &rec)).To(Succeed())
		conf := filepath.Join(rec.Dir, "conf")
		Expect(leaks.ProcessesWithAll("apt-cacher-ng", conf)).To(HaveLen(1), "the kept cluster's apt cache is not running")

		node := name + "-01"
		out, err := shell.RunCommandContextAndGetOutputE(GinkgoT(), ctx, cli("exec", node, "--", "sh", "-c", "apt-get update && apt-get install -y jq"))
		Expect(err).NotTo(HaveOccurred(), "apt-get install on %s after up returned:\n%s", node, out)
		Expect(shell.RunCommandContextAndGetOutput(GinkgoT(), ctx, cli("exec", node, "--", "jq", "--version"))).To(ContainSubstring("jq-"))

		shell.RunCommandContext(GinkgoT(), ctx, cli("down", name))
		Eventually(func() []string { return leaks.ProcessesWithAll("apt-cacher-ng", conf) }, framework.GetIntervals("leak-check")...).
			WithContext(ctx).Should(BeEmpty(), "the apt cache outlived the last VM of its state directory")
	}, NodeTimeout(30*time.Minute))
})
