package e2e

import (
	"fmt"
	"strings"

	"github.com/canonical/lxd/shared/api"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/BitcoinCacheMachine/bcmtest/suites/framework"
)

var _ = Describe("ZFS", Label("zfs"), sizeLabel(), func() {
	in := forEachSpec()

	It("has the zfs module loaded and the pool ONLINE and healthy on every node", Label("smoke"), func(ctx SpecContext) {
		pool := in.Cluster.Spec().PoolName
		for _, m := range in.Cluster.Members() {
			Expect(in.result(ctx, m.Name, "test", "-d", "/sys/module/zfs").ExitCode).To(Equal(0), "zfs module on %s", m.Name)
			out := in.run(ctx, m.Name, "zpool", "list", "-H", "-o", "name,health")
			Expect(strings.Split(strings.TrimSpace(out), "\n")).To(ContainElement(pool+"\tONLINE"), "zpool list on %s", m.Name)
			Expect(strings.TrimSpace(in.run(ctx, m.Name, "zpool", "status", "-x"))).To(Equal("all pools are healthy"), "zpool status -x on %s", m.Name)
		}
	})

	It("has the LXD storage pool with driver zfs Created on every member", Label("smoke"), func(ctx SpecContext) {
		framework.ExpectMembersOnlineOnZFS(ctx, framework.ExpectMembersOnlineOnZFSInput{
			Cluster: in.Cluster, Members: framework.MemberNames(in.Cluster.Name(), in.Members)})
	})

	It("creates and deletes a custom volume on each member, seen as a ZFS dataset there", Label("nightly"), func(ctx SpecContext) {
		pool := in.Cluster.Spec().PoolName
		for _, m := range in.Cluster.Members() {
			srv, err := in.Cluster.LXDTarget(ctx, m.Name)
			Expect(err).NotTo(HaveOccurred())
			vol := framework.RunName("bcmtest-")
			dataset := fmt.Sprintf("%s/custom/default_%s", pool, vol)
			_, err = framework.RetryTransientE(ctx, GinkgoT(), "creating volume "+vol, func() (string, error) {
				return "", srv.CreateStoragePoolVolume(pool, api.StorageVolumesPost{Name: vol, Type: "custom"})
			})
			Expect(err).NotTo(HaveOccurred(), "creating %s on %s", vol, m.Name)
			DeferCleanup(func() { srv.DeleteStoragePoolVolume(pool, "custom", vol) })
			Expect(strings.TrimSpace(in.run(ctx, m.Name, "zfs", "list", "-H", "-o", "name", dataset))).To(Equal(dataset))
			_, err = framework.RetryTransientE(ctx, GinkgoT(), "deleting volume "+vol, func() (string, error) {
				return "", srv.DeleteStoragePoolVolume(pool, "custom", vol)
			})
			Expect(err).NotTo(HaveOccurred(), "deleting %s on %s", vol, m.Name)
			n := in.node(m.Name)
			Eventually(func(g Gomega) int {
				res, err := framework.ExecE(ctx, GinkgoT(), n, "zfs", "list", "-H", "-o", "name", dataset)
				g.Expect(err).NotTo(HaveOccurred())
				return res.ExitCode
			}, framework.GetIntervals("zfs-dataset-gone")...).WithContext(ctx).ShouldNot(Equal(0), "dataset %s still on %s", dataset, m.Name)
		}
	})
})
