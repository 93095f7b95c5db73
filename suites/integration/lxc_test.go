package integration

import (
	"encoding/csv"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/gruntwork-io/terratest/modules/shell"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/BitcoinCacheMachine/bcmtest/fixtures"
	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
	"github.com/BitcoinCacheMachine/bcmtest/suites/framework"
)

var _ = Describe("the lxc client on this host", Label("lxc"), func() {
	It("lists a 1+1 cluster's members as ONLINE through the pinned remote bcmtest up prints", func(ctx SpecContext) {
		_, err := exec.LookPath("lxc")
		Expect(err).NotTo(HaveOccurred(), "this spec needs the lxc client on the host (Debian: apt-get install lxd-client)")

		dirs, err := state.Default()
		Expect(err).NotTo(HaveOccurred())
		p, err := qemu.New(qemu.Config{Dirs: dirs, Log: GinkgoWriter})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(p.Close)

		name := runID("lxc")
		c, err := cluster.Up(ctx, cluster.Spec{
			Name: name, Members: 1, CPUs: framework.NodeCPUs, Memory: framework.NodeMemory, Disk: "12G", PoolSize: "2G",
			CloudInit: fixtures.MustRead(fixtures.BCMDebian), CloudInitName: fixtures.BCMDebian,
			Provider: p, StateDir: dirs.State, Log: GinkgoWriter,
		})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) { Expect(c.Destroy(ctx)).To(Succeed()) }, NodeTimeout(3*time.Minute))
		AddReportEntry("timings "+name, c.Timings().String())

		dir, err := c.WriteLXCConfig()
		Expect(err).NotTo(HaveOccurred())
		line := cluster.LXCCommandLine(dir, name)
		Expect(line).To(And(HavePrefix("LXD_CONF="), HaveSuffix(" lxc cluster list "+name+":")))

		By("running the printed line, in CSV, with no remote added and no certificate accepted by hand")
		out, err := shell.RunCommandContextAndGetStdOutE(GinkgoT(), ctx, framework.HostCommand("sh", "-c", line+" --format csv"))
		Expect(err).NotTo(HaveOccurred())
		// One row per member: NAME,URL,ROLES,...,STATE,MESSAGE; ROLES may
		// span lines inside quotes, so the rows are read as CSV.
		rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		Expect(err).NotTo(HaveOccurred(), "lxc's CSV:\n%s", out)
		online := map[string]bool{} // member -> lxc shows it ONLINE
		for _, r := range rows {
			online[r[0]] = slices.Contains(r[1:], "ONLINE")
		}
		want := map[string]bool{}
		for _, n := range framework.MemberNames(name, 1) {
			want[n] = true
		}
		Expect(online).To(Equal(want), "members and whether lxc shows them ONLINE; lxc printed:\n%s", out)
	}, NodeTimeout(30*time.Minute))
})
