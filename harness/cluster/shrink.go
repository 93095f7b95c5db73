package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	lxd "github.com/canonical/lxd/client"
	"github.com/canonical/lxd/shared/api"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

// ShrinkInput names the member to remove.
type ShrinkInput struct {
	Member string
}

// NotMemberError refuses a name that is not a node of the cluster at all:
// not a node name (NAME-NN), or another cluster's node.
type NotMemberError struct {
	Cluster, Member string
	// Of is the cluster the name's prefix names, "" when it is no node name.
	Of string
}

func (e *NotMemberError) Error() string {
	if e.Of == "" {
		return fmt.Sprintf("shrinking %s: member %q: must be a node name %s-NN", e.Cluster, e.Member, e.Cluster)
	}
	return fmt.Sprintf("shrinking %s: member %s: is a node of cluster %s, not of %s", e.Cluster, e.Member, e.Of, e.Cluster)
}

// UnknownMemberError refuses a node name of the cluster that is not one
// of its members.
type UnknownMemberError struct {
	Cluster, Member string
	Members         []string
}

func (e *UnknownMemberError) Error() string {
	return fmt.Sprintf("shrinking %s: member %s: not a member of %s (members: %s)", e.Cluster, e.Member, e.Cluster, strings.Join(e.Members, ", "))
}

// LastVoterError refuses removing a member that holds the cluster's
// database when no other member could take it over.
type LastVoterError struct {
	Cluster, Member string
	Reason          string
}

func (e *LastVoterError) Error() string {
	return fmt.Sprintf("shrinking %s: member %s: is the last database member and has no replacement (%s)", e.Cluster, e.Member, e.Reason)
}

// Shrink removes in.Member from the cluster as `lxc cluster remove` does,
// through the LXD API: the member is evacuated first (its instances move
// to other members), then removed gracefully (LXD hands its database role
// over and resets it), then its VM is deleted, and Shrink waits until the
// remaining members are Online with the database roles filled
// (RolesFilled). The
// record follows. Refusals, before anything changes: *NotMemberError,
// *UnknownMemberError, *LastVoterError.
func (c *Cluster) Shrink(ctx context.Context, in ShrinkInput) error {
	c.change.Lock()
	defer c.change.Unlock()
	name := in.Member
	if cl, _, ok := splitNodeName(name); !ok || cl != c.Name() {
		return &NotMemberError{Cluster: c.Name(), Member: name, Of: cl}
	}
	before := c.Members()
	var names []string
	for _, m := range before {
		names = append(names, m.Name)
	}
	if !slices.Contains(names, name) {
		return &UnknownMemberError{Cluster: c.Name(), Member: name, Members: names}
	}
	if len(before) == 1 {
		return &LastVoterError{Cluster: c.Name(), Member: name, Reason: "it is the cluster's only member; remove the cluster with `bcmtest down " + c.Name() + "`"}
	}
	lock, err := lockUnlessHeldHere(c.rec.dir, c.Name())
	if err != nil {
		return err
	}
	defer lock.Unlock()
	start := time.Now()
	c.since = start
	fail := func(err error) error { return fmt.Errorf("removing %s from %s: %w", name, c.Name(), err) }
	srv, err := c.clientExcept(ctx, name)
	if err != nil {
		return fail(err)
	}
	ms, err := srv.GetClusterMembers()
	if err != nil {
		return fail(fmt.Errorf("listing members: %w", err))
	}
	if err := replaceable(ms, name); err != nil {
		return &LastVoterError{Cluster: c.Name(), Member: name, Reason: err.Error()}
	}
	logf(c.spec.Log, "%s: removing %s", c.Name(), name)

	c.event(ctx, Event{Node: name, Phase: PhaseEvacuating})
	if err := c.evacuate(ctx, srv, name); err != nil {
		return fail(err)
	}
	logf(c.spec.Log, "%s: evacuated %s in %s", c.Name(), name, time.Since(start).Round(time.Second))

	c.event(ctx, Event{Node: name, Phase: PhaseRemoving})
	if err := c.remove(ctx, srv, name); err != nil {
		return fail(err)
	}
	var rest []Member
	for _, m := range before {
		if m.Name != name {
			rest = append(rest, m)
		}
	}
	c.setMembers(rest)
	logf(c.spec.Log, "%s: %s left the cluster after %s", c.Name(), name, time.Since(start).Round(time.Second))

	c.event(ctx, Event{Node: name, Phase: PhaseDeleting})
	if err := c.p.Delete(ctx, name); err != nil && !errors.Is(err, provider.ErrNotFound) {
		c.saveMembers()
		return fail(fmt.Errorf("deleting its VM: %w", err))
	}
	if err := c.saveMembers(); err != nil {
		return fail(err)
	}
	c.event(ctx, Event{Node: name, Phase: PhaseRemoved})
	c.event(ctx, Event{Phase: PhaseReadiness})
	if err := c.waitRoles(ctx, srv, RolesFilled); err != nil {
		return fail(err)
	}
	c.event(ctx, Event{Phase: PhaseReady})
	logf(c.spec.Log, "%s: removed %s; %d member(s) left, Online with the roles filled, after %s", c.Name(), name, len(rest), time.Since(start).Round(time.Second))
	return nil
}

