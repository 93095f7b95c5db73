package workload

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/canonical/lxd/shared/api"
)

// askAnswers answers each GetOperationWait with the next scripted reply.
type askAnswers struct {
	replies []askReply
	asks    int
	timeout int
}

type askReply struct {
	op  *api.Operation
	err error
}

func (a *askAnswers) GetOperationWait(_ string, timeout int) (*api.Operation, string, error) {
	a.timeout = timeout
	r := a.replies[min(a.asks, len(a.replies)-1)]
	a.asks++
	return r.op, "", r.err
}

func opIn(code api.StatusCode, msg string) *api.Operation {
	return &api.Operation{StatusCode: code, Status: code.String(), Err: msg}
}

func TestWaitOperationAsksUntilTheOperationEnds(t *testing.T) {
	srv := &askAnswers{replies: []askReply{
		{op: opIn(api.Running, "")},
		{err: api.StatusErrorf(http.StatusServiceUnavailable, "no available dqlite leader server found")},
		{op: opIn(api.Running, "")},
		{op: opIn(api.Success, "")},
	}}
	op, err := WaitOperation(context.Background(), srv, "op1", 10*time.Millisecond)
	if err != nil || op.StatusCode != api.Success {
		t.Fatalf("WaitOperation = %v, %v; want the ended operation", op, err)
	}
	if srv.asks != 4 || srv.timeout != 1 {
		t.Errorf("asked %d times with timeout %d s, want 4 times, at least 1 s", srv.asks, srv.timeout)
	}
}

func TestWaitOperationReportsHowItEnded(t *testing.T) {
	var failed *OperationFailedError
	_, err := WaitOperation(context.Background(), &askAnswers{replies: []askReply{{op: opIn(api.Failure, "no space left")}}}, "op1", time.Second)
	if !errors.As(err, &failed) || failed.Err != "no space left" {
		t.Errorf("failed operation: %v, want an OperationFailedError with LXD's message", err)
	}
	var gone *OperationGoneError
	_, err = WaitOperation(context.Background(), &askAnswers{replies: []askReply{{err: api.StatusErrorf(http.StatusNotFound, "not found")}}}, "op1", time.Second)
	if !errors.As(err, &gone) {
		t.Errorf("forgotten operation: %v, want an OperationGoneError", err)
	}
	srv := &askAnswers{replies: []askReply{{err: api.StatusErrorf(http.StatusForbidden, "not authorized")}}}
	if _, err := WaitOperation(context.Background(), srv, "op1", time.Second); err == nil || srv.asks != 1 {
		t.Errorf("refused ask: %v after %d asks, want an error after one", err, srv.asks)
	}
}

func TestWaitOperationEndsWithItsContextNamingTheLastError(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	srv := &askAnswers{replies: []askReply{{err: errors.New("connection reset by peer")}}}
	_, err := WaitOperation(ctx, srv, "op1", 10*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) || srv.asks < 2 {
		t.Fatalf("WaitOperation = %v after %d asks, want the deadline after asking again", err, srv.asks)
	}
	if got := err.Error(); !strings.Contains(got, "connection reset by peer") {
		t.Errorf("error %q does not name the last ask's error", got)
	}
}
