package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/canonical/lxd/shared/api"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/fakeprovider"
)

// keptOnFakeLXD makes CLUS1 with members joining members as `bcmtest up`
// does (persistent, ready), with fake LXD servers for nodes up to
// CLUS1-(nodes-1) so that a Grow has somewhere to land.
func keptOnFakeLXD(t *testing.T, members, nodes int) (Spec, *fakeprovider.Provider, *fakeLXD) {
	t.Helper()
	s, fp, _ := specOnFakeLXD(t)
	var names []string
	for i := range nodes {
		names = append(names, NodeName(s.Name, i))
	}
	fp = fakeprovider.New()
	f := newFakeLXD(t, fp, names...)
	s.Provider, s.Members, s.Persistent = fp, members, true
	c, err := Up(t.Context(), s)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	c.Release() // as `bcmtest up` ends: the cluster stays up
	return s, fp, f
}

func openFake(t *testing.T, s Spec) *Cluster {
	t.Helper()
	c, err := Open(t.Context(), OpenInput{Name: s.Name, Provider: s.Provider, StateDir: s.StateDir, Intervals: s.Intervals, Log: s.Log})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(c.Release)
	return c
}

func memberNames(c *Cluster) []string {
	var out []string
	for _, m := range c.Members() {
		out = append(out, m.Name)
	}
	return out
}

func (f *fakeLXD) log() (members, changes []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.members), slices.Clone(f.changes)
}

// TestGrowAndShrinkAKeptCluster: a cluster `bcmtest up` left is opened
// from its record, grown by two members numbered after the highest, each
// joined to the running cluster, and the record follows; a member is then
// evacuated, removed gracefully and its VM deleted, in that order; the
// next Grow numbers after the highest remaining node.
func TestGrowAndShrinkAKeptCluster(t *testing.T) {
	s, fp, f := keptOnFakeLXD(t, 1, 5)
	c := openFake(t, s)
	added, err := c.Grow(t.Context(), GrowInput{Members: 2})
	if err != nil {
		t.Fatalf("Grow: %v", err)
	}
	if got := []string{added[0].Name, added[1].Name}; !slices.Equal(got, []string{"CLUS1-02", "CLUS1-03"}) {
		t.Errorf("added %v, want CLUS1-02 and CLUS1-03", got)
	}
	want := []string{"CLUS1-00", "CLUS1-01", "CLUS1-02", "CLUS1-03"}
	members, _ := f.log()
	if !slices.Equal(memberNames(c), want) || !slices.Equal(fp.Names(), want) || len(members) != 4 {
		t.Errorf("after Grow: handle %v, VMs %v, LXD members %v; want %v each", memberNames(c), fp.Names(), members, want)
	}
	if ok, why := RolesSettled(f.clusterMembers(), 4); !ok {
		t.Errorf("roles after Grow: %s", why)
	}
	rec, err := loadClusterRecord(c.StateDir())
	if err != nil || !slices.Equal(rec.Nodes, want) || rec.Members != 3 {
		t.Errorf("record after Grow: %+v, %v", rec, err)
	}
	if rec.Shape == nil || rec.Shape.MemoryMiB != 2048 || rec.Shape.CPUs == 0 {
		t.Errorf("record shape %+v, want the nodes' size as Up resolved it", rec.Shape)
	}

	// Shrink the bootstrap node, which the handle's default client talks
	// to: the removal goes through another member.
	if err := c.Shrink(t.Context(), ShrinkInput{Member: "CLUS1-00"}); err != nil {
		t.Fatalf("Shrink: %v", err)
	}
	_, changes := f.log()
	if !slices.Equal(changes, []string{"evacuate CLUS1-00", "remove CLUS1-00"}) {
		t.Errorf("LXD saw %v, want the member evacuated, then removed without force", changes)
	}
	del := slices.Index(fp.Calls, "delete CLUS1-00")
	if del < 0 {
		t.Fatalf("the VM was not deleted: %v", fp.Calls)
	}
	want = []string{"CLUS1-01", "CLUS1-02", "CLUS1-03"}
	if !slices.Equal(memberNames(c), want) || !slices.Equal(fp.Names(), want) {
		t.Errorf("after Shrink: handle %v, VMs %v; want %v", memberNames(c), fp.Names(), want)
	}
	if rec, err := loadClusterRecord(c.StateDir()); err != nil || !slices.Equal(rec.Nodes, want) || rec.Members != 2 {
		t.Errorf("record after Shrink: %+v, %v", rec, err)
	}
	c.Release()

	// A new handle from the record: the next node is after the highest.
	c = openFake(t, s)
	added, err = c.Grow(t.Context(), GrowInput{Members: 1})
	if err != nil || len(added) != 1 || added[0].Name != "CLUS1-04" {
		t.Fatalf("second Grow: %v, %v; want CLUS1-04", added, err)
	}
}

