package e2e

import (
	"sort"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/suites/framework"
)

var _ = Describe("cluster membership", Label("membership"), sizeLabel(), func() {
	in := forEachSpec()

	It("has NAME-00..NN as members, all Online", Label("smoke"), func(ctx SpecContext) {
		ms := framework.Members(ctx, GinkgoT(), framework.MembersInput{Cluster: in.Cluster, Via: in.Cluster.Members()[0].Name})
		var names []string
		for _, m := range ms {
			names = append(names, m.ServerName)
			Expect(m.Status).To(Equal("Online"), "status of %s: %s", m.ServerName, m.Message)
		}
		Expect(names).To(ConsistOf(framework.MemberNames(in.Cluster.Name(), in.Members)))
	})

	It("has one database-leader and the database members LXD gives this size", Label("smoke"), func(ctx SpecContext) {
		ms := framework.Members(ctx, GinkgoT(), framework.MembersInput{Cluster: in.Cluster, Via: in.Cluster.Members()[0].Name})
		leaders, voters, standbys := cluster.CountRoles(ms)
		wv, ws := cluster.ExpectedRoles(in.Members + 1)
		Expect(leaders).To(Equal(1), "database-leader count")
		Expect(voters).To(Equal(wv), "database (voter) count for %d nodes", in.Members+1)
		Expect(standbys).To(Equal(ws), "database-standby count for %d nodes", in.Members+1)
	})

	It("answers on every member's own API with the pinned certificate, and every member reports the same member list", Label("nightly"), func(ctx SpecContext) {
		var reference []string
		for _, m := range in.Cluster.Members() {
			srv, err := in.Cluster.LXDOn(ctx, m.Name)
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
