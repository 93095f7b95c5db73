package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParsePhasesTimesEachPhaseAndMarksAnUnfinishedOne(t *testing.T) {
	log := "deps begin 100.0\ndeps end 160.4\nunit begin 160.5\nunit end 460.5\nintegration begin 461\nfuzz begin 470\nfuzz end 530\n"
	ps, err := ParsePhases(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	want := []Phase{{"deps", 60 * time.Second, ""}, {"unit", 300 * time.Second, ""},
		{"integration", 69 * time.Second, "did not finish"}, {"fuzz", 60 * time.Second, ""}}
	if len(ps) != len(want) {
		t.Fatalf("got %v, want %v", ps, want)
	}
	for i := range want {
		if ps[i] != want[i] {
			t.Errorf("phase %d: got %+v, want %+v", i, ps[i], want[i])
		}
	}
}

func TestParsePhasesRejectsAMalformedLineNamingIt(t *testing.T) {
	for _, bad := range []string{"deps start 1\n", "deps begin soon\n", "deps begin\n"} {
		_, err := ParsePhases(strings.NewReader(bad))
		if err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: got %v, want an error naming line 1", bad, err)
		}
	}
}

func TestSplitE2EIntoSnapshotBringUpAndSpecs(t *testing.T) {
	ps := SplitE2E([]Phase{{Name: "e2e", Time: 10 * time.Minute}},
		Timings{Image: 50 * time.Second, Total: 4 * time.Minute})
	want := map[string]time.Duration{"snapshot": 50 * time.Second, "e2e bring-up": 190 * time.Second, "e2e specs": 6 * time.Minute}
	if len(ps) != 3 {
		t.Fatalf("got %v", ps)
	}
	for _, p := range ps {
		if want[p.Name] != p.Time {
			t.Errorf("%s: got %s, want %s", p.Name, p.Time, want[p.Name])
		}
	}
}

func TestStealPercentFromTwoProcStatSamples(t *testing.T) {
	a, err := ParseCPUStat("cpu  100 0 100 700 0 0 0 100 50 0\ncpu0 1 2 3 4 5 6 7 8\n")
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseCPUStat("cpu  200 0 200 1100 0 0 0 500 50 0\n")
	if err != nil {
		t.Fatal(err)
	}
	// 1000 ticks went by, 400 of them stolen; guest ticks are not added again.
	if got := StealPercent(a, b); got != 40 {
		t.Errorf("steal: got %.1f%%, want 40%%", got)
	}
	if _, err := ParseCPUStat("intr 1 2 3\n"); err == nil {
		t.Error("a /proc/stat without a cpu line parsed")
	}
}

func TestFreshEstimateCountsACachedImageAtItsBuildTime(t *testing.T) {
	ps := []Phase{{Name: "image", Time: time.Second}, {Name: "snapshot", Time: 2 * time.Second}, {Name: "unit", Time: 5 * time.Minute}}
	cached := []Cached{{Kind: "image", Current: true, BuildSeconds: 600}, {Kind: "image", Current: false, BuildSeconds: 9000},
		{Kind: "snapshot", Current: true, BuildSeconds: 45}}
	est, notes := FreshEstimate(ps, cached)
	if want := 10*time.Minute + 45*time.Second + 5*time.Minute; est != want {
		t.Errorf("estimate: got %s, want %s", est, want)
	}
	if len(notes) != 2 {
		t.Errorf("notes: got %q, want one for the image and one for the snapshot", notes)
	}
	// A phase that built its entry counts as measured.
	est, notes = FreshEstimate([]Phase{{Name: "image", Time: 11 * time.Minute}}, cached)
	if est != 11*time.Minute || len(notes) != 0 {
		t.Errorf("built in this run: got %s %q", est, notes)
	}
}

func TestTableSaysWhenTheEstimateIsOverBudget(t *testing.T) {
	var b bytes.Buffer
	ps := []Phase{{Name: "image", Time: 13 * time.Minute}, {Name: "integration", Time: 40 * time.Minute}}
	Table(&b, ps, 53*time.Minute, 37.5, 53*time.Minute, nil, 45*time.Minute)
	out := b.String()
	for _, want := range []string{"image", "13m0s", "integration", "40m0s", "total (wall)", "CPU steal over the run: 37.5%", "53m0s, OVER the 45m0s budget"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	Table(&b, ps[:1], 13*time.Minute, 0, 13*time.Minute, nil, 45*time.Minute)
	if !strings.Contains(b.String(), "within the 45m0s budget") {
		t.Errorf("under budget:\n%s", b.String())
	}
}

func TestRunReadsItsFilesAndOrdersThePhases(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	phases := write("phases", "unit begin 10\nunit end 70\ndeps begin 0\ndeps end 5\ne2e begin 5\ne2e end 9\n")
	start := write("s0", "cpu  1 0 0 1 0 0 0 0\n")
	end := write("s1", "cpu  2 0 0 2 0 0 0 0\n")
	timings := write("t.json", `{"Image": 1000000000, "Total": 3000000000}`)
	var b bytes.Buffer
	if err := run(&b, phases, start, end, timings, filepath.Join(dir, "absent.json"), time.Hour, time.Minute); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	iDeps, iSnap, iUnit := strings.Index(out, "deps"), strings.Index(out, "snapshot"), strings.Index(out, "unit")
	if iDeps < 0 || iSnap < iDeps || iUnit < iSnap {
		t.Errorf("want deps, snapshot, unit in that order:\n%s", out)
	}
	if err := run(&b, filepath.Join(dir, "nope"), start, end, "", "", time.Hour, 0); err == nil || !strings.Contains(err.Error(), "phase log") {
		t.Errorf("missing phase log: got %v", err)
	}
}

// TestTableGivesNoVerdictOnARunThatStopped: a run whose e2e specs did not
// finish and whose unit, fuzz and integration phases never began has no
// fresh-machine estimate to judge; the table says what is missing.
func TestTableGivesNoVerdictOnARunThatStopped(t *testing.T) {
	ps := []Phase{{Name: "image", Time: 10 * time.Minute}, {Name: "e2e bring-up", Time: 3 * time.Minute},
		{Name: "e2e specs", Note: "did not finish"}}
	missing := Incomplete(ps, DefaultPhases)
	want := []string{"e2e specs did not finish", "deps did not run", "snapshot did not run", "unit did not run", "fuzz did not run", "integration did not run"}
	for _, w := range want {
		if !slices.Contains(missing, w) {
			t.Errorf("Incomplete = %q, lacks %q", missing, w)
		}
	}
	var b bytes.Buffer
	Table(&b, ps, 25*time.Minute, 0.2, 15*time.Minute, nil, 45*time.Minute, missing...)
	out := b.String()
	if strings.Contains(out, "within") || !strings.Contains(out, "no verdict: the run is incomplete (e2e specs did not finish") {
		t.Errorf("table of a stopped run:\n%s", out)
	}
	if got := Incomplete([]Phase{{Name: "deps"}, {Name: "image"}, {Name: "snapshot"}, {Name: "e2e bring-up"}, {Name: "e2e specs"},
		{Name: "unit"}, {Name: "fuzz"}, {Name: "integration"}}, DefaultPhases); len(got) != 0 {
		t.Errorf("a complete run: Incomplete = %q", got)
	}
}
