// Command citime prints .ci/run's time table: each phase of a CI run with
// its time, the host's CPU steal over the run, and an estimate of what the
// same run costs on a fresh machine, against the budget.
//
//	go run ./ci/citime -phases LOG -stat-start FILE -stat-end FILE \
//	    [-timings artifacts/RUN/timings.json] [-images images.json] [-budget 45m]
//
// The phase log has lines "NAME begin|end EPOCH-SECONDS" (ci/phase writes
// them). The e2e phase is split with the suite's timings.json into the
// booted snapshot, the cluster's bring-up and the specs. A CPU steal figure
// comes from two copies of /proc/stat's first line, so a slow run can be
// told from a slow change. The images file is `bcmtest image list -o json`:
// where this run found the image or the snapshot cached, the estimate adds
// the time they took when they were built.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// order is the table's row order; phases not in it follow in log order.
var order = []string{"deps", "image", "snapshot", "e2e bring-up", "e2e specs", "unit", "fuzz", "integration"}

// Phase is one row of the table.
type Phase struct {
	Name string
	Time time.Duration
	Note string
}

// ParsePhases reads a phase log. A phase that began and never ended (its
// command failed) is reported with the time up to the log's last mark.
func ParsePhases(r io.Reader) ([]Phase, error) {
	type span struct{ begin, end float64 }
	spans := map[string]*span{}
	var names []string
	last := 0.0
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 || (f[1] != "begin" && f[1] != "end") {
			return nil, fmt.Errorf("phase log line %d: %q: want NAME begin|end EPOCH", n, sc.Text())
		}
		t, err := strconv.ParseFloat(f[2], 64)
		if err != nil {
			return nil, fmt.Errorf("phase log line %d: %q: time must be seconds since the epoch", n, f[2])
		}
		last = max(last, t)
		s := spans[f[0]]
		if s == nil {
			s = &span{}
			spans[f[0]] = s
			names = append(names, f[0])
		}
		if f[1] == "begin" {
			s.begin = t
		} else {
			s.end = t
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	var out []Phase
	for _, n := range names {
		s := spans[n]
		p := Phase{Name: n}
		switch {
		case s.begin == 0:
			p.Note = "no begin mark"
		case s.end == 0:
			p.Time = secs(last - s.begin)
			p.Note = "did not finish"
		default:
			p.Time = secs(s.end - s.begin)
		}
		out = append(out, p)
	}
	return out, nil
}

func secs(f float64) time.Duration { return time.Duration(f * float64(time.Second)).Round(time.Second) }

// Timings is the part of the e2e suite's timings.json the table needs
// (cluster.Timings, durations in nanoseconds).
type Timings struct {
	Image time.Duration `json:"Image"`
	Total time.Duration `json:"Total"`
}

// SplitE2E replaces the e2e phase by the booted snapshot (the suite's image
// phase: the image itself was made in the image phase before), the bring-up
// and the specs.
func SplitE2E(ps []Phase, t Timings) []Phase {
	var out []Phase
	for _, p := range ps {
		if p.Name != "e2e" {
			out = append(out, p)
			continue
		}
		specs := (p.Time - t.Total).Round(time.Second)
		if specs < 0 {
			specs = 0
		}
		out = append(out,
			Phase{Name: "snapshot", Time: t.Image.Round(time.Second), Note: "in make e2e"},
			Phase{Name: "e2e bring-up", Time: (t.Total - t.Image).Round(time.Second)},
			Phase{Name: "e2e specs", Time: specs, Note: p.Note})
	}
	return out
}

// Sorted puts the phases in the table's order.
func Sorted(ps []Phase) []Phase {
	var out []Phase
	used := map[int]bool{}
	for _, name := range order {
		for i, p := range ps {
			if p.Name == name && !used[i] {
				out = append(out, p)
				used[i] = true
			}
		}
	}
	for i, p := range ps {
		if !used[i] {
			out = append(out, p)
		}
	}
	return out
}

// CPUStat is /proc/stat's aggregate cpu line.
type CPUStat struct{ Total, Steal uint64 }

// ParseCPUStat reads the first "cpu " line of /proc/stat's text.
func ParseCPUStat(s string) (CPUStat, error) {
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || f[0] != "cpu" {
			continue
		}
		var st CPUStat
		// user nice system idle iowait irq softirq steal [guest guest_nice]:
		// guest time is already counted in user, so the first eight add up.
		for i := 1; i <= 8; i++ {
			v, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return CPUStat{}, fmt.Errorf("/proc/stat cpu field %d: %q is not a number", i, f[i])
			}
			st.Total += v
			if i == 8 {
				st.Steal = v
			}
		}
		return st, nil
	}
	return CPUStat{}, errors.New(`/proc/stat: no "cpu " line with eight fields`)
}

// StealPercent is the share of CPU time the host took between two samples.
func StealPercent(a, b CPUStat) float64 {
	if b.Total <= a.Total {
		return 0
	}
	return 100 * float64(b.Steal-a.Steal) / float64(b.Total-a.Total)
}

// Cached is an image or snapshot from `bcmtest image list -o json`.
type Cached struct {
	Kind         string  `json:"kind"`
	Current      bool    `json:"current"`
	BuildSeconds float64 `json:"build_seconds"`
	Shape        *struct {
		CPUs      int `json:"cpus"`
		MemoryMiB int `json:"memory_mib"`
	} `json:"shape,omitempty"`
}

