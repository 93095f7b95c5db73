package main

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/progress"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/fakeprovider"
)

func TestUpLineShowsTheImagePhase(t *testing.T) {
	tm := cluster.Timings{Image: 3*time.Minute + 12*time.Second, Launch: time.Minute, Total: 5 * time.Minute,
		Booted: map[string]time.Duration{}, CloudInit: map[string]time.Duration{}, Joins: map[string]time.Duration{}}
	line := upLine("CLUS1", tm)
	if !strings.Contains(line, "Cluster CLUS1 is up (image 3m12s, ") {
		t.Errorf("the summary does not lead with the image phase: %q", line)
	}
}

// preparing is a provider with Prepare, as the embedded one has.
type preparing struct {
	*fakeprovider.Provider
	prepared bool
}

func (p *preparing) Prepare(ctx context.Context, in provider.LaunchInput) error {
	p.prepared = true
	return nil
}

// phaseHook records the OnPhase hook each launch got.
type phaseHook struct {
	*fakeprovider.Provider
	hooked []string
}

func (p *phaseHook) Launch(ctx context.Context, in provider.LaunchInput) (provider.Info, error) {
	if in.OnPhase != nil {
		p.hooked = append(p.hooked, in.Name)
		in.OnPhase(provider.BootModulesFinal)
	}
	return p.Provider.Launch(ctx, in)
}

func TestWithPhasesKeepsPrepareAndHooksLaunches(t *testing.T) {
	var buf bytes.Buffer
	pr := progress.New(&buf, progress.Options{Mode: progress.Plain, Now: time.Now})
	prep := &preparing{Provider: fakeprovider.New()}
	w := withPhases(prep, pr, false)
	cp, ok := w.(cluster.Preparer)
	if !ok {
		t.Fatal("the wrapper hides the provider's Prepare: Up would not time the image phase")
	}
	cp.Prepare(context.Background(), provider.LaunchInput{})
	if !prep.prepared {
		t.Error("Prepare did not reach the provider")
	}
	if _, ok := withPhases(fakeprovider.New(), pr, false).(cluster.Preparer); ok {
		t.Error("the wrapper adds a Prepare the provider lacks")
	}

	hook := &phaseHook{Provider: fakeprovider.New()}
	lone := withPhases(hook, pr, true)
	if _, err := lone.Launch(context.Background(), provider.LaunchInput{Name: "cicheck-1", CPUs: 1}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(hook.hooked, []string{"cicheck-1"}) {
		t.Errorf("launches with a phase hook: %v", hook.hooked)
	}
	out := buf.String()
	for _, w := range []string{"cicheck-1: launching (0s)", "cicheck-1: cloud-init modules-final"} {
		if !strings.Contains(out, w) {
			t.Errorf("progress lacks %q:\n%s", w, out)
		}
	}
	// A lone launch ends the display: later phases are not shown.
	pr.Boot("cicheck-1", provider.BootDone)
	if strings.Contains(buf.String(), "cloud-init done") {
		t.Errorf("progress went on after the lone launch returned:\n%s", buf.String())
	}
}

func TestNodeNames(t *testing.T) {
	if got := nodeNames("CLUS1", 2); !slices.Equal(got, []string{"CLUS1-00", "CLUS1-01", "CLUS1-02"}) {
		t.Errorf("nodeNames = %v", got)
	}
}

// releaseOnly is a provider that says which release its nodes run.
type releaseOnly struct{ provider.Provider }

func (releaseOnly) Release() string { return "trixie" }

// TestPhasesKeepTheProvidersRelease: the progress wrapper `up` and `grow`
// put around the provider still says which release it boots, or the
// cluster's record would name none and a later grow would boot the default.
func TestPhasesKeepTheProvidersRelease(t *testing.T) {
	pr := newProgress(io.Discard)
	defer pr.Close()
	for _, lone := range []bool{false, true} {
		if got := provider.ReleaseOf(withPhases(releaseOnly{}, pr, lone)); got != "trixie" {
			t.Errorf("withPhases(lone=%v): ReleaseOf = %q, want trixie", lone, got)
		}
	}
}