// TestGrowAndShrinkRefuseBeforeChangingAnything: each refusal is its typed
// error naming the cluster, the member or count and the rule, and neither
// the VMs nor LXD's members change.
func TestGrowAndShrinkRefuseBeforeChangingAnything(t *testing.T) {
	s, fp, f := keptOnFakeLXD(t, 1, 3)
	c := openFake(t, s)
	calls := len(fp.Calls)
	for _, n := range []int{0, -1} {
		_, err := c.Grow(t.Context(), GrowInput{Members: n})
		var ge *GrowCountError
		if !errors.As(err, &ge) || ge.Members != n || !strings.Contains(err.Error(), "must be 1 or more") {
			t.Errorf("Grow by %d: %v; want a GrowCountError saying must be 1 or more", n, err)
		}
	}
	if _, err := c.Grow(t.Context(), GrowInput{Members: 99}); !strings.Contains(err.Error(), "past CLUS1-99") {
		t.Errorf("Grow past the two-digit names: %v", err)
	}
	var nm *NotMemberError
	if err := c.Shrink(t.Context(), ShrinkInput{Member: "CLUS2-01"}); !errors.As(err, &nm) || nm.Of != "CLUS2" || !strings.Contains(err.Error(), "is a node of cluster CLUS2, not of CLUS1") {
		t.Errorf("Shrink of another cluster's node: %v", err)
	}
	if err := c.Shrink(t.Context(), ShrinkInput{Member: "web"}); !errors.As(err, &nm) || nm.Of != "" || !strings.Contains(err.Error(), "must be a node name CLUS1-NN") {
		t.Errorf("Shrink of a name that is no node name: %v", err)
	}
	var um *UnknownMemberError
	if err := c.Shrink(t.Context(), ShrinkInput{Member: "CLUS1-07"}); !errors.As(err, &um) || um.Member != "CLUS1-07" || !strings.Contains(err.Error(), "not a member of CLUS1 (members: CLUS1-00, CLUS1-01)") {
		t.Errorf("Shrink of an unknown member: %v", err)
	}
	// The only other member is Offline: nobody takes the database over.
	f.mu.Lock()
	f.offline["CLUS1-01"] = true
	f.mu.Unlock()
	var lv *LastVoterError
	if err := c.Shrink(t.Context(), ShrinkInput{Member: "CLUS1-00"}); !errors.As(err, &lv) || !strings.Contains(err.Error(), "no other member is Online") {
		t.Errorf("Shrink of the leader with its only peer Offline: %v", err)
	}
	if _, changes := f.log(); len(changes) != 0 || len(fp.Calls) != calls || len(fp.Names()) != 2 {
		t.Errorf("a refusal changed something: LXD %v, provider calls %v", changes, fp.Calls[calls:])
	}
	if _, err := Open(t.Context(), OpenInput{Name: "NOPE", Provider: fp, StateDir: s.StateDir}); !isUnknown(err) {
		t.Errorf("Open of a cluster that does not exist: %v; want an UnavailableError with Unknown", err)
	}
}

func isUnknown(err error) bool {
	var ue *UnavailableError
	return errors.As(err, &ue) && ue.Unknown && strings.Contains(err.Error(), "not found")
}

