package workload

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestReleaseListenerClosesTheEventsWebsocket: LXD's client opens an
// events websocket when it makes an operation; waiting through the wait
// endpoint (WaitOperation) and then ReleaseListener must leave it closed,
// where before every operation left one open for the rest of the run. The
// client closes an unused websocket on a one-minute tick, so this takes
// about a minute.
func TestReleaseListenerClosesTheEventsWebsocket(t *testing.T) {
	t.Parallel()
	var open, opened atomic.Int32
	up := websocket.Upgrader{}
	s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/1.0/events":
			c, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			opened.Add(1)
			open.Add(1)
			defer open.Add(-1)
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/1.0/instances/"):
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprint(w, `{"type":"async","status":"Operation created","status_code":100,"operation":"/1.0/operations/op1",`+
				`"metadata":{"id":"op1","class":"task","status":"Running","status_code":103}}`)
		case strings.HasPrefix(r.URL.Path, "/1.0/operations/op1"): // the wait endpoint and the refresh
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"type":"sync","status":"Success","status_code":200,"metadata":{"id":"op1","status":"Success","status_code":200}}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"type":"error","error":"not found","error_code":404}`)
		}
	}))
	t.Cleanup(s.Close)
	srv := clientOf(t, s)
	op, err := srv.DeleteInstance("c1")
	if err != nil {
		t.Fatal(err)
	}
	if opened.Load() != 1 {
		t.Fatalf("the client opened %d events websockets for the operation, want 1 (the premise of this test)", opened.Load())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := WaitOperation(ctx, srv, op.Get().ID, time.Second); err != nil {
		t.Fatal(err)
	}
	ReleaseListener(op)
	deadline := time.Now().Add(75 * time.Second)
	for open.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if n := open.Load(); n > 0 {
		t.Fatalf("%d events websocket(s) still open 75 s after the operation ended and its listener was released", n)
	}
}