// cachedThreshold: a phase this short found its image or snapshot cached.
const cachedThreshold = 30 * time.Second

// FreshEstimate is the run's time on a machine with an empty cache: the
// phases as measured, with the image and snapshot phases that found a
// cached entry replaced by that entry's recorded build time.
func FreshEstimate(ps []Phase, cached []Cached) (time.Duration, []string) {
	var total time.Duration
	var notes []string
	built := func(kind string) (time.Duration, bool) {
		var best time.Duration
		found := false
		for _, c := range cached {
			if c.Kind == kind && c.Current {
				d := time.Duration(c.BuildSeconds * float64(time.Second)).Round(time.Second)
				if d > best {
					best = d
				}
				found = true
			}
		}
		return best, found
	}
	for _, p := range ps {
		d := p.Time
		if (p.Name == "image" || p.Name == "snapshot") && d < cachedThreshold {
			if b, ok := built(p.Name); ok && b > d {
				notes = append(notes, fmt.Sprintf("%s was cached: counted at its recorded build time %s", p.Name, b))
				d = b
			}
		}
		total += d
	}
	return total.Round(time.Second), notes
}

// DefaultPhases are the phases a whole `.ci/run` marks, in order.
var DefaultPhases = []string{"deps", "image", "snapshot", "e2e bring-up", "e2e specs", "unit", "fuzz", "integration"}

// Incomplete lists what keeps ps from being a whole run: expected phases
// that did not finish or never began. An estimate over such a run counts
// the missing phases as nothing, so it can be no verdict.
func Incomplete(ps []Phase, expected []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range ps {
		seen[p.Name] = true
		if p.Note == "did not finish" || p.Note == "no begin mark" {
			out = append(out, p.Name+" "+p.Note)
		}
	}
	for _, e := range expected {
		if !seen[e] {
			out = append(out, e+" did not run")
		}
	}
	return out
}

// Table writes the table, the steal line and the estimate with its
// verdict, or without one when incomplete names what the run lacks.
func Table(w io.Writer, ps []Phase, wall time.Duration, steal float64, estimate time.Duration, notes []string, budget time.Duration, incomplete ...string) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PHASE\tTIME\tNOTE")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Name, p.Time, p.Note)
	}
	fmt.Fprintf(tw, "total (wall)\t%s\t\n", wall.Round(time.Second))
	tw.Flush()
	fmt.Fprintf(w, "CPU steal over the run: %.1f%% of CPU time (from /proc/stat)\n", steal)
	for _, n := range notes {
		fmt.Fprintf(w, "estimate: %s\n", n)
	}
	if len(incomplete) > 0 {
		fmt.Fprintf(w, "fresh-machine estimate: no verdict: the run is incomplete (%s); what ran adds up to %s\n", strings.Join(incomplete, ", "), estimate)
		return
	}
	verdict := "within"
	if estimate > budget {
		verdict = "OVER"
	}
	fmt.Fprintf(w, "fresh-machine estimate (image + snapshot + suites): %s, %s the %s budget\n", estimate, verdict, budget)
}

func main() {
	phases := flag.String("phases", "", "phase log (NAME begin|end EPOCH lines)")
	statStart := flag.String("stat-start", "", "a copy of /proc/stat taken at the start")
	statEnd := flag.String("stat-end", "/proc/stat", "a copy of /proc/stat taken at the end")
	timings := flag.String("timings", "", "the e2e suite's timings.json (optional)")
	images := flag.String("images", "", "`bcmtest image list -o json` output (optional)")
	budget := flag.Duration("budget", 45*time.Minute, "the fresh-machine budget")
	wall := flag.Duration("wall", 0, "the run's wall time")
	flag.Parse()
	if err := run(os.Stdout, *phases, *statStart, *statEnd, *timings, *images, *budget, *wall); err != nil {
		fmt.Fprintln(os.Stderr, "citime:", err)
		os.Exit(1)
	}
}

func run(w io.Writer, phasesPath, statStart, statEnd, timingsPath, imagesPath string, budget, wall time.Duration) error {
	if phasesPath == "" || statStart == "" {
		return errors.New("-phases and -stat-start are required")
	}
	f, err := os.Open(phasesPath)
	if err != nil {
		return fmt.Errorf("reading the phase log: %w", err)
	}
	defer f.Close()
	ps, err := ParsePhases(f)
	if err != nil {
		return err
	}
	if timingsPath != "" {
		if b, err := os.ReadFile(timingsPath); err == nil {
			var t Timings
			if err := json.Unmarshal(b, &t); err != nil {
				return fmt.Errorf("reading %s: %w", timingsPath, err)
			}
			ps = SplitE2E(ps, t)
		}
	}
	ps = Sorted(ps)
	var stats [2]CPUStat
	for i, p := range []string{statStart, statEnd} {
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("reading CPU times: %w", err)
		}
		if stats[i], err = ParseCPUStat(string(b)); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	var cached []Cached
	if imagesPath != "" {
		if b, err := os.ReadFile(imagesPath); err == nil {
			if err := json.Unmarshal(b, &cached); err != nil {
				return fmt.Errorf("reading %s: %w", imagesPath, err)
			}
		}
	}
	est, notes := FreshEstimate(ps, cached)
	Table(w, ps, wall, StealPercent(stats[0], stats[1]), est, notes, budget, Incomplete(ps, DefaultPhases)...)
	return nil
}
