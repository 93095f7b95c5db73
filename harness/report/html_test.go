package report

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func renderRecorded(t *testing.T) string {
	t.Helper()
	b, err := HTML(recorded(t))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHTMLInlinesChartLibrary(t *testing.T) {
	page := renderRecorded(t)
	lib, _, _ := strings.Cut(chartJS, "//# sourceMappingURL=")
	if !strings.Contains(lib, "Chart.js v4") || len(lib) < 100_000 {
		t.Fatalf("embedded asset does not look like Chart.js 4 (%d bytes)", len(lib))
	}
	if !strings.Contains(page, "<script>"+lib) {
		t.Error("page does not inline the whole chart library in a script element")
	}
	// Self-contained: no external scripts, styles or source maps.
	for _, bad := range []string{"<script src", "<link", "sourceMappingURL", "https://cdn"} {
		if strings.Contains(page, bad) {
			t.Errorf("page references something outside itself: %q", bad)
		}
	}
	if !strings.Contains(page, "animation: false") {
		t.Error("chart animations must be off so screenshots show the final chart")
	}
}

// chartDataRE finds the data the page's script plots.
var chartDataRE = regexp.MustCompile(`const d = (\{.*\});`)

func TestHTMLChartData(t *testing.T) {
	page := renderRecorded(t)
	m := chartDataRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("chart data not found in page")
	}
	var got chartData
	if err := json.Unmarshal([]byte(m[1]), &got); err != nil {
		t.Fatalf("chart data is not JSON: %v\n%s", err, m[1])
	}
	if want := []int{1, 2, 4}; !reflect.DeepEqual(got.Nodes, want) {
		t.Errorf("x values (nodes) = %v, want %v", got.Nodes, want)
	}
	want := map[string][]float64{
		"launch":    {60, 72, 96.5},
		"bootstrap": {12.5, 13, 14.2},
		"joins":     {0, 40, 140},
		"ready":     {1, 10, 21.3},
		"total":     {74, 138, 273.4},
	}
	var labels []string
	for _, s := range got.Series {
		labels = append(labels, s.Label)
		var vals []float64
		for _, v := range s.Data {
			if v == nil {
				t.Fatalf("series %s has a null point; every size has a complete run", s.Label)
			}
			vals = append(vals, *v)
		}
		if !reflect.DeepEqual(vals, want[s.Label]) {
			t.Errorf("series %s = %v, want %v", s.Label, vals, want[s.Label])
		}
	}
	if w := []string{"launch", "bootstrap", "joins", "ready", "total"}; !reflect.DeepEqual(labels, w) {
		t.Errorf("series order %v, want %v", labels, w)
	}
	// The literal form too, as a reader of the page source sees it.
	for _, w := range []string{`"nodes":[1,2,4]`, `"images":["bookworm"]`,
		`{"label":"total","image":"bookworm","color":"#d62728","dash":[],"point":"circle","data":[74,138,273.4]}`} {
		if !strings.Contains(m[1], w) {
			t.Errorf("chart data lacks %s:\n%s", w, m[1])
		}
	}
}

func TestHTMLTable(t *testing.T) {
	page := renderRecorded(t)
	for _, w := range []string{
		`<th class="l">image</th><th>size</th><th>nodes</th><th class="l">result</th><th>specs passed/failed/skipped</th><th>launch</th><th>bootstrap</th><th>joins</th><th>ready</th><th>total</th><th>flakes</th>`,
		`<tr class="passed"><td class="l">bookworm</td><td>0</td><td>1</td><td class="l">passed (2/2)</td><td>14/0/2</td><td>60.0s</td><td>12.5s</td><td>–</td><td>1.0s</td><td>74.0s</td><td>0</td></tr>`,
		`<tr class="mixed"><td class="l">bookworm</td><td>1</td><td>2</td><td class="l">mixed (1/2)</td><td>15/1/0</td><td>72.0s</td><td>13.0s</td><td>40.0s</td><td>10.0s</td><td>138.0s</td><td>1</td></tr>`,
		`<tr class="failed"><td class="l">bookworm</td><td>3</td><td>4</td><td class="l">failed (0/2)</td><td>7/1/0</td><td>96.5s</td><td>14.2s</td><td>140.0s</td><td>21.3s</td><td>273.4s</td><td>0</td></tr>`,
		`<h1>bcmtest matrix 20261126-020000: <span class="verdict failed">failed</span></h1>`,
		`<li><code>` + flakySpec + `</code> on bookworm at size 1</li>`,
		`image bookworm, size 3 (4 nodes), attempt 2: run error</summary>`,
		// Per-run detail: per-member joins and the slowest cloud-init.
		`140.0s<br><span class="small">bcm-01 44.1s, bcm-02 46.3s, bcm-03 49.6s</span>`,
		`<td>bcm-03 61.4s</td>`,
	} {
		if !strings.Contains(page, w) {
			t.Errorf("page lacks %s", w)
		}
	}
}

func TestHTMLEscapesFailureText(t *testing.T) {
	page := renderRecorded(t)
	if strings.Contains(page, "<script>alert(1)") {
		t.Fatal("failure text reached the page unescaped")
	}
	// The full failure, escaped, including the lines Markdown leaves out.
	for _, w := range []string{
		`tor answered &#34;&lt;script&gt;alert(1)&lt;/script&gt; 250 OK&#34; although the node has no route out`,
		`    &lt;*errors.errorString | 0xc000a1e2f0&gt;:`,
		`not to contain substring`,
	} {
		if !strings.Contains(page, w) {
			t.Errorf("page lacks escaped failure text %s", w)
		}
	}
	if n := strings.Count(page, "<script"); n != 2 {
		t.Errorf("page has %d script elements, want 2 (library and chart)", n)
	}
}

func TestHTMLEscapesMetadata(t *testing.T) {
	s := recorded(t)
	s.RunID = `</title><script>alert(2)</script>`
	s.Host = `<img src=x onerror=alert(3)>`
	b, err := HTML(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"<script>alert(2)", "<img"} {
		if strings.Contains(string(b), bad) {
			t.Errorf("metadata reached the page unescaped: %s", bad)
		}
	}
}

func TestHTMLMissingSize(t *testing.T) {
	// A size asked for but never run gets a grey row and a gap in the chart.
	s := recorded(t)
	s.Sizes = append(s.Sizes, 7)
	page, err := HTML(s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), `<tr class="notrun"><td class="l">bookworm</td><td>7</td><td>8</td><td class="l">not run</td><td>–</td><td>–</td>`) {
		t.Error("size without runs has no not-run row")
	}
	if !strings.Contains(string(page), `"nodes":[1,2,4,8]`) || !strings.Contains(string(page), `"data":[74,138,273.4,null]`) {
		t.Error("size without runs is not a null point in the chart")
	}
}
