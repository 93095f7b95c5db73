package cluster

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

// Keep marks the cluster as left up on purpose, for why (shown by List):
// sweeps then never remove it, and only an explicit Down does. A cluster
// this run attached to is not this run's to mark: it is left as it is,
// and its lock released.
func (c *Cluster) Keep(why string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.attached {
		c.useLock.Unlock()
		return nil
	}
	if c.destroyed {
		return fmt.Errorf("keeping %s: it was torn down", c.Name())
	}
	lock, err := lockUnlessHeldHere(c.rec.dir, c.Name())
	if err != nil {
		return err
	}
	defer lock.Unlock()
	c.rec.Kept = &KeptMark{Reason: why, At: time.Now().UTC()}
	if err := c.rec.save(); err != nil {
		c.rec.Kept = nil
		return fmt.Errorf("keeping %s: %w", c.Name(), err)
	}
	logf(c.spec.Log, "%s: kept (%s); remove it with `bcmtest down %s`", c.Name(), why, c.Name())
	return nil
}

// ReuseError says why a cluster cannot be reused (BCMTEST_REUSE,
// `bcmtest up --reuse`).
type ReuseError struct {
	Cluster string
	Reason  string
}

func (e *ReuseError) Error() string { return fmt.Sprintf("reusing %s: %s", e.Cluster, e.Reason) }

// checkReusable says whether a run that did not create cluster name may
// attach to it: it must exist on p with a readable record, have been left
// up on purpose (kept, or made by `bcmtest up` and ready), and its owner
// must have ended. Otherwise it returns a *ReuseError saying why, so that
// a reuse never quietly builds a new cluster instead.
func checkReusable(ctx context.Context, p provider.Provider, stateDir, name string) error {
	reason, _, err := keptProblem(ctx, p, stateDir, name)
	if err != nil {
		return fmt.Errorf("reusing %s: %w", name, err)
	}
	if reason != "" {
		return &ReuseError{Cluster: name, Reason: reason}
	}
	return nil
}

// keptProblem says what keeps a process that did not create cluster name
// from using it (a reuse, a Grow or Shrink through Open), or "" when
// nothing does; unknown is set when nothing of the cluster exists. err is
// for failing to find out (listing VMs).
func keptProblem(ctx context.Context, p provider.Provider, stateDir, name string) (reason string, unknown bool, err error) {
	dir := filepath.Join(ClustersDir(stateDir), name)
	vms, err := p.List(ctx, "")
	if err != nil {
		return "", false, fmt.Errorf("listing VMs: %w", err)
	}
	var nodes []string
	for _, v := range vms {
		if isMember(v.Name, v.Group, name) {
			nodes = append(nodes, v.Name)
		}
	}
	rec, err := loadClusterRecord(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist) && len(nodes) == 0:
		return fmt.Sprintf("not found: no VMs of it on %s and no record in %s", p.Name(), dir), true, nil
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("its VMs (%s) have no record in %s, so this harness did not leave them for reuse", strings.Join(nodes, ", "), dir), false, nil
	case err != nil:
		return fmt.Sprintf("its record is unusable: %v; remove it with `bcmtest down %s`", err, name), false, nil
	}
	if rec.Provider != "" && rec.Provider != p.Name() {
		return fmt.Sprintf("it runs on %s, not %s", rec.Provider, p.Name()), false, nil
	}
	if cur := provider.ReleaseOf(p); rec.Image != "" && cur != "" && rec.Image != cur {
		return fmt.Sprintf("its nodes run image %s, not %s; reuse it with --image %s (BCMTEST_IMAGE=%s)", rec.Image, cur, rec.Image, rec.Image), false, nil
	}
	if rec.Owner != os.Getpid() && state.ProcessAlive(rec.Owner) {
		owner := fmt.Sprintf("process %d", rec.Owner)
		if cmd := state.ProcessCommand(rec.Owner); cmd != "" {
			owner += " (" + cmd + ")"
		}
		return fmt.Sprintf("its owner, %s, is still running and may tear it down; reuse it after that run has ended", owner), false, nil
	}
	if rec.Kept == nil && !rec.Persistent {
		return fmt.Sprintf("it was not kept: its run (process %d) ended without BCMTEST_SKIP_TEARDOWN or keep-on-failure, so the next sweep removes it", rec.Owner), false, nil
	}
	if !rec.Ready {
		why := ""
		if rec.Kept != nil {
			why = " (kept: " + rec.Kept.Reason + ")"
		}
		return fmt.Sprintf("it never finished coming up%s; remove it with `bcmtest down %s`", why, name), false, nil
	}
	if len(nodes) == 0 {
		return fmt.Sprintf("its record is in %s but none of its VMs exist on %s; remove it with `bcmtest down %s`", dir, p.Name(), name), false, nil
	}
	return "", false, nil
}
