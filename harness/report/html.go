package report

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"math"
	"sort"
	"strings"
	"time"
)

// chartJS is Chart.js's UMD build (see assets/README.md for version and
// licence). It is inlined into every page rather than linked, so a report
// opened from a CI artifact or an air-gapped host still draws its chart.
//
//go:embed assets/chart.umd.min.js
var chartJS string

//go:embed assets/report.html.tmpl
var pageTemplate string

// phase is one line of the chart: a label, a colour, and how to read the
// phase from a row. The colours are distinct from the table's pass/fail
// backgrounds so a screenshot test can tell chart pixels from table pixels.
type phase struct {
	Label string
	Color string
	of    func(row) time.Duration
}

// phases are the chart's series in legend order.
func phases() []phase {
	return []phase{
		{"launch", "#1f77b4", func(r row) time.Duration { return r.Launch }},
		{"bootstrap", "#ff7f0e", func(r row) time.Duration { return r.Bootstrap }},
		{"joins", "#2ca02c", func(r row) time.Duration { return r.Joins }},
		{"ready", "#9467bd", func(r row) time.Duration { return r.Ready }},
		{"total", "#d62728", func(r row) time.Duration { return r.Total }},
	}
}

// chartData is what the page's script plots: Series[i].Data[j] is the
// phase's median in seconds on the series' image at Nodes[j], null where no
// run of that image and size came up (the line then bridges the gap).
// html/template encodes it as JSON.
type chartData struct {
	Nodes []int `json:"nodes"`
	// Images are the images with lines, in the table's order.
	Images []string      `json:"images"`
	Series []chartSeries `json:"series"`
}

// chartSeries is one phase on one image: the phase is the colour, the
// image the line's dash pattern and point style, so a phase compares
// across images at a glance.
type chartSeries struct {
	Label string `json:"label"`
	Image string `json:"image,omitempty"`
	Color string `json:"color"`
	// Dash is the line's dash pattern (Chart.js borderDash), empty for a
	// solid line; Point the point style.
	Dash  []int      `json:"dash"`
	Point string     `json:"point"`
	Data  []*float64 `json:"data"`
}

// imageStyles are the dash patterns and point styles of the images' lines,
// in image order (then again from the first).
var imageStyles = []struct {
	dash  []int
	point string
}{
	{[]int{}, "circle"},
	{[]int{10, 6}, "rect"},
	{[]int{3, 4}, "triangle"},
}

func newChartData(rows []row) chartData {
	var c chartData
	var images []string
	seenNodes, seenImage := map[int]bool{}, map[string]bool{}
	for _, r := range rows {
		if !seenNodes[r.Nodes] {
			seenNodes[r.Nodes] = true
			c.Nodes = append(c.Nodes, r.Nodes)
		}
		if !seenImage[r.Image] {
			seenImage[r.Image] = true
			images = append(images, r.Image)
		}
	}
	sort.Ints(c.Nodes)
	c.Images = images
	nodeAt := map[int]int{}
	for i, n := range c.Nodes {
		nodeAt[n] = i
	}
	for i, im := range images {
		style := imageStyles[i%len(imageStyles)]
		for _, p := range phases() {
			cs := chartSeries{Label: p.Label, Image: im, Color: p.Color, Dash: style.dash, Point: style.point, Data: make([]*float64, len(c.Nodes))}
			if len(images) > 1 && im != "" {
				cs.Label += " · " + im
			}
			for _, r := range rows {
				if r.Image == im && r.Timed > 0 {
					v := math.Round(p.of(r).Seconds()*1000) / 1000
					cs.Data[nodeAt[r.Nodes]] = &v
				}
			}
			c.Series = append(c.Series, cs)
		}
	}
	return c
}

// runView is one run formatted for the page's per-run table, the detail
// behind the per-size medians.
type runView struct {
	Image                                  string
	Size, Attempt                          int
	Class, Started, Result, Specs          string
	Launch, Bootstrap, Joins, Ready, Total string
	JoinDetail, CloudInit                  string
}

