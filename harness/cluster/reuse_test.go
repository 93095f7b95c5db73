package cluster

import (
	"context"
	"errors"
	"os"
	"testing"
)

// TestReusedClusterIsLockedWhileInUse: a run that reuses a cluster holds
// its lock until it lets the cluster go (Destroy, which leaves an attached
// cluster up), so a second reuse and a `down` meanwhile get a BusyError
// naming the holder, and both work once it has.
func TestReusedClusterIsLockedWhileInUse(t *testing.T) {
	s, fp, _ := specOnFakeLXD(t)
	s.Persistent = true // as `bcmtest up` makes it: reusable once up
	made, err := Up(t.Context(), s)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	reuse := s
	reuse.Reuse = true
	first, err := Up(t.Context(), reuse)
	if err != nil {
		t.Fatalf("first reuse: %v", err)
	}
	if !first.Attached() {
		t.Fatal("the reuse did not attach")
	}
	var be *BusyError
	if _, err := Up(t.Context(), reuse); !errors.As(err, &be) || be.Cluster != "CLUS1" || be.PID != os.Getpid() {
		t.Errorf("second reuse during the first: want a BusyError naming process %d, got %v", os.Getpid(), err)
	}
	if removed, err := Down(t.Context(), fp, s.StateDir, "CLUS1", nil); !errors.As(err, &be) || be.PID != os.Getpid() || len(removed) != 0 {
		t.Errorf("down during a reuse: removed %v, err %v; want a BusyError naming process %d", removed, err, os.Getpid())
	}
	if len(fp.Names()) != 3 {
		t.Fatalf("VMs during the reuse: %v", fp.Names())
	}
	// Letting it go leaves the cluster up and unlocked.
	if err := first.Destroy(context.Background()); err != nil {
		t.Fatal(err)
	}
	second, err := Up(t.Context(), reuse)
	if err != nil {
		t.Fatalf("reuse after the first let go: %v", err)
	}
	// Keep, as a suite that reused it calls, lets it go as well.
	if err := second.Keep("reused, not created by this run"); err != nil {
		t.Fatal(err)
	}
	if err := made.Destroy(context.Background()); err != nil {
		t.Fatalf("down after the reuses: %v", err)
	}
	if left := fp.Names(); len(left) != 0 {
		t.Errorf("VMs left: %v", left)
	}
}
