package cluster

import (
	"context"
	"time"
)

// Phase is a step of bringing a cluster up, as progress output shows it.
type Phase string

const (
	PhaseImage         Phase = "image"         // the VM image (and snapshot) is built or looked up
	PhaseLaunching     Phase = "launching"     // a node's VM is being started
	PhaseBooted        Phase = "booted"        // a node's cloud-init is done
	PhaseBootstrapping Phase = "bootstrapping" // LXD clustering starts on NAME-00
	PhaseJoining       Phase = "joining"       // a member is joining
	PhaseJoined        Phase = "joined"        // a member is Online
	PhaseReadiness     Phase = "readiness"     // waiting for roles and trust to settle
	PhaseReady         Phase = "ready"         // the cluster is ready
	PhaseEvacuating    Phase = "evacuating"    // Shrink: the member's instances move away
	PhaseRemoving      Phase = "removing"      // Shrink: the member leaves the LXD cluster
	PhaseDeleting      Phase = "deleting"      // Shrink: the member's VM is deleted
	PhaseRemoved       Phase = "removed"       // Shrink: the member is gone
)

// Event is one step of Up, for progress output. Node is empty for events
// about the whole cluster.
type Event struct {
	Cluster string
	Node    string
	Phase   Phase
	// Elapsed is the time since Up started.
	Elapsed time.Duration
}

// event hands e to the spec's OnEvent hook, if any. The hook runs on Up's
// goroutines and must not block.
func (c *Cluster) event(ctx context.Context, e Event) {
	if c.spec.OnEvent == nil || ctx.Err() != nil {
		return
	}
	e.Cluster = c.Name()
	since := c.rec.Created
	if !c.since.IsZero() {
		since = c.since // a Grow or Shrink counts from its own start
	}
	e.Elapsed = time.Since(since)
	c.spec.OnEvent(e)
}