// TestShrinkRefusesTheOnlyMember: a single-node cluster's member is its
// last database member; nothing is asked of LXD or the provider.
func TestShrinkRefusesTheOnlyMember(t *testing.T) {
	s, fp, f := keptOnFakeLXD(t, 0, 1)
	c := openFake(t, s)
	calls := len(fp.Calls)
	var lv *LastVoterError
	err := c.Shrink(t.Context(), ShrinkInput{Member: "CLUS1-00"})
	if !errors.As(err, &lv) || lv.Member != "CLUS1-00" || !strings.Contains(err.Error(), "is the last database member") {
		t.Errorf("Shrink of the only member: %v", err)
	}
	if _, changes := f.log(); len(changes) != 0 || len(fp.Calls) != calls {
		t.Errorf("the refusal changed something: %v %v", changes, fp.Calls[calls:])
	}
}

// TestGrowThatFailsLeavesNoHalfMadeNode: a new node whose join fails is
// taken out and its VM deleted; the cluster and its record are as before.
func TestGrowThatFailsLeavesNoHalfMadeNode(t *testing.T) {
	s, fp, f := keptOnFakeLXD(t, 1, 3)
	f.failPreseed["CLUS1-02"] = true
	c := openFake(t, s)
	_, err := c.Grow(context.Background(), GrowInput{Members: 1})
	if err == nil || !strings.Contains(err.Error(), "growing CLUS1 by CLUS1-02: joining CLUS1-02 to CLUS1: lxd init --preseed: ") {
		t.Fatalf("Grow with a failing join: %v", err)
	}
	if got := fp.Names(); !slices.Equal(got, []string{"CLUS1-00", "CLUS1-01"}) {
		t.Errorf("VMs after the failed Grow: %v", got)
	}
	if rec, err := loadClusterRecord(c.StateDir()); err != nil || len(rec.Nodes) != 2 {
		t.Errorf("record after the failed Grow: %+v, %v", rec, err)
	}
}

// TestRolesFilledAcceptsWhatLXDLeavesAfterARemoval: after a member leaves,
// two voters or a voter and a standby are both a whole cluster; a member
// without a role, two leaders or one Offline are not.
func TestRolesFilledAcceptsWhatLXDLeavesAfterARemoval(t *testing.T) {
	m := func(name, status string, roles ...string) api.ClusterMember {
		return api.ClusterMember{ServerName: name, Status: status, Roles: roles}
	}
	rows := []struct {
		name    string
		members []api.ClusterMember
		ok      bool
	}{
		{"two voters", []api.ClusterMember{m("a", "Online", "database-leader", "database"), m("b", "Online", "database")}, true},
		{"voter and standby", []api.ClusterMember{m("a", "Online", "database-leader", "database"), m("b", "Online", "database-standby")}, true},
		{"a member without a role", []api.ClusterMember{m("a", "Online", "database-leader", "database"), m("b", "Online")}, false},
		{"two leaders", []api.ClusterMember{m("a", "Online", "database-leader", "database"), m("b", "Online", "database-leader", "database")}, false},
		{"one Offline", []api.ClusterMember{m("a", "Online", "database-leader", "database"), m("b", "Offline", "database")}, false},
		{"no leader", []api.ClusterMember{m("a", "Online", "database"), m("b", "Online", "database")}, false},
	}
	for _, r := range rows {
		if ok, why := RolesFilled(r.members, 2); ok != r.ok {
			t.Errorf("%s: RolesFilled = %v (%s), want %v", r.name, ok, why, r.ok)
		}
	}
	six := make([]api.ClusterMember, 6)
	for i := range six {
		six[i] = m(fmt.Sprint(i), "Online")
	}
	six[0].Roles = []string{"database-leader", "database"}
	six[1].Roles, six[2].Roles = []string{"database"}, []string{"database"}
	six[3].Roles, six[4].Roles = []string{"database-standby"}, []string{"database-standby"}
	if ok, why := RolesFilled(six, 6); !ok {
		t.Errorf("six members with three voters and two standbys: %s", why)
	}
}
