package workload

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	lxd "github.com/canonical/lxd/client"
	"github.com/canonical/lxd/shared/api"
)

// WithContext returns a client on srv's connection (its project and
// target kept) whose requests end when ctx ends. The clients the harness
// makes carry context.Background(), so without this a member that stops
// answering while its TCP connection stays open (a paused VM behind
// user-mode networking) holds a request forever. LXD's own
// ProtocolLXD.WithContext sets the context on the client it is called
// on, which every holder of srv shares and goroutines race on; this sets
// it on a copy. A client of another kind (a test double) is returned as
// it is.
func WithContext(ctx context.Context, srv lxd.InstanceServer) lxd.InstanceServer {
	p, ok := srv.(*lxd.ProtocolLXD)
	if !ok {
		return srv
	}
	info, err := p.GetConnectionInfo()
	if err != nil { // it reads fields only; kept for the signature's sake
		return srv
	}
	project := info.Project
	if project == api.ProjectDefaultName {
		project = "" // as ConnectLXD leaves it: no ?project= on every request
	}
	// UseProject makes a new client on the same HTTP client, target kept.
	c, ok := p.UseProject(project).(*lxd.ProtocolLXD)
	if !ok {
		return srv
	}
	return c.WithContext(ctx)
}

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
// operation as it ended (an exec's exit code is in its metadata). An ask
// LXD holds (a paused member) ends with ctx: an LXD client is asked
// through a copy bound to ctx (WithContext).
func WaitOperation(ctx context.Context, srv OperationWaiter, id string, ask time.Duration) (*api.Operation, error) {
	if s, ok := srv.(lxd.InstanceServer); ok {
		srv = WithContext(ctx, s)
	}
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

// ReleaseListener frees the event listener LXD's client opened for op when
// it made the request (its early listener, for a Wait). WaitOperation asks
// the wait endpoint instead of waiting on op, and only a Wait frees that
// listener; while a client has one, it keeps an events websocket open on
// the member, which sends it every event. One was left per operation: half
// way through a 1+1 smoke run the suite held 29 connections to the
// bootstrap's API. The Wait here runs once op's end is known (it refreshes
// op and returns), in a goroutine, so a member that stops answering holds
// nothing of the caller's. The client closes the websocket within a minute
// of its last listener going.
func ReleaseListener(op lxd.Operation) {
	if op == nil {
		return
	}
	go func() { _ = op.WaitContext(context.Background()) }()
}
