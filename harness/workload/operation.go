package workload

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/canonical/lxd/shared/api"
)

// OperationWaiter is the part of the LXD client WaitOperation uses.
type OperationWaiter interface {
	GetOperationWait(uuid string, timeout int) (*api.Operation, string, error)
}

// OperationFailedError is an LXD operation that ended in failure.
type OperationFailedError struct {
	ID, Status, Err string
}

func (e *OperationFailedError) Error() string {
	return fmt.Sprintf("operation %s %s: %s", e.ID, e.Status, e.Err)
}

// OperationGoneError is an operation LXD no longer knows: it ended, and
// LXD dropped it (a few seconds after the end) before an ask read its
// result.
type OperationGoneError struct{ ID string }

func (e *OperationGoneError) Error() string {
	return fmt.Sprintf("operation %s ended and LXD forgot it before its result was read", e.ID)
}

// WaitOperation waits until LXD operation id ends, asking LXD's operation
// wait endpoint again and again, each ask blocking at most ask on the
// server. The client's own Operation.Wait listens for the end on the
// event feed of the member it is connected to; an operation another
// member runs reaches that feed only through the members' event
// forwarding, which lapsed under load in a 3-member nightly run (heartbeats
// late): the instance was created, its creation was never seen to end.
// The wait endpoint is forwarded to the member that runs the operation.
// Errors from LXD's side (5xx, a broken connection) are asked again until
// ctx ends; a 4xx other than 404 is returned at once. It returns the
// operation as it ended (an exec's exit code is in its metadata).
func WaitOperation(ctx context.Context, srv OperationWaiter, id string, ask time.Duration) (*api.Operation, error) {
	secs := int(ask / time.Second)
	if secs < 1 {
		secs = 1
	}
	var last error
	for {
		if err := ctx.Err(); err != nil {
			if last != nil {
				return nil, fmt.Errorf("%w (last ask: %v)", err, last)
			}
			return nil, err
		}
		op, _, err := srv.GetOperationWait(id, secs)
		var se api.StatusError
		switch {
		case err == nil && op.StatusCode.IsFinal():
			if op.StatusCode != api.Success {
				return op, &OperationFailedError{ID: id, Status: op.Status, Err: op.Err}
			}
			return op, nil
		case err == nil:
			last = nil // still running
		case api.StatusErrorCheck(err, http.StatusNotFound):
			return nil, &OperationGoneError{ID: id}
		case errors.As(err, &se) && se.Status() < 500:
			return nil, fmt.Errorf("asking LXD about operation %s: %w", id, err)
		default:
			last = err
			// An error comes back at once; do not spin on it.
			select {
			case <-ctx.Done():
			case <-time.After(ask):
			}
		}
	}
}
