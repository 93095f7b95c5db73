// Package wait polls conditions with a context and bounded intervals, so the
// harness never sleeps blindly and every wait can be cancelled. It also
// holds the one table of named waits (Intervals) that the harness and the
// suites take their timeouts and poll intervals from.
package wait

import (
	"context"
	"fmt"
	"time"
)

// Interval is one named wait: how long to wait at most and, for a wait
// that polls, how long between tries (0 for a plain timeout).
type Interval struct {
	Timeout time.Duration
	Poll    time.Duration
}

// Intervals names every wait the harness and the suites do, so they live in
// one place and can be tuned from configuration (BCMTEST_INTERVALS, see
// Load) instead of literals scattered in code. The phase timeouts are plain
// durations (their polls back off from Poll to PollMax); the rest are
// (timeout, poll) pairs. Names() lists the configuration key of each field.
type Intervals struct {
	ImageBuild time.Duration // image-build: building the VM image from Debian's archive
	Boot       time.Duration // boot: qemu start until SSH answers
	CloudInit  time.Duration // cloud-init: SSH up until cloud-init has finished (result.json)
	Bootstrap  time.Duration // bootstrap: lxd init on the bootstrap node
	Join       time.Duration // join: one member joining, until Online
	Ready      time.Duration // ready: the whole cluster settled
	Teardown   time.Duration // teardown: deleting every VM of a cluster, or cleanup after a failure
	Poll       time.Duration // poll: first poll interval of the phases above
	PollMax    time.Duration // poll-max: their poll intervals back off up to this

	LXDWaitReady    Interval      // lxd-waitready: the in-guest `lxd waitready --timeout`
	Dial            Interval      // dial: one connection to a VM (SSH dial and handshake, a forwarded port); poll: between dials while it boots
	QMP             Interval      // qmp: QEMU's monitor socket answering, one exchange with it; poll: the socket and migration status
	ProcessExit     Interval      // process-exit: a signalled process (qemu, a proxy, a client) is gone
	VMStop          Interval      // vm-stop: a guest's own shutdown before it is forced off
	AccelProbe      Interval      // accel-probe: the test boot that decides whether KVM works
	AptCacheStart   Interval      // apt-cache-start: the host's apt cache answering
	ArchiveRead     Interval      // archive-read: one InRelease file of the archive read through the apt cache
	ArchiveFresh    time.Duration // archive-fresh: how long a reading of the archive's state is trusted before it is read again
	SnapshotUpgrade time.Duration // snapshot-upgrade: a snapshot's template upgrading itself to the archive's state
	DiagExec        Interval      // diag-exec: one diagnostic command on a node that may be unreachable
	MultipassDetect Interval      // multipass-detect: `multipass version` answering
	RetryTransient  Interval      // retry-transient: retrying a known-transient failure (dqlite busy or electing, SSH reset)
	Screenshot      Interval      // screenshot: headless Chromium rendering the report
	SchemaCheck     Interval      // schema-check: `cloud-init schema` run in the VM image's root tree

	MembersOnline  Interval // members-online: every member Online with the pool Created (spec)
	TorActive      Interval // tor-active: tor@default active and SOCKS listening (spec)
	OnionHostname  Interval // onion-hostname: the onion service's hostname written (spec)
	ZFSDatasetGone Interval // zfs-dataset-gone: a deleted volume's dataset gone (spec)
	FaultDetect    Interval // fault-detect: a fault seen by the cluster (spec)
	FaultRecover   Interval // fault-recover: the cluster whole again after a fault (spec)
	VolumeCreate   Interval // volume-create: a custom volume created (spec)
	PoolOnline     Interval // pool-online: the zpool ONLINE (spec)
	LeakCheck      Interval // leak-check: nothing of a run left on the host (spec)
	ProcessStart   Interval // process-start: a process (qemu's pidfile, a build a spec waits for) has started
	JournalEntry   Interval // journal-entry: a logged line reached the journal (spec)

	ImageImport     Interval // image-import: uploading the instance image to the cluster and LXD unpacking it (spec)
	InstanceOp      Interval // instance-op: one LXD instance operation: create, start, stop, move, copy, snapshot, restore, delete; Poll is how long one ask of LXD's operation wait may block (spec)
	InstanceState   Interval // instance-state: an instance reaching a status on a member (spec)
	InstanceNetwork Interval // instance-network: one instance reaching another over the instance network (spec)
	MemberEvacuate  Interval // member-evacuate: a member evacuated or restored, its instances moved or stopped and back; Poll as for instance-op (spec)
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
		// A bring-up waits on each of these polls in turn (the template at
		// its gate, the bootstrap's trust, each join, readiness): a 3 s cap
		// cost up to 3 s at every step, for calls that cost next to nothing.
		PollMax: time.Second,

		LXDWaitReady:  Interval{Timeout: 4 * time.Minute},
		Dial:          Interval{Timeout: 20 * time.Second, Poll: 250 * time.Millisecond},
		QMP:           Interval{Timeout: 30 * time.Second, Poll: 20 * time.Millisecond},
		ProcessExit:   Interval{Timeout: 10 * time.Second, Poll: 100 * time.Millisecond},
		VMStop:        Interval{Timeout: time.Minute},
		AccelProbe:    Interval{Timeout: 15 * time.Second, Poll: 200 * time.Millisecond},
		AptCacheStart: Interval{Timeout: 20 * time.Second, Poll: 100 * time.Millisecond},
		ArchiveRead:   Interval{Timeout: 30 * time.Second},
		// Runs minutes apart make one reading; a new archive state is
		// seen within this long.
		ArchiveFresh:    5 * time.Minute,
		SnapshotUpgrade: 20 * time.Minute,
		DiagExec:        Interval{Timeout: 30 * time.Second},
		MultipassDetect: Interval{Timeout: 30 * time.Second},
		RetryTransient:  Interval{Timeout: 30 * time.Second, Poll: 2 * time.Second},
		Screenshot:      Interval{Timeout: 2 * time.Minute},
		SchemaCheck:     Interval{Timeout: 2 * time.Minute},

		MembersOnline:  Interval{Timeout: 2 * time.Minute, Poll: time.Second},
		TorActive:      Interval{Timeout: time.Minute, Poll: time.Second},
		OnionHostname:  Interval{Timeout: time.Minute, Poll: time.Second},
		ZFSDatasetGone: Interval{Timeout: 30 * time.Second, Poll: time.Second},
		// LXD marks a member Offline after cluster.offline_threshold (20 s
		// by default); detection gets a generous multiple of that under
		// software emulation, recovery a reboot and a rejoin.
		FaultDetect:  Interval{Timeout: 3 * time.Minute, Poll: time.Second},
		FaultRecover: Interval{Timeout: 8 * time.Minute, Poll: time.Second},
		VolumeCreate: Interval{Timeout: 2 * time.Minute, Poll: time.Second},
		PoolOnline:   Interval{Timeout: 2 * time.Minute, Poll: time.Second},
		LeakCheck:    Interval{Timeout: time.Minute, Poll: 500 * time.Millisecond},
		ProcessStart: Interval{Timeout: time.Minute, Poll: 50 * time.Millisecond},
		JournalEntry: Interval{Timeout: 30 * time.Second, Poll: time.Second},
		// Instances under TCG: a first launch on a member unpacks the
		// image there (~30 s for 24 MB), and evacuating a member moves
		// each of its containers in turn (~30 s each).
		ImageImport:     Interval{Timeout: 10 * time.Minute},
		InstanceOp:      Interval{Timeout: 10 * time.Minute, Poll: 5 * time.Second},
		InstanceState:   Interval{Timeout: 3 * time.Minute, Poll: time.Second},
		InstanceNetwork: Interval{Timeout: time.Minute, Poll: time.Second},
		MemberEvacuate:  Interval{Timeout: 15 * time.Minute, Poll: 5 * time.Second},
	}
}

// Until calls cond until it reports done, returns an error, or ctx ends.
// Intervals start at first and double up to max. The last "not yet" reason is
// wrapped in the timeout error so the caller sees why it never got there.
func Until(ctx context.Context, first, max time.Duration, cond func(context.Context) (done bool, why string, err error)) error {
	if first <= 0 {
		first = DefaultIntervals().Poll
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
		// An attempt the deadline cut short saw only the deadline: keep
		// what the one before it saw.
		if ctx.Err() == nil || why == "" {
			why = reason
		}
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

// For is Until bounded by iv.Timeout and polling every iv.Poll, for the
// named waits that poll at a steady pace.
func For(ctx context.Context, iv Interval, cond func(context.Context) (done bool, why string, err error)) error {
	ctx, cancel := context.WithTimeout(ctx, iv.Timeout)
	defer cancel()
	return Until(ctx, iv.Poll, iv.Poll, cond)
}
