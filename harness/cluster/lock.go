package cluster

import (
	"errors"
	"fmt"
	"os"

	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

// BusyError says another harness process (or another part of this one)
// holds a cluster's lock: it is being brought up, torn down or swept.
type BusyError struct {
	Cluster string
	// PID is the holder, 0 when unknown.
	PID int
	// Command is the holder's command line, when it could be read.
	Command string
}

func (e *BusyError) Error() string {
	switch {
	case e.PID == 0:
		return fmt.Sprintf("cluster %s is being used by another harness process; try again when it has finished", e.Cluster)
	case e.Command == "":
		return fmt.Sprintf("cluster %s is being used by process %d; try again when it has finished", e.Cluster, e.PID)
	}
	return fmt.Sprintf("cluster %s is being used by process %d (%s); try again when it has finished", e.Cluster, e.PID, e.Command)
}

// Unwrap lets errors.Is(err, state.ErrLocked) see a BusyError.
func (e *BusyError) Unwrap() error { return state.ErrLocked }

// heldHere reports whether this process itself holds the lock: Up does
// while it tears down after a failure.
func (e *BusyError) heldHere() bool { return e.PID == os.Getpid() }

// lockCluster takes the lock of the cluster whose state directory is dir
// (beside it, so removing the state never removes the lock), or returns a
// *BusyError at once.
func lockCluster(dir, name string) (*state.Lock, error) {
	l, err := state.TryLock(dir + ".lock")
	var le *state.LockedError
	if errors.As(err, &le) {
		return nil, &BusyError{Cluster: name, PID: le.PID, Command: state.ProcessCommand(le.PID)}
	}
	return l, err
}

// lockUnlessHeldHere takes the cluster's lock, or returns a nil lock when
// this process already holds it (Up's teardown after a failure, which Up
// unlocks afterwards).
func lockUnlessHeldHere(dir, name string) (*state.Lock, error) {
	l, err := lockCluster(dir, name)
	var be *BusyError
	if errors.As(err, &be) && be.heldHere() {
		return nil, nil
	}
	return l, err
}
