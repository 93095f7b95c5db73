package integration

import (
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/BitcoinCacheMachine/bcmtest/fixtures"
	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/leaks"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
	"github.com/BitcoinCacheMachine/bcmtest/suites/framework"
)

var _ = Describe("LXD cluster formation", Label("cluster"), func() {
	var (
		p    *qemu.Provider
		dirs state.Dirs
	)
	BeforeEach(func() {
		var err error
		dirs, err = state.Default()
		Expect(err).NotTo(HaveOccurred())
		p, err = qemu.New(qemu.Config{Dirs: dirs, Log: GinkgoWriter})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(p.Close)
	})

	DescribeTable("brings NAME-00..NN up as one LXD cluster on ZFS and tears it down",
		func(ctx SpecContext, members int) {
			name := runID("clu") + "m" + string(rune('0'+members))
			c, err := cluster.Up(ctx, cluster.Spec{
				Name: name, Members: members, CPUs: framework.NodeCPUs, Memory: framework.NodeMemory, Disk: "12G", PoolSize: "2G",
				CloudInit: fixtures.MustRead(fixtures.BCMDebian), CloudInitName: fixtures.BCMDebian,
				Provider: p, StateDir: dirs.State, Log: GinkgoWriter,
			})
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(func(ctx SpecContext) { Expect(c.Destroy(ctx)).To(Succeed()) }, NodeTimeout(3*time.Minute))
			AddReportEntry("timings "+name, c.Timings().String())

			framework.ExpectMembersOnlineOnZFS(ctx, framework.ExpectMembersOnlineOnZFSInput{
				Cluster: c, Members: framework.MemberNames(name, members)})

			By("destroying it and finding nothing left on the host")
			Expect(c.Destroy(ctx)).To(Succeed())
			vms := filepath.Join(dirs.State, "qemu", "vms")
			Eventually(func() []string { return leaks.Processes(filepath.Join(vms, name+"-")) }, framework.GetIntervals("leak-check")...).
				WithContext(ctx).Should(BeEmpty())
			Expect(leaks.Files(vms, 1, name+"-*")).To(BeEmpty())
			Expect(leaks.Files(cluster.ClustersDir(dirs.State), 1, name)).To(BeEmpty())
		},
		Entry("with 0 members (single node)", NodeTimeout(30*time.Minute), 0),
		Entry("with 2 members (three nodes)", NodeTimeout(40*time.Minute), 2),
	)
})