// replaceable says why member cannot be removed without leaving the
// cluster's database behind with it, or nil: a member holding a database
// role needs another Online member to hand it to.
func replaceable(ms []api.ClusterMember, member string) error {
	var holds bool
	var online []string
	found := false
	for _, m := range ms {
		if m.ServerName == member {
			found = true
			for _, r := range m.Roles {
				if r == "database" || r == "database-leader" {
					holds = true
				}
			}
			continue
		}
		if m.Status == "Online" {
			online = append(online, m.ServerName)
		}
	}
	switch {
	case !found:
		return fmt.Errorf("LXD does not list %s as a member", member)
	case holds && len(online) == 0:
		return errors.New("no other member is Online to take its database role")
	}
	return nil
}

// evacuate moves the member's instances to other members and waits for
// the operation.
func (c *Cluster) evacuate(ctx context.Context, srv lxd.InstanceServer, name string) error {
	ctx, cancel := context.WithTimeout(ctx, c.spec.Intervals.Join)
	defer cancel()
	op, err := srv.UpdateClusterMemberState(name, api.ClusterMemberStatePost{Action: "evacuate"})
	if err != nil {
		return fmt.Errorf("evacuating: %w", err)
	}
	if err := op.WaitContext(ctx); err != nil {
		return fmt.Errorf("evacuating: %w", err)
	}
	return nil
}

// remove takes the member out gracefully (no force: LXD refuses while it
// still holds instances or volumes, and says which) and waits until the
// cluster no longer lists it.
func (c *Cluster) remove(ctx context.Context, srv lxd.InstanceServer, name string) error {
	ctx, cancel := context.WithTimeout(ctx, c.spec.Intervals.Join)
	defer cancel()
	if err := srv.DeleteClusterMember(name, false); err != nil {
		return fmt.Errorf("lxc cluster remove: %w", err)
	}
	return wait.Until(ctx, c.spec.Intervals.Poll, c.spec.Intervals.PollMax, func(context.Context) (bool, string, error) {
		ms, err := srv.GetClusterMembers()
		if err != nil {
			return false, err.Error(), nil
		}
		for _, m := range ms {
			if m.ServerName == name {
				return false, "still listed, " + m.Status, nil
			}
		}
		return true, "", nil
	})
}

// clientExcept connects to the first member other than except whose API
// answers, pinning the cluster certificate: a Shrink must not talk to the
// cluster through the member it removes.
func (c *Cluster) clientExcept(ctx context.Context, except string) (lxd.InstanceServer, error) {
	var errs []error
	for _, m := range c.Members() {
		if m.Name == except {
			continue
		}
		s, err := connect(ctx, m.Endpoint, c.creds)
		if err == nil {
			if _, _, err = s.GetServer(); err == nil {
				return s, nil
			}
		}
		errs = append(errs, fmt.Errorf("%s: %w", m.Name, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("no member's LXD API answers: %w", errors.Join(errs...))
}
