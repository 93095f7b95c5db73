package report

import (
	"strings"
	"testing"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/heartbeat"
	"github.com/BitcoinCacheMachine/bcmtest/harness/kernelcheck"
)

func TestSpecStats(t *testing.T) {
	s := recorded(t)
	stats := s.SpecStats()
	if len(stats) != 8 {
		t.Fatalf("%d specs, want 8", len(stats))
	}
	// Most flaky first: the spec that failed at size 1 and passed there
	// on the other repeat; then the one that failed once at size 3, where
	// it ran only once (a failure, no flake).
	if st := stats[0]; st.Name != flakySpec || st.Passed != 4 || st.Failed != 1 || st.Flaky != 1 || st.Runs() != 5 ||
		len(st.FlakySizes) != 1 || st.FlakySizes[0] != 1 || pct(st.FlakeRate()) != "20.0%" {
		t.Errorf("flaky spec: %+v", st)
	}
	if st := stats[1]; st.Name != failedSpec || st.Passed != 4 || st.Failed != 1 || st.Flaky != 0 {
		t.Errorf("failed spec: %+v", st)
	}
	// The peer spec is skipped on one node: skipped runs do not count.
	for _, st := range stats {
		if strings.HasPrefix(st.Name, "wait-for-it reaches every peer") && (st.Runs() != 3 || st.Passed != 3) {
			t.Errorf("skipped runs counted: %+v", st)
		}
	}
	runs, failed, flaky := s.SpecTotals()
	if runs != 38 || failed != 2 || flaky != 1 {
		t.Errorf("totals %d runs, %d failed, %d flaky; want 38, 2, 1", runs, failed, flaky)
	}
}

// TestFlakeIsEitherOrder: a pass after a failure is a flake as much as a
// failure after a pass; a failure at one size and a pass at another is not.
func TestFlakeIsEitherOrder(t *testing.T) {
	run := func(size, attempt int, state string) Run {
		return Run{Size: size, Attempt: attempt, Specs: []SpecResult{{Name: "s", State: state}}}
	}
	for _, c := range []struct {
		runs  []Run
		flaky int
	}{
		{[]Run{run(1, 1, StateFailed), run(1, 2, StatePassed)}, 1},
		{[]Run{run(1, 1, StatePassed), run(1, 2, StateFailed)}, 1},
		{[]Run{run(1, 1, StateFailed), run(1, 2, StateFailed), run(1, 3, StatePassed)}, 2},
		{[]Run{run(0, 1, StateFailed), run(1, 1, StatePassed)}, 0},
		{[]Run{run(1, 1, StateFailed), run(1, 2, StateSkipped)}, 0},
	} {
		st := Summary{Runs: c.runs}.SpecStats()[0]
		if st.Flaky != c.flaky {
			t.Errorf("%+v: %d flaky, want %d", c.runs, st.Flaky, c.flaky)
		}
	}
}

func TestMarkdownSpecTableRate(t *testing.T) {
	md := Markdown(recorded(t))
	for _, w := range []string{
		"### Specs across runs\n\n38 spec runs over 6 run(s): 2 failed, 1 of them flaky",
		"flake rate 2.6%.\n",
		SpecTableHeader + "\n| --- | --- | ---: | ---: | ---: | ---: | ---: |\n| `" + flakySpec + "` | bookworm | 5 | 4 | 1 | 1 | 20.0% |\n| `" + failedSpec + "` | bookworm | 5 | 4 | 1 | 0 | 0.0% |\n",
	} {
		if !strings.Contains(md, w) {
			t.Errorf("markdown lacks %q:\n%s", w, md)
		}
	}
	one := recorded(t)
	one.Runs = one.Runs[:1]
	if strings.Contains(Markdown(one), "Specs across runs") {
		t.Error("a single run has no per-spec table")
	}
}

// withKernelAndHeartbeats is the recorded summary with a soft lockup and
// the heartbeats of size 1's second run.
func withKernelAndHeartbeats(t *testing.T) Summary {
	s := recorded(t)
	for i := range s.Runs {
		if s.Runs[i].Size == 1 && s.Runs[i].Attempt == 2 {
			s.Runs[i].Kernel = []kernelcheck.Finding{{Node: "bcm-01", Kind: kernelcheck.SoftLockup,
				Sources: []kernelcheck.Source{kernelcheck.Console, kernelcheck.KernelLog},
				Line:    "[  426.104571] watchdog: BUG: soft lockup - CPU#1 stuck for 75s! <swapper/1:0>", SinceBoot: 426104571 * time.Microsecond, Timed: true}}
			s.Runs[i].Heartbeats = []heartbeat.Member{
				{Name: "bcm-00", LateRounds: 2, MaxLate: 53250 * time.Millisecond, TotalLate: 55750 * time.Millisecond},
				{Name: "bcm-01", Failed: 3},
			}
		}
	}
	return s
}

func TestMarkdownKernelAndHeartbeats(t *testing.T) {
	md := Markdown(withKernelAndHeartbeats(t))
	for _, w := range []string{
		"### Kernel findings\n",
		"- image bookworm, size 1 (2 nodes), attempt 2: `bcm-01: soft lockup 426.105 s after boot (serial console, kernel log): [ 426.104571] watchdog: BUG: soft lockup - CPU#1 stuck for 75s! <swapper/1:0>`\n",
		"### LXD heartbeats\n",
		"| bookworm | 1 | 2 | `bcm-00` | 2 | 53.2s | 0 |\n",
		"| bookworm | 1 | 2 | `bcm-01` | 0 | – | 3 |\n",
	} {
		if !strings.Contains(md, w) {
			t.Errorf("markdown lacks %q:\n%s", w, md)
		}
	}
	if md := Markdown(recorded(t)); strings.Contains(md, "Kernel findings") || strings.Contains(md, "LXD heartbeats") {
		t.Error("sections without data")
	}
}

func TestHTMLKernelHeartbeatsAndSpecs(t *testing.T) {
	b, err := HTML(withKernelAndHeartbeats(t))
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, w := range []string{
		`<table id="specs">`,
		"flaky at size 1",
		"<td>20.0%</td>",
		`<ul id="kernel">`,
		// Escaped, never markup.
		"stuck for 75s! &lt;swapper/1:0&gt;</code>",
		`<table id="heartbeats">`,
		`<tr class="mixed"><td class="l">bookworm</td><td>1</td><td>2</td><td class="l">bcm-00</td><td>2</td><td>53.2s</td><td>0</td></tr>`,
	} {
		if !strings.Contains(page, w) {
			t.Errorf("page lacks %q", w)
		}
	}
}

func TestJSONKeepsKernelAndHeartbeats(t *testing.T) {
	s := withKernelAndHeartbeats(t)
	path := t.TempDir() + "/summary.json"
	if err := WriteJSON(path, s); err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSON(path)
	if err != nil {
		t.Fatal(err)
	}
	var got Run
	for _, r := range back.Runs {
		if r.Size == 1 && r.Attempt == 2 {
			got = r
		}
	}
	if len(got.Kernel) != 1 || got.Kernel[0].SinceBoot != 426104571*time.Microsecond || len(got.Heartbeats) != 2 || got.Heartbeats[0].MaxLate != 53250*time.Millisecond {
		t.Errorf("round trip lost data: %+v %+v", got.Kernel, got.Heartbeats)
	}
}
