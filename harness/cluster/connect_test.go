package cluster

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// TestLXDStopsWithItsContext: connecting to a member whose API accepts the
// connection and then says nothing (a stalled node) returns when the
// caller's context ends, not when some transport timeout does.
func TestLXDStopsWithItsContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close() // held open, never answered
		}
	}()
	c := lxcHandle(t)
	c.members[0].Endpoint = ln.Addr().String()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.LXD(ctx)
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("LXD returned after %s with a context of 300ms", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("LXD error = %v, want one wrapping context.DeadlineExceeded", err)
	}
}
