package framework

import (
	"context"
	"errors"
	"testing"
)

// TestMoveWaitsForAnOfflineTargetThenTriesAgain: a move refused because
// LXD had marked the target offline (a late heartbeat) is tried once more
// after the target is Online again; a move that failed with its target
// Online is a real failure and returned as it is.
func TestMoveWaitsForAnOfflineTargetThenTriesAgain(t *testing.T) {
	refused := errors.New("Target node is offline")
	cases := []struct {
		name      string
		moves     []error
		online    bool
		waitErr   error
		wantErr   error
		wantMoves int
		wantWaits int
	}{
		{"moved at once", []error{nil}, true, nil, nil, 1, 0},
		{"target offline, then online: moved on the second try", []error{refused, nil}, false, nil, nil, 2, 1},
		{"target online: the failure is the move's", []error{refused}, true, nil, refused, 1, 0},
		{"target stays offline", []error{refused}, false, context.DeadlineExceeded, refused, 1, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			moves, waits := 0, 0
			err := moveOnceOnline(
				func() error { moves++; return c.moves[moves-1] },
				func() (bool, error) { return c.online, nil },
				func() error { waits++; return c.waitErr },
			)
			if !errors.Is(err, c.wantErr) || (c.wantErr == nil && err != nil) {
				t.Errorf("err = %v, want %v", err, c.wantErr)
			}
			if c.waitErr != nil && !errors.Is(err, c.waitErr) {
				t.Errorf("err = %v, want it to say the target stayed offline (%v)", err, c.waitErr)
			}
			if moves != c.wantMoves || waits != c.wantWaits {
				t.Errorf("moves %d, waits %d; want %d and %d", moves, waits, c.wantMoves, c.wantWaits)
			}
		})
	}
}
