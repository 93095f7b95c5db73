package e2e

import (
	"slices"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/suites/framework"
)

// Grow then Shrink on the suite's own cluster: the member added is the
// one removed, so the other specs find NAME-00..NN as the suite made them
// whichever order they run in.
var _ = Describe("cluster growth", Label("membership", "nightly", "grow-shrink"), sizeLabel(), func() {
	in := forEachSpec()

	It("grows by one member that joins with the database roles settled, then shrinks it, migrating its container with the data intact", func(ctx SpecContext) {
		before := framework.MemberNames(in.Cluster.Name(), in.Members)
		added, err := in.Cluster.Grow(ctx, cluster.GrowInput{Members: 1})
		Expect(err).NotTo(HaveOccurred())
		Expect(added).To(HaveLen(1))
		extra := added[0].Name
		Expect(extra).To(Equal(cluster.NodeName(in.Cluster.Name(), in.Members+1)), "numbered after the highest node")
		removed := false
		DeferCleanup(func(ctx SpecContext) {
			if !removed {
				Expect(in.Cluster.Shrink(ctx, cluster.ShrinkInput{Member: extra})).To(Succeed())
			}
		})
		ms := framework.Members(ctx, GinkgoT(), framework.MembersInput{Cluster: in.Cluster, Via: extra})
		ok, why := cluster.RolesSettled(ms, len(before)+1)
		Expect(ok).To(BeTrue(), "after %s joined: %s", extra, why)
		GinkgoWriter.Printf("grow by %s: %s\n", extra, in.Cluster.Timings())

		// A container on the new member, with a synced file; the shrink
		// evacuates it to another member.
		framework.ImportInstanceImage(ctx, framework.ImportInstanceImageInput{Cluster: in.Cluster, Alias: workloadAlias})
		inst := framework.RunName("wlg")
		framework.LaunchInstances(ctx, framework.LaunchInstancesInput{Cluster: in.Cluster, Image: workloadAlias,
			Instances: []framework.InstanceSpec{{Name: inst, Target: extra, Config: map[string]string{"cluster.evacuate": "migrate"}}}})
		token := "survives-shrink-" + inst
		framework.RunInInstance(ctx, GinkgoT(), framework.ExecInInstanceInput{Cluster: in.Cluster, Instance: inst,
			Argv: []string{"sh", "-c", "cat > /root/wl-data && sync"}, Stdin: token})

		Expect(in.Cluster.Shrink(ctx, cluster.ShrinkInput{Member: extra})).To(Succeed())
		removed = true
		var names []string
		for _, m := range in.Cluster.Members() {
			names = append(names, m.Name)
		}
		Expect(names).To(Equal(before), "members after the shrink")
		framework.WaitForRolesFilled(ctx, framework.WaitForRolesFilledInput{Cluster: in.Cluster, Via: before[0], Members: len(before)},
			framework.GetIntervals("ready")...)
		got := framework.WaitForInstance(ctx, framework.WaitForInstanceInput{Cluster: in.Cluster, Instance: inst, Status: "Running"})
		Expect(slices.Contains(before, got.Location)).To(BeTrue(), "%s migrated to a remaining member, not %s", inst, got.Location)
		data := framework.RunInInstance(ctx, GinkgoT(), framework.ExecInInstanceInput{Cluster: in.Cluster, Instance: inst, Argv: []string{"cat", "/root/wl-data"}})
		Expect(data).To(Equal(token), "the synced file in %s after its member was removed", inst)
	})
})
