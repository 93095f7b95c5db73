package cloudinit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// cancelAfter is a context whose Err turns to context.Canceled on its
// n+1-th call: a cancellation in the middle of a check, without timing.
type cancelAfter struct {
	context.Context
	n, calls atomic.Int64
}

func newCancelAfter(n int64) *cancelAfter {
	c := &cancelAfter{Context: context.Background()}
	c.n.Store(n)
	return c
}

func (c *cancelAfter) Err() error {
	if c.calls.Add(1) > c.n.Load() {
		return context.Canceled
	}
	return nil
}

func TestLoadContextCancelled(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(p, aliasFanout(500<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	data, err := LoadContext(ctx, p)
	if data != nil || !errors.Is(err, context.Canceled) || err.Error() != p+": cloud-init check stopped: context canceled" {
		t.Fatalf("LoadContext = %d bytes, %v; want the cancellation naming the file", len(data), err)
	}
	if _, err := Load(p); err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("Load = %v, want the file's type errors", err)
	}
}

// Each stage looks at its context while it works, not only before: a
// cancellation part way through stops it within a few thousand steps.
func TestCheckStopsWhenCancelled(t *testing.T) {
	t.Run("parse", func(t *testing.T) {
		ctx := newCancelAfter(10)
		_, err := check(ctx, "vm.yaml", flatList(MaxSize))
		if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "vm.yaml: ") {
			t.Fatalf("check = %v, want the cancellation naming the file", err)
		}
		// One look per 512-byte read: a full parse would make 2048.
		if n := ctx.calls.Load(); n > 20 {
			t.Errorf("the parse looked at its context %d times after it was cancelled", n-10)
		}
	})
	t.Run("walk", func(t *testing.T) {
		data := aliasFanout(500 << 10)
		c := walk(t, newCancelAfter(3), data)
		if !errors.Is(c.err, context.Canceled) {
			t.Fatalf("walk err = %v, want context.Canceled", c.err)
		}
		total := walk(t, context.Background(), data).visits
		if c.visits > 4*pollEvery+1 || c.visits >= total {
			t.Errorf("walk made %d of %d visits after the cancellation", c.visits, total)
		}
	})
	t.Run("locating a syntax error", func(t *testing.T) {
		data := syntaxErrorAtEnd()
		// Let the first parse finish, then cancel during the search.
		ctx := newCancelAfter(int64(len(data)/512 + 50))
		_, err := check(ctx, "vm.yaml", data)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("check = %v, want context.Canceled", err)
		}
		if n := ctx.calls.Load() - ctx.n.Load(); n > 100 {
			t.Errorf("the search looked at its context %d times after it was cancelled", n)
		}
	})
}
