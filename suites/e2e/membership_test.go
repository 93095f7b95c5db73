package e2e

import (
	"sort"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
)

var _ = Describe("cluster membership", Label("membership"), sizeLabel(), func() {
	expected := func() []string {
		var names []string
		for i := 0; i <= cfg.Members; i++ {
			names = append(names, cluster.NodeName(bcm.Name(), i))
		}
		return names
	}

	It("has NAME-00..NN as members, all Online", Label("smoke"), func(ctx SpecContext) {
		srv, err := bcm.LXD()
		Expect(err).NotTo(HaveOccurred())
		ms, err := srv.GetClusterMembers()
		Expect(err).NotTo(HaveOccurred())
		var names []string
		for _, m := range ms {
			names = append(names, m.ServerName)
			Expect(m.Status).To(Equal("Online"), "status of %s: %s", m.ServerName, m.Message)
		}
		Expect(names).To(ConsistOf(expected()))
	})

	It("has one database-leader and the database members LXD gives this size", Label("smoke"), func(ctx SpecContext) {
		srv, err := bcm.LXD()
		Expect(err).NotTo(HaveOccurred())
		ms, err := srv.GetClusterMembers()
		Expect(err).NotTo(HaveOccurred())
		leaders, voters, standbys := cluster.CountRoles(ms)
		wv, ws := cluster.ExpectedRoles(cfg.Members + 1)
		Expect(leaders).To(Equal(1), "database-leader count")
		Expect(voters).To(Equal(wv), "database (voter) count for %d nodes", cfg.Members+1)
		Expect(standbys).To(Equal(ws), "database-standby count for %d nodes", cfg.Members+1)
	})

	It("answers on every member's own API with the pinned certificate, and every member reports the same member list", Label("nightly"), func(ctx SpecContext) {
		var reference []string
		for _, m := range bcm.Members() {
			srv, err := bcm.LXDOn(m.Name)
			Expect(err).NotTo(HaveOccurred(), "connecting to %s", m.Name)
			info, _, err := srv.GetServer()
			Expect(err).NotTo(HaveOccurred(), "GET /1.0 on %s", m.Name)
			Expect(info.Auth).To(Equal("trusted"), "harness certificate trusted on %s", m.Name)
			Expect(info.Environment.ServerName).To(Equal(m.Name))
			ms, err := srv.GetClusterMembers()
			Expect(err).NotTo(HaveOccurred())
			var names []string
			for _, x := range ms {
				names = append(names, x.ServerName+"="+x.Status)
			}
			sort.Strings(names)
			if reference == nil {
				reference = names
				continue
			}
			Expect(names).To(Equal(reference), "member list seen by %s", m.Name)
		}
	})
})
