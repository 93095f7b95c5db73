package workload

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	lxd "github.com/canonical/lxd/client"
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

// heldAsks is an LXD API server that never answers a request hold picks,
// as a paused member does: user-mode networking keeps the TCP connection
// open and nothing comes back. An ask about any other operation finds it
// ended; anything else is not found. Each held request is released when
// the client gives up on it or when the test ends; asks counts the
// requests, queries records each one's query.
type heldAsks struct {
	asks    atomic.Int32
	mu      sync.Mutex
	queries []string
}

func newHeldAsks(t *testing.T, hold func(*http.Request) bool) (lxd.InstanceServer, *heldAsks) {
	t.Helper()
	h := &heldAsks{}
	release := make(chan struct{})
	s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.asks.Add(1)
		h.mu.Lock()
		h.queries = append(h.queries, r.URL.RawQuery)
		h.mu.Unlock()
		if hold(r) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if !strings.HasSuffix(r.URL.Path, "/wait") {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"type":"error","error":"not found","error_code":404}`)
			return
		}
		fmt.Fprint(w, `{"type":"sync","status":"Success","status_code":200,"metadata":{"id":"done","status":"Success","status_code":200}}`)
	}))
	t.Cleanup(s.Close)
	t.Cleanup(func() { close(release) }) // runs first: no handler holds Close up
	return clientOf(t, s), h
}

// clientOf is an LXD client of test server s, pinning its certificate,
// with no proxy and no first request.
func clientOf(t *testing.T, s *httptest.Server) lxd.InstanceServer {
	t.Helper()
	cert := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}))
	srv, err := lxd.ConnectLXD(s.URL, &lxd.ConnectionArgs{TLSServerCert: cert, SkipGetServer: true,
		Proxy: func(*http.Request) (*url.URL, error) { return nil, nil }})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

func (h *heldAsks) lastQuery() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.queries) == 0 {
		return ""
	}
	return h.queries[len(h.queries)-1]
}

func TestWaitOperationReturnsWhenItsContextEndsWhileLXDHoldsTheAsk(t *testing.T) {
	srv, h := newHeldAsks(t, func(r *http.Request) bool { return r.URL.Path == "/1.0/operations/held/wait" })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := WaitOperation(ctx, srv, "held", 30*time.Second)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("WaitOperation = %v, want the context's deadline", err)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("WaitOperation returned %s after its 50 ms context ended", took)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("WaitOperation still waiting 5 s after its 50 ms context ended (%d asks held by LXD)", h.asks.Load())
	}
	if h.asks.Load() == 0 {
		t.Error("LXD was never asked: the test did not reach the wait endpoint")
	}
}

// The bound copy asks as the client it was made from does (same target,
// no project added), and binding it leaves that client free: LXD's own
// WithContext would have set the context on the shared client itself.
func TestWithContextBindsACopyAndLeavesTheClientFree(t *testing.T) {
	base, h := newHeldAsks(t, func(*http.Request) bool { return false })
	srv := base.UseTarget("C-01")
	ctx, cancel := context.WithCancel(context.Background())
	bound := WithContext(ctx, srv)
	if _, _, err := bound.GetOperationWait("done", 1); err != nil {
		t.Fatalf("bound copy, live context: %v", err)
	}
	if q := h.lastQuery(); q != "target=C-01&timeout=1" {
		t.Errorf("bound copy asked with query %q, want target=C-01&timeout=1", q)
	}
	cancel()
	if _, _, err := bound.GetOperationWait("done", 1); !errors.Is(err, context.Canceled) {
		t.Errorf("bound copy, ended context: %v, want context.Canceled", err)
	}
	if _, _, err := srv.GetOperationWait("done", 1); err != nil {
		t.Errorf("the client the copy was made from fails after the copy's context ended: %v", err)
	}
	if q := h.lastQuery(); q != "target=C-01&timeout=1" {
		t.Errorf("the client asked with query %q after binding, want target=C-01&timeout=1", q)
	}
}