func newRunView(r Run) runView {
	v := runView{Image: imageText(r.Image), Size: r.Size, Attempt: r.Attempt, Class: "failed", Result: "failed"}
	if r.Passed {
		v.Class, v.Result = "passed", "passed"
	}
	if r.Error != "" {
		v.Result += ": " + failure{Text: r.Error}.Headline()
	}
	if !r.Started.IsZero() {
		v.Started = r.Started.UTC().Format(time.RFC3339)
	}
	p, f, sk := r.Counts()
	v.Specs = fmt.Sprintf("%d/%d/%d", p, f, sk)
	t := r.Timings
	if !t.complete() {
		v.Launch, v.Bootstrap, v.Joins, v.Ready, v.Total, v.CloudInit = "–", "–", "–", "–", "–", "–"
		return v
	}
	v.Launch, v.Bootstrap, v.Ready, v.Total = fmtSeconds(t.Launch), fmtSeconds(t.Bootstrap), fmtSeconds(t.Ready), fmtSeconds(t.Total)
	v.Joins = "–"
	if len(t.Joins) > 0 {
		v.Joins = fmtSeconds(t.JoinsTotal())
		v.JoinDetail = keyed(t.Joins)
	}
	v.CloudInit = "–"
	var slowest string
	for n, d := range t.CloudInit {
		if slowest == "" || d > t.CloudInit[slowest] || (d == t.CloudInit[slowest] && n < slowest) {
			slowest = n
		}
	}
	if slowest != "" {
		v.CloudInit = slowest + " " + fmtSeconds(t.CloudInit[slowest])
	}
	return v
}

// keyed lists a per-node map as "name 1.0s, name 2.0s" in name order.
func keyed(m map[string]time.Duration) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + " " + fmtSeconds(m[n])
	}
	return strings.Join(parts, ", ")
}

// page is the template's data.
type page struct {
	S        Summary
	Class    string
	Verdict  string
	Meta     string
	Rows     []row
	Failures []failure
	Flakes   []Flake
	Runs     []runView
	// Specs, FlakeLine: the per-spec table, shown for more than one run.
	Specs      []specRow
	FlakeLine  string
	Kernel     []kernelItem
	Heartbeats []heartbeatRow
	HBNote     string
	// RowsNote and FlakesNote are the notes Markdown prints too.
	RowsNote, FlakesNote string
	Chart                chartData
	ChartJS              template.JS
}

// HTML renders s as one self-contained page: Chart.js inlined, a line chart
// of the phase medians (seconds) against cluster size (nodes), one line per
// phase and image, the table
// Markdown prints, the flaky specs, every failure in full and a per-run
// table. Animations are off so a screenshot taken on load shows the final
// chart. All summary text goes through html/template's contextual escaping,
// so failure output containing markup is shown, not run.
func HTML(s Summary) ([]byte, error) {
	lib := chartJS
	// The source map is not shipped; drop the pointer so an open DevTools
	// does not try to fetch it next to the page.
	if i := strings.LastIndex(lib, "\n//# sourceMappingURL="); i >= 0 {
		lib = lib[:i+1]
	}
	if strings.Contains(strings.ToLower(lib), "</script") {
		return nil, fmt.Errorf("embedded chart library contains </script and cannot be inlined")
	}
	t, err := template.New("report").Parse(pageTemplate)
	if err != nil {
		return nil, fmt.Errorf("parsing report template: %w", err)
	}
	rows := s.rows()
	p := page{
		S:          s,
		Class:      "failed",
		Verdict:    "failed",
		Meta:       metaLine(s, func(v string) string { return v }),
		Rows:       rows,
		RowsNote:   rowsNote,
		FlakesNote: flakesNote,
		Failures:   s.failures(),
		Flakes:     s.Flakes(),
		Kernel:     s.kernelItems(),
		Heartbeats: s.heartbeatRows(),
		HBNote:     heartbeatNote,
		Chart:      newChartData(rows),
		ChartJS:    template.JS(lib),
	}
	if s.Passed() {
		p.Class, p.Verdict = "passed", "passed"
	}
	if len(s.Runs) > 1 {
		p.Specs, p.FlakeLine = s.specRows(), s.flakeLine()
	}
	for _, r := range s.sortedRuns() {
		p.Runs = append(p.Runs, newRunView(r))
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, p); err != nil {
		return nil, fmt.Errorf("rendering report: %w", err)
	}
	return buf.Bytes(), nil
}
