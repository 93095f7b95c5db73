package e2e

import (
	"fmt"
	"strings"
	"time"

	"github.com/canonical/lxd/shared/api"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("ZFS", Label("zfs"), sizeLabel(), func() {
	It("has the zfs module loaded and the pool ONLINE and healthy on every node", Label("smoke"), func(ctx SpecContext) {
		pool := bcm.Spec().PoolName
		for _, m := range bcm.Members() {
			Expect(result(ctx, m.Name, "test", "-d", "/sys/module/zfs").ExitCode).To(Equal(0), "zfs module on %s", m.Name)
			out := run(ctx, m.Name, "zpool", "list", "-H", "-o", "name,health")
			Expect(strings.Split(strings.TrimSpace(out), "\n")).To(ContainElement(pool+"\tONLINE"), "zpool list on %s", m.Name)
			Expect(strings.TrimSpace(run(ctx, m.Name, "zpool", "status", "-x"))).To(Equal("all pools are healthy"), "zpool status -x on %s", m.Name)
		}
	})

	It("has the LXD storage pool with driver zfs Created on every member", Label("smoke"), func(ctx SpecContext) {
		for _, m := range bcm.Members() {
			srv, err := bcm.LXDTarget(m.Name)
			Expect(err).NotTo(HaveOccurred())
			p, _, err := srv.GetStoragePool(bcm.Spec().PoolName)
			Expect(err).NotTo(HaveOccurred(), "pool on %s", m.Name)
			Expect(p.Driver).To(Equal("zfs"))
			Expect(p.Status).To(Equal("Created"), "pool status on %s", m.Name)
		}
	})

	It("creates and deletes a custom volume on each member, seen as a ZFS dataset there", Label("nightly"), func(ctx SpecContext) {
		pool := bcm.Spec().PoolName
		for _, m := range bcm.Members() {
			srv, err := bcm.LXDTarget(m.Name)
			Expect(err).NotTo(HaveOccurred())
			vol := fmt.Sprintf("bcmtest-%d", time.Now().UnixNano()%1e9)
			dataset := fmt.Sprintf("%s/custom/default_%s", pool, vol)
			Expect(srv.CreateStoragePoolVolume(pool, api.StorageVolumesPost{Name: vol, Type: "custom"})).To(Succeed(), "creating %s on %s", vol, m.Name)
			DeferCleanup(func() { srv.DeleteStoragePoolVolume(pool, "custom", vol) })
			Expect(strings.TrimSpace(run(ctx, m.Name, "zfs", "list", "-H", "-o", "name", dataset))).To(Equal(dataset))
			Expect(srv.DeleteStoragePoolVolume(pool, "custom", vol)).To(Succeed())
			Eventually(func() int {
				return result(ctx, m.Name, "zfs", "list", "-H", "-o", "name", dataset).ExitCode
			}).WithContext(ctx).WithTimeout(30*time.Second).ShouldNot(Equal(0), "dataset %s still on %s", dataset, m.Name)
		}
	})
})
