package cluster

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/fakeprovider"
)

// TestFormationStartsWhileMembersStillBoot: NAME-00 is launched first and
// bootstrapped as soon as it has booted, while the members are still
// booting. Here the members' launches are held until the bootstrap starts:
// with a formation that waited for every boot, Up would never bootstrap.
func TestFormationStartsWhileMembersStillBoot(t *testing.T) {
	fp := fakeprovider.New()
	bootstrapping := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	var events []Event
	var heldTooLong bool
	memberLaunching := make(chan struct{})
	var memberOnce sync.Once
	fp.OnLaunch = func(in provider.LaunchInput) {
		if in.Name == "CLUS1-00" {
			return
		}
		memberOnce.Do(func() { close(memberLaunching) })
		select {
		case <-bootstrapping:
		case <-time.After(10 * time.Second):
			mu.Lock()
			heldTooLong = true
			mu.Unlock()
		}
	}
	// No LXD behind the fake: the bootstrap fails at its first command,
	// which ends Up; what matters is when it started.
	// It fails once a member's launch has begun, so Up's teardown cannot
	// cancel the member launches before they report.
	fp.ExecFunc = func(name string, argv []string) provider.ExecResult {
		select {
		case <-memberLaunching:
		case <-time.After(10 * time.Second):
		}
		return provider.ExecResult{ExitCode: 1, Stderr: []byte("no LXD in the fake")}
	}
	s := validSpec()
	s.Provider, s.StateDir, s.Members, s.MaxParallel = fp, t.TempDir(), 2, 3
	s.OnEvent = func(e Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
		if e.Phase == PhaseBootstrapping {
			once.Do(func() { close(bootstrapping) })
		}
	}
	_, err := Up(t.Context(), s)
	if err == nil {
		t.Fatal("Up succeeded without LXD")
	}
	if heldTooLong {
		t.Fatal("the bootstrap did not start while the members were still booting")
	}
	if got := strings.Count(err.Error(), "bootstrapping CLUS1-00: "); got != 1 {
		t.Errorf("%q appears %d times in: %v", "bootstrapping CLUS1-00: ", got, err)
	}
	if got := strings.Count(err.Error(), "bringing up CLUS1: "); got != 1 {
		t.Errorf("%q appears %d times in: %v", "bringing up CLUS1: ", got, err)
	}
	if len(fp.Calls) == 0 || fp.Calls[0] != "launch CLUS1-00" {
		t.Errorf("CLUS1-00 not launched first: %v", fp.Calls)
	}
	mu.Lock()
	defer mu.Unlock()
	var boot, launchMember int = -1, -1
	for i, e := range events {
		if e.Phase == PhaseBootstrapping && e.Node == "CLUS1-00" && boot < 0 {
			boot = i
		}
		if e.Phase == PhaseLaunching && e.Node != "CLUS1-00" && launchMember < 0 {
			launchMember = i
		}
		if e.Cluster != "CLUS1" {
			t.Errorf("event without its cluster: %+v", e)
		}
	}
	if boot < 0 || launchMember < 0 {
		t.Fatalf("events lack a bootstrap or a member launch: %+v", events)
	}
}

var errBoom = errBoomT{}

type errBoomT struct{}

func (errBoomT) Error() string { return "boom" }
