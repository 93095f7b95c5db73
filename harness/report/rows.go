package report

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// row is one image and size of the matrix aggregated over its repeats.
// Markdown and HTML render the same rows, so the CI summary and the page
// never disagree.
type row struct {
	Image            string
	Size, Nodes      int
	Runs, PassedRuns int
	// Passed, Failed and Skipped count specs summed over the size's runs.
	Passed, Failed, Skipped int
	// Timed counts runs whose cluster came up; the phase fields are medians
	// over those runs (a median, so one slow VM boot does not move it), and
	// meaningless when Timed is 0.
	Timed                                  int
	Launch, Bootstrap, Joins, Ready, Total time.Duration
	// Flakes counts specs that both passed and failed at this image and size.
	Flakes int
}

// ImageText is the row's image for the tables.
func (r row) ImageText() string { return imageText(r.Image) }

// imageText is an image for a table cell, "–" when not known (a summary
// of schema 1).
func imageText(im string) string {
	if im == "" {
		return "–"
	}
	return im
}

// at says where in the matrix something happened, for the failure and
// kernel lists: "image trixie, size 1 (2 nodes), attempt 2".
func at(image string, size, attempt int) string {
	s := fmt.Sprintf("size %d (%d nodes), attempt %d", size, size+1, attempt)
	if image != "" {
		s = "image " + image + ", " + s
	}
	return s
}

// Class is the row's verdict as a word that is also the page's CSS class.
func (r row) Class() string {
	switch {
	case r.Runs == 0:
		return "notrun"
	case r.PassedRuns == r.Runs:
		return "passed"
	case r.PassedRuns == 0:
		return "failed"
	default:
		return "mixed"
	}
}

// Result is the verdict for a CI summary, with an icon that GitHub's
// Markdown shows in colour, and the pass count once repeats make it
// informative.
func (r row) Result() string {
	icon := map[string]string{"passed": "✅ ", "failed": "❌ ", "mixed": "⚠️ ", "notrun": ""}
	return icon[r.Class()] + r.Verdict()
}

// Verdict is Result without the icon, for the page, whose row colour says
// the same and whose screenshot host may lack an emoji font.
func (r row) Verdict() string {
	word := map[string]string{"passed": "passed", "failed": "failed", "mixed": "mixed", "notrun": "not run"}
	s := word[r.Class()]
	if r.Runs > 1 {
		s += fmt.Sprintf(" (%d/%d)", r.PassedRuns, r.Runs)
	}
	return s
}

// SpecCounts is passed/failed/skipped, as in the table header.
func (r row) SpecCounts() string {
	if r.Runs == 0 {
		return "–"
	}
	return fmt.Sprintf("%d/%d/%d", r.Passed, r.Failed, r.Skipped)
}

// Cells are the phase columns formatted for the table, "–" where unknown
// (a size that never came up, or joins on a one-node cluster).
func (r row) Cells() []string {
	cell := func(d time.Duration) string {
		if r.Timed == 0 {
			return "–"
		}
		return fmtSeconds(d)
	}
	joins := cell(r.Joins)
	if r.Size == 0 {
		joins = "–"
	}
	return []string{cell(r.Launch), cell(r.Bootstrap), joins, cell(r.Ready), cell(r.Total)}
}

// fmtSeconds renders a duration the way the chart's axis counts it.
func fmtSeconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
}

// rows aggregates the summary into one row per image and size: the
// images in order, each with its sizes ascending.
func (s Summary) rows() []row {
	flakesAt := map[Cell]int{}
	for _, f := range s.Flakes() {
		for _, n := range f.Sizes {
			flakesAt[Cell{f.Image, n}]++
		}
	}
	var out []row
	for _, im := range s.images() {
		for _, n := range s.sizes() {
			out = append(out, s.row(Cell{im, n}, flakesAt[Cell{im, n}]))
		}
	}
	return out
}

// row aggregates the runs of one cell.
func (s Summary) row(c Cell, flakes int) row {
	r := row{Image: c.Image, Size: c.Size, Nodes: c.Size + 1, Flakes: flakes}
	var launch, bootstrap, joins, ready, total []time.Duration
	for _, run := range s.Runs {
		if run.Cell() != c {
			continue
		}
		r.Runs++
		if run.Passed {
			r.PassedRuns++
		}
		p, f, sk := run.Counts()
		r.Passed, r.Failed, r.Skipped = r.Passed+p, r.Failed+f, r.Skipped+sk
		if t := run.Timings; t.complete() {
			r.Timed++
			launch = append(launch, t.Launch)
			bootstrap = append(bootstrap, t.Bootstrap)
			joins = append(joins, t.JoinsTotal())
			ready = append(ready, t.Ready)
			total = append(total, t.Total)
		}
	}
	r.Launch, r.Bootstrap, r.Joins = median(launch), median(bootstrap), median(joins)
	r.Ready, r.Total = median(ready), median(total)
	return r
}

// median of ds (the mean of the middle two for an even count), 0 if empty.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// sortedRuns is a copy of the runs ordered by image (in images' order),
// size and attempt, the order of the failure list and the per-run table.
func (s Summary) sortedRuns() []Run {
	runs := append([]Run(nil), s.Runs...)
	rank := s.imageRank()
	sort.SliceStable(runs, func(i, j int) bool {
		if ri, rj := rank[runs[i].Image], rank[runs[j].Image]; ri != rj {
			return ri < rj
		}
		if runs[i].Size != runs[j].Size {
			return runs[i].Size < runs[j].Size
		}
		return runs[i].Attempt < runs[j].Attempt
	})
	return runs
}

