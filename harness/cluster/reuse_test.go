package cluster

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
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

// releaseProvider is a provider whose nodes run a chosen Debian release.
type releaseProvider struct {
	provider.Provider
	rel string
}

func (r releaseProvider) Release() string { return r.rel }

// TestTheRecordKeepsTheImageAndAReuseOnAnotherIsRefused: a cluster made on
// trixie nodes says so in its record; a reuse through a provider set to
// bookworm is refused naming both and the flag that fixes it, and the
// same release reuses it.
func TestTheRecordKeepsTheImageAndAReuseOnAnotherIsRefused(t *testing.T) {
	s, fp, _ := specOnFakeLXD(t)
	s.Persistent = true
	s.Provider = releaseProvider{Provider: fp, rel: "trixie"}
	made, err := Up(t.Context(), s)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	if got, err := RecordedImage(s.StateDir, "CLUS1"); err != nil || got != "trixie" {
		t.Fatalf("recorded image = %q, %v; want trixie", got, err)
	}
	reuse := s
	reuse.Reuse = true
	reuse.Provider = releaseProvider{Provider: fp, rel: "bookworm"}
	var re *ReuseError
	if _, err := Up(t.Context(), reuse); !errors.As(err, &re) || !strings.Contains(re.Reason, "image trixie, not bookworm") ||
		!strings.Contains(re.Reason, "--image trixie") {
		t.Fatalf("reuse on bookworm: %v", err)
	}
	reuse.Provider = releaseProvider{Provider: fp, rel: "trixie"}
	same, err := Up(t.Context(), reuse)
	if err != nil {
		t.Fatalf("reuse on trixie: %v", err)
	}
	if err := same.Destroy(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := made.Destroy(context.Background()); err != nil {
		t.Fatal(err)
	}
}
