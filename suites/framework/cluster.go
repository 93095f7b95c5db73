package framework

import (
	"context"
	"fmt"
	"slices"
	"time"

	lxd "github.com/canonical/lxd/client"
	"github.com/canonical/lxd/shared/api"
	"github.com/gruntwork-io/terratest/modules/testing"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
)

// ExpectMembersOnlineOnZFSInput is a cluster and the members it must have.
type ExpectMembersOnlineOnZFSInput struct {
	Cluster *cluster.Cluster
	// Members are exactly the names the cluster must list.
	Members []string
}

// ExpectMembersOnlineOnZFS checks through the LXD API that the cluster's
// members are exactly input.Members, all Online, and that the storage pool
// has driver zfs and is Created on each member (targeted requests). It
// polls (members-online unless intervals are given), so a cluster that is
// still settling after a fault or a join gets its time.
func ExpectMembersOnlineOnZFS(ctx context.Context, input ExpectMembersOnlineOnZFSInput, intervals ...any) {
	GinkgoHelper()
	Expect(input.Cluster).NotTo(BeNil(), "ExpectMembersOnlineOnZFS needs a cluster")
	Expect(input.Members).NotTo(BeEmpty(), "ExpectMembersOnlineOnZFS needs the members to expect")
	c := input.Cluster
	Eventually(func(g Gomega) {
		srv, err := c.LXD(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		ms, err := srv.GetClusterMembers()
		g.Expect(err).NotTo(HaveOccurred(), "listing the members of %s", c.Name())
		var got []string
		for _, m := range ms {
			got = append(got, m.ServerName)
			g.Expect(m.Status).To(Equal("Online"), "status of %s: %s", m.ServerName, m.Message)
		}
		g.Expect(got).To(ConsistOf(input.Members), "members of %s", c.Name())
		for _, name := range input.Members {
			target, err := c.LXDTarget(ctx, name)
			g.Expect(err).NotTo(HaveOccurred())
			pool, _, err := target.GetStoragePool(c.Spec().PoolName)
			g.Expect(err).NotTo(HaveOccurred(), "pool %s on %s", c.Spec().PoolName, name)
			g.Expect(pool.Driver).To(Equal("zfs"), "driver of pool %s on %s", pool.Name, name)
			g.Expect(pool.Status).To(Equal("Created"), "status of pool %s on %s", pool.Name, name)
		}
	}, intervalsOr(intervals, "members-online")...).WithContext(ctx).Should(Succeed())
}

// MemberNames are the node names of cluster name with this many joining
// members: NAME-00 (bootstrap) to NAME-NN.
func MemberNames(name string, members int) []string {
	var names []string
	for i := 0; i <= members; i++ {
		names = append(names, cluster.NodeName(name, i))
	}
	return names
}

// MembersInput names the member whose own API answers a query.
type MembersInput struct {
	Cluster *cluster.Cluster
	// Via is the member asked (its own API, not the bootstrap node's).
	Via string
}

// MembersE lists the members as input.Via sees them, retrying
// known-transient dqlite failures.
func MembersE(ctx context.Context, t testing.TestingT, input MembersInput) ([]api.ClusterMember, error) {
	var ms []api.ClusterMember
	_, err := RetryTransientE(ctx, t, "listing members through "+input.Via, func() (string, error) {
		s, err := input.Cluster.LXDOn(ctx, input.Via)
		if err != nil {
			return "", err
		}
		ms, err = s.GetClusterMembers()
		if err != nil {
			return "", fmt.Errorf("listing members through %s: %w", input.Via, err)
		}
		return "", nil
	})
	return ms, err
}

// Members is MembersE that fails the test on an error.
func Members(ctx context.Context, t testing.TestingT, input MembersInput) []api.ClusterMember {
	t.Helper()
	ms, err := MembersE(ctx, t, input)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// DatabaseLeaderE is the member with the database-leader role as
// input.Via sees it, or "" while there is none.
func DatabaseLeaderE(ctx context.Context, t testing.TestingT, input MembersInput) (string, error) {
	ms, err := MembersE(ctx, t, input)
	if err != nil {
		return "", err
	}
	for _, m := range ms {
		if slices.Contains(m.Roles, "database-leader") {
			return m.ServerName, nil
		}
	}
	return "", nil
}

// DatabaseLeader is DatabaseLeaderE that fails the test on an error.
func DatabaseLeader(ctx context.Context, t testing.TestingT, input MembersInput) string {
	t.Helper()
	l, err := DatabaseLeaderE(ctx, t, input)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// WaitForMemberStatusInput is a member whose status another one reports.
type WaitForMemberStatusInput struct {
	Cluster *cluster.Cluster
	// Via is the member asked, Member the one looked at.
	Via, Member string
	// Status is what Member must reach: Online, Offline...
	Status string
}

// WaitForMemberStatus polls until input.Via reports input.Member with
// input.Status and returns how long that took. intervals are Eventually's
// (timeout, poll), typically GetIntervals("fault-detect").
func WaitForMemberStatus(ctx context.Context, input WaitForMemberStatusInput, intervals ...any) time.Duration {
	GinkgoHelper()
	Expect(intervals).NotTo(BeEmpty(), "WaitForMemberStatus needs intervals: detection and recovery differ")
	start := time.Now()
	Eventually(func(g Gomega) string {
		s, err := input.Cluster.LXDOn(ctx, input.Via)
		g.Expect(err).NotTo(HaveOccurred())
		ms, err := s.GetClusterMembers()
		g.Expect(err).NotTo(HaveOccurred(), "listing members through %s", input.Via)
		for _, m := range ms {
			if m.ServerName == input.Member {
				return m.Status
			}
		}
		return "missing"
	}, intervals...).WithContext(ctx).Should(Equal(input.Status), "%s seen from %s", input.Member, input.Via)
	return time.Since(start)
}

// WaitForNewLeaderInput is a cluster whose database leader must change.
type WaitForNewLeaderInput struct {
	Cluster *cluster.Cluster
	// Via is the member asked; Old the leader that must not be it.
	Via, Old string
}

// WaitForNewLeader polls until input.Via reports a database leader other
// than input.Old and returns it; while dqlite elects one, the API's errors
// are retried like any other not-yet.
func WaitForNewLeader(ctx context.Context, input WaitForNewLeaderInput, intervals ...any) string {
	GinkgoHelper()
	var leader string
	Eventually(func(g Gomega) string {
		s, err := input.Cluster.LXDOn(ctx, input.Via)
		g.Expect(err).NotTo(HaveOccurred())
		ms, err := s.GetClusterMembers()
		g.Expect(err).NotTo(HaveOccurred(), "listing members through %s", input.Via)
		leader = ""
		for _, m := range ms {
			if slices.Contains(m.Roles, "database-leader") {
				leader = m.ServerName
			}
		}
		return leader
	}, intervalsOr(intervals, "fault-detect")...).WithContext(ctx).ShouldNot(Or(BeEmpty(), Equal(input.Old)), "database leader seen from %s", input.Via)
	return leader
}

// WaitForPoolOnlineInput is a node whose zpool must be ONLINE.
type WaitForPoolOnlineInput struct {
	Cluster *cluster.Cluster
	Node    string
}

// WaitForPoolOnline polls `zpool list` on input.Node until the cluster's
// pool is ONLINE (pool-online unless intervals are given).
func WaitForPoolOnline(ctx context.Context, input WaitForPoolOnlineInput, intervals ...any) {
	GinkgoHelper()
	n := NodeOf(input.Cluster, input.Node)
	pool := input.Cluster.Spec().PoolName
	Eventually(func(g Gomega) string {
		out, err := RunE(ctx, GinkgoT(), n, "zpool", "list", "-H", "-o", "name,health", pool)
		g.Expect(err).NotTo(HaveOccurred())
		return out
	}, intervalsOr(intervals, "pool-online")...).WithContext(ctx).Should(ContainSubstring("ONLINE"), "pool %s on %s", pool, input.Node)
}

// ExpectWritableInput is the member a volume is created on.
type ExpectWritableInput struct {
	Cluster *cluster.Cluster
	// Via is the member asked, and the one the volume is placed on.
	Via string
}

// ExpectWritable creates a custom volume through input.Via (polling,
// volume-create unless intervals are given, since a cluster that just lost
// its leader may refuse writes for a while) and deletes it again.
func ExpectWritable(ctx context.Context, input ExpectWritableInput, intervals ...any) {
	GinkgoHelper()
	s, err := input.Cluster.LXDOn(ctx, input.Via)
	Expect(err).NotTo(HaveOccurred())
	pool := input.Cluster.Spec().PoolName
	vol := RunName("bcmtest-")
	var target lxd.InstanceServer = s.UseTarget(input.Via)
	Eventually(func(g Gomega) {
		g.Expect(target.CreateStoragePoolVolume(pool, api.StorageVolumesPost{Name: vol, Type: "custom"})).To(Succeed())
	}, intervalsOr(intervals, "volume-create")...).WithContext(ctx).Should(Succeed(), "creating volume %s through %s", vol, input.Via)
	_, err = RetryTransientE(ctx, GinkgoT(), "deleting volume "+vol, func() (string, error) {
		return "", target.DeleteStoragePoolVolume(pool, "custom", vol)
	})
	Expect(err).NotTo(HaveOccurred(), "deleting volume %s through %s", vol, input.Via)
}

// WaitForRolesFilledInput is a cluster whose members and database roles
// must be whole after a change (a member added or removed, a fault).
type WaitForRolesFilledInput struct {
	Cluster *cluster.Cluster
	// Via is the member asked.
	Via string
	// Members is how many members the cluster must list.
	Members int
}

// WaitForRolesFilled polls until input.Via lists input.Members members,
// every one Online, with the database roles filled (cluster.RolesFilled)
// and returns how long that took.
func WaitForRolesFilled(ctx context.Context, input WaitForRolesFilledInput, intervals ...any) time.Duration {
	GinkgoHelper()
	Expect(intervals).NotTo(BeEmpty(), "WaitForRolesFilled needs intervals")
	start := time.Now()
	Eventually(func(g Gomega) {
		s, err := input.Cluster.LXDOn(ctx, input.Via)
		g.Expect(err).NotTo(HaveOccurred())
		ms, err := s.GetClusterMembers()
		g.Expect(err).NotTo(HaveOccurred(), "listing members through %s", input.Via)
		ok, why := cluster.RolesFilled(ms, input.Members)
		g.Expect(ok).To(BeTrue(), "members through %s: %s", input.Via, why)
	}, intervals...).WithContext(ctx).Should(Succeed())
	return time.Since(start)
}
