package report

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestJSONRoundTripRecorded(t *testing.T) {
	s := recorded(t)
	path := filepath.Join(t.TempDir(), "summary.json")
	if err := WriteJSON(path, s); err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSON(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s, back) {
		t.Errorf("round trip changed the summary:\n got %+v\nwant %+v", back, s)
	}
	// What went in from testdata comes out the same, byte for byte.
	want, _ := os.ReadFile("testdata/summary.json")
	got, _ := os.ReadFile(path)
	if string(got) != string(want) {
		t.Error("rewritten summary differs from testdata/summary.json")
	}
}

func TestJSONRoundTripBuilt(t *testing.T) {
	start := time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
	s := Summary{
		Schema: SchemaVersion, RunID: "r1", Host: "h", Provider: "multipass", Accel: "tcg",
		Started: start, Finished: start.Add(time.Hour), Sizes: []int{0, 1}, Images: []string{"bookworm", "trixie"}, Repeat: 1,
		Runs: []Run{
			{Image: "trixie", Size: 0, Attempt: 1, Started: start, Passed: true,
				Timings: PhaseTimings{Launch: 61234 * time.Millisecond, CloudInit: map[string]time.Duration{"n0": 40 * time.Second},
					Bootstrap: 12 * time.Second, Ready: time.Second, Total: 75 * time.Second},
				Specs: []SpecResult{{Name: "a spec", Labels: []string{"smoke"}, State: StatePassed, Duration: 1500 * time.Millisecond}}},
			{Image: "bookworm", Size: 1, Attempt: 1, Started: start.Add(5 * time.Minute), Error: "cluster failed to come up",
				Timings: PhaseTimings{Launch: 70 * time.Second, Joins: map[string]time.Duration{"n1": 38400 * time.Millisecond}}},
		},
	}
	path := filepath.Join(t.TempDir(), "s.json")
	if err := WriteJSON(path, s); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	for _, w := range []string{`"schema": 2,`, `"images": [`, `"image": "trixie",`, `"launch_s": 61.234`, `"duration_s": 1.5`, `"joins_s": {`, `"n1": 38.4`, `"joins_total_s": 38.4`, `"total_s": 75`} {
		if !strings.Contains(string(raw), w) {
			t.Errorf("JSON lacks %s (durations are seconds):\n%s", w, raw)
		}
	}
	back, err := ReadJSON(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s, back) {
		t.Errorf("round trip changed the summary:\n got %+v\nwant %+v", back, s)
	}
}

func TestReadJSONErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadJSON(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("missing file: no error")
	}
	bad := filepath.Join(dir, "bad.json")
	_ = os.WriteFile(bad, []byte(`{"runs":[{"timings":{"launch_s":"soon"}}]}`), 0o644)
	if _, err := ReadJSON(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("bad duration: err = %v, want one naming the file", err)
	}
}