// failure is one thing that went wrong in one run: a failed spec, or the
// run's own error when Spec is empty.
type failure struct {
	Image                string
	Size, Nodes, Attempt int
	Spec                 string
	Text                 string
}

// At says which run failed: "image trixie, size 1 (2 nodes), attempt 2".
func (f failure) At() string { return at(f.Image, f.Size, f.Attempt) }

// Headline is the failure in one line for a CI summary: its first
// non-blank line, and when that is a heading ending in a colon (Gomega's
// "Unexpected error:") also the detail lines after it, skipping Gomega's
// "<*T | 0x...>:" type lines; cut to 200 characters. The page shows Text
// in full.
func (f failure) Headline() string {
	const maxRunes, maxLines = 200, 4
	var lines []string
	for l := range strings.Lines(f.Text) {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return ""
	}
	line := lines[0]
	for i := 1; i < len(lines) && i < maxLines && strings.HasSuffix(line, ":"); i++ {
		if !isGomegaType(lines[i]) {
			line += " " + lines[i]
		}
	}
	if r := []rune(line); len(r) > maxRunes {
		line = string(r[:maxRunes-1]) + "…"
	}
	return line
}

// isGomegaType matches the line Gomega prints before a value to name its
// type and address, e.g. "<*errors.errorString | 0xc000a1e2f0>:", which says
// nothing in a one-line summary.
func isGomegaType(l string) bool {
	return strings.HasPrefix(l, "<") && strings.HasSuffix(l, ">:") && strings.Contains(l, " | 0x")
}

// failures lists what went wrong, ordered by image, size, attempt and spec
// order.
func (s Summary) failures() []failure {
	var out []failure
	for _, r := range s.sortedRuns() {
		base := failure{Image: r.Image, Size: r.Size, Nodes: r.Nodes(), Attempt: r.Attempt}
		n := len(out)
		if r.Error != "" {
			f := base
			f.Text = r.Error
			out = append(out, f)
		}
		for _, sp := range r.Specs {
			if sp.State == StateFailed {
				f := base
				f.Spec, f.Text = sp.Name, sp.Failure
				if strings.TrimSpace(f.Text) == "" {
					f.Text = "(no failure message recorded)"
				}
				out = append(out, f)
			}
		}
		if !r.Passed && len(out) == n {
			f := base
			f.Text = "run marked failed without an error or a failed spec"
			out = append(out, f)
		}
	}
	return out
}

// SizesText lists the sizes for people: "0, 3".
func (f Flake) SizesText() string { return sizesText(f.Sizes) }

// Where says where the spec flaked: "on trixie at size 0, 3".
func (f Flake) Where() string {
	w := "at size " + f.SizesText()
	if f.Image != "" {
		w = "on " + f.Image + " " + w
	}
	return w
}

func sizesText(sizes []int) string {
	parts := make([]string, len(sizes))
	for i, n := range sizes {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ", ")
}

// kernelItem is one kernel finding of one run, for the lists.
type kernelItem struct {
	Image                string
	Size, Nodes, Attempt int
	Text                 string
}

// At says which run the finding is from.
func (k kernelItem) At() string { return at(k.Image, k.Size, k.Attempt) }

// kernelItems lists every run's kernel findings, by image, size and attempt.
func (s Summary) kernelItems() []kernelItem {
	var out []kernelItem
	for _, r := range s.sortedRuns() {
		for _, f := range r.Kernel {
			out = append(out, kernelItem{r.Image, r.Size, r.Nodes(), r.Attempt, f.String()})
		}
	}
	return out
}

// heartbeatRow is one member of one run in the heartbeat table.
type heartbeatRow struct {
	Image         string
	Size, Attempt int
	Member        string
	LateRounds    int
	MaxLate       string
	Failed        int
	Class         string // "late" when a round overran or a heartbeat failed
	Unread        string
}

// ImageText is the row's image for the table.
func (h heartbeatRow) ImageText() string { return imageText(h.Image) }

// heartbeatRows lists every run's members, by image, size and attempt.
func (s Summary) heartbeatRows() []heartbeatRow {
	var out []heartbeatRow
	for _, r := range s.sortedRuns() {
		for _, m := range r.Heartbeats {
			h := heartbeatRow{Image: r.Image, Size: r.Size, Attempt: r.Attempt, Member: m.Name, LateRounds: m.LateRounds, Failed: m.Failed, MaxLate: "–", Unread: m.Unread}
			if m.LateRounds > 0 {
				h.MaxLate = fmtSeconds(m.MaxLate)
			}
			if m.LateRounds > 0 || m.Failed > 0 {
				h.Class = "late"
			}
			out = append(out, h)
		}
	}
	return out
}

// pct formats a rate as a percentage with one decimal.
func pct(r float64) string { return strconv.FormatFloat(r*100, 'f', 1, 64) + "%" }

// specRow is a SpecStat formatted for the tables.
type specRow struct {
	SpecStat
	ImageText, Rate, Sizes string
}

// specRows are SpecStats for the tables, with the rate formatted.
func (s Summary) specRows() []specRow {
	var out []specRow
	for _, st := range s.SpecStats() {
		out = append(out, specRow{st, imageText(st.Image), pct(st.FlakeRate()), sizesText(st.FlakySizes)})
	}
	return out
}

// flakeLine is the one-line total under the spec table.
func (s Summary) flakeLine() string {
	runs, failed, flaky := s.SpecTotals()
	rate := 0.0
	if runs > 0 {
		rate = float64(flaky) / float64(runs)
	}
	return fmt.Sprintf("%d spec runs over %d run(s): %d failed, %d of them flaky (failed, then passed on another run of the same image and size, or the other way round): flake rate %s.",
		runs, len(s.Runs), failed, flaky, pct(rate))
}
