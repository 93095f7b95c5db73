package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
)

// GrowInput says how many members to add.
type GrowInput struct {
	// Members is how many new members to boot and join; at least 1.
	Members int
}

// GrowCountError refuses a Grow by fewer than one member, or past the
// two-digit node names.
type GrowCountError struct {
	Cluster string
	Members int
	Rule    string
}

func (e *GrowCountError) Error() string {
	return fmt.Sprintf("growing %s: members %d: %s", e.Cluster, e.Members, e.Rule)
}

// Grow boots in.Members new members, numbered after the highest node the
// cluster has (CLUS1-03 after CLUS1-02, also when CLUS1-01 was removed),
// joins each to the running cluster as soon as it has booted, and waits
// until every member is Online with the database roles settled. The
// record follows. On a failure the new nodes that did not join are
// removed (their VMs deleted, a half-made member taken out of the
// cluster); members that joined stay, and the error names them.
func (c *Cluster) Grow(ctx context.Context, in GrowInput) ([]Member, error) {
	c.change.Lock()
	defer c.change.Unlock()
	before := c.Members()
	if in.Members < 1 {
		return nil, &GrowCountError{Cluster: c.Name(), Members: in.Members, Rule: "must be 1 or more"}
	}
	next := nextIndex(c.Name(), before, c.rec.Nodes)
	if last := next + in.Members - 1; last > MaxMembers {
		return nil, &GrowCountError{Cluster: c.Name(), Members: in.Members,
			Rule: fmt.Sprintf("the new nodes would end at %s, past %s (node names have two-digit suffixes)", NodeName(c.Name(), last), NodeName(c.Name(), MaxMembers))}
	}
	if len(before) == 0 {
		return nil, fmt.Errorf("growing %s: it has no members to join", c.Name())
	}
	lock, err := lockUnlessHeldHere(c.rec.dir, c.Name())
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	names := c.NextNodes(in.Members)
	start := time.Now()
	c.since = start
	c.timings = newTimings()
	fail := func(err error) ([]Member, error) {
		err = fmt.Errorf("growing %s by %s: %w", c.Name(), strings.Join(names, ", "), err)
		c.cleanUpGrow(context.WithoutCancel(ctx), names, before)
		return nil, err
	}
	logf(c.spec.Log, "%s: growing by %d member(s): %s", c.Name(), in.Members, strings.Join(names, ", "))
	srv, err := c.clientExcept(ctx, "")
	if err != nil {
		return fail(err)
	}
	if err := c.prepare(ctx, names[0]); err != nil {
		return fail(err)
	}
	if _, err := c.launchAndJoin(ctx, names, srv); err != nil {
		return fail(err)
	}
	t := time.Now()
	c.event(ctx, Event{Phase: PhaseReadiness})
	if err := c.waitReady(ctx, srv); err != nil {
		return fail(err)
	}
	for _, name := range names {
		if _, err := c.run(ctx, name, nil, "sync"); err != nil {
			return fail(fmt.Errorf("syncing %s: %w", name, err))
		}
	}
	c.timings.Ready = time.Since(t)
	c.timings.Total = time.Since(start)
	if err := c.saveMembers(); err != nil {
		return nil, fmt.Errorf("growing %s: %w", c.Name(), err)
	}
	c.event(ctx, Event{Phase: PhaseReady})
	logf(c.spec.Log, "%s: grown by %s: %s", c.Name(), strings.Join(names, ", "), c.timings)
	var added []Member
	for _, m := range c.Members() {
		if slices.Contains(names, m.Name) {
			added = append(added, m)
		}
	}
	return added, nil
}

// NextNodes names the n nodes a Grow by n adds (progress output
// announces them before they launch).
func (c *Cluster) NextNodes(n int) []string {
	next := nextIndex(c.Name(), c.Members(), c.rec.Nodes)
	var out []string
	for i := range n {
		out = append(out, NodeName(c.Name(), next+i))
	}
	return out
}

// nextIndex is the index after the highest node the cluster has (its
// members and its record's nodes).
func nextIndex(cluster string, members []Member, recorded []string) int {
	next := 0
	consider := func(name string) {
		if c, i, ok := splitNodeName(name); ok && c == cluster && i+1 > next {
			next = i + 1
		}
	}
	for _, m := range members {
		consider(m.Name)
	}
	for _, n := range recorded {
		consider(n)
	}
	return next
}

// cleanUpGrow removes what a failed Grow made of names that did not end
// up a member: a member LXD lists but the handle does not is taken out
// (forced, as it never became whole), and its VM deleted. What joined
// stays and is recorded.
func (c *Cluster) cleanUpGrow(ctx context.Context, names []string, before []Member) {
	ctx, cancel := context.WithTimeout(ctx, c.spec.Intervals.Teardown)
	defer cancel()
	joined := map[string]bool{}
	for _, m := range c.Members() {
		joined[m.Name] = true
	}
	srv, err := c.clientExcept(ctx, "")
	for _, name := range names {
		if joined[name] {
			continue
		}
		if err == nil {
			if _, _, gerr := srv.GetClusterMember(name); gerr == nil {
				if derr := srv.DeleteClusterMember(name, true); derr != nil {
					logf(c.spec.Log, "%s: taking the half-joined %s out of the cluster: %v", c.Name(), name, derr)
				}
			}
		}
		if derr := c.p.Delete(ctx, name); derr != nil && !errors.Is(derr, provider.ErrNotFound) {
			logf(c.spec.Log, "%s: deleting %s after the failed grow: %v", c.Name(), name, derr)
		} else {
			logf(c.spec.Log, "%s: deleted %s, which did not join", c.Name(), name)
		}
	}
	if len(c.Members()) != len(before) {
		if serr := c.saveMembers(); serr != nil {
			logf(c.spec.Log, "%s: %v", c.Name(), serr)
		}
	}
}

// saveMembers writes the current members to the record (a Grow's or a
// Shrink's result).
func (c *Cluster) saveMembers() error {
	var nodes []string
	for _, m := range c.Members() {
		nodes = append(nodes, m.Name)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rec.Nodes, c.rec.Members = nodes, len(nodes)-1
	return c.rec.save()
}
