// Package wait polls conditions with a context and bounded intervals, so the
// harness never sleeps blindly and every wait can be cancelled.
package wait

import (
	"context"
	"fmt"
	"time"
)

// Intervals names every wait the harness does, so they live in one place and
// can be tuned from configuration instead of literals scattered in code.
type Intervals struct {
	ImageBuild time.Duration // building the VM image from Debian's archive
	Boot       time.Duration // qemu start until SSH answers
	CloudInit  time.Duration // SSH up until cloud-init has finished
	Bootstrap  time.Duration // lxd init on the bootstrap node
	Join       time.Duration // one member joining, until Online
	Ready      time.Duration // the whole cluster settled
	Teardown   time.Duration // deleting every VM of a cluster
	Poll       time.Duration // first poll interval
	PollMax    time.Duration // poll intervals back off up to this
}

// DefaultIntervals are sized for software emulation (TCG) on two cores.
func DefaultIntervals() Intervals {
	return Intervals{
		ImageBuild: 40 * time.Minute,
		Boot:       10 * time.Minute,
		CloudInit:  15 * time.Minute,
		Bootstrap:  5 * time.Minute,
		Join:       5 * time.Minute,
		Ready:      5 * time.Minute,
		Teardown:   2 * time.Minute,
		Poll:       250 * time.Millisecond,
		PollMax:    3 * time.Second,
	}
}

// Until calls cond until it reports done, returns an error, or ctx ends.
// Intervals start at first and double up to max. The last "not yet" reason is
// wrapped in the timeout error so the caller sees why it never got there.
func Until(ctx context.Context, first, max time.Duration, cond func(context.Context) (done bool, why string, err error)) error {
	if first <= 0 {
		first = 250 * time.Millisecond
	}
	if max < first {
		max = first
	}
	interval := first
	var why string
	for {
		done, reason, err := cond(ctx)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		why = reason
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			if why != "" {
				return fmt.Errorf("%w (last seen: %s)", ctx.Err(), why)
			}
			return ctx.Err()
		case <-t.C:
		}
		interval *= 2
		if interval > max {
			interval = max
		}
	}
}
