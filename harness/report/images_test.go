package report

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// twoImages is the recorded (bookworm) summary with the same matrix run on
// trixie too: every trixie run passed, 20 s slower to launch, and trixie's
// size 3 ran once. So the spec that failed at bookworm's size 3 passed at
// trixie's, which is no flake: the images differ, not the repeats.
func twoImages(t *testing.T) Summary {
	t.Helper()
	s := recorded(t)
	s.Images = []string{"bookworm", "trixie"}
	for _, r := range recorded(t).Runs { // a second read: no slice shared with s
		if r.Size == 3 && r.Attempt == 2 {
			continue
		}
		r.Image, r.Passed, r.Error = "trixie", true, ""
		for i := range r.Specs {
			if r.Specs[i].State == StateFailed {
				r.Specs[i].State, r.Specs[i].Failure = StatePassed, ""
			}
		}
		r.Timings.Launch += 20 * time.Second
		r.Timings.Total += 20 * time.Second
		s.Runs = append(s.Runs, r)
	}
	return s
}

func TestTwoImagesAreRowsOfTheirOwn(t *testing.T) {
	s := twoImages(t)
	md := Markdown(s)
	for _, w := range []string{
		"· images `bookworm`, `trixie` · sizes 0, 1, 3 × 2 ·",
		MarkdownHeader + "\n| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n" +
			"| bookworm | 0 | 1 | ✅ passed (2/2) | 14/0/2 | 60.0s | 12.5s | – | 1.0s | 74.0s | 0 |\n" +
			"| bookworm | 1 | 2 | ⚠️ mixed (1/2) | 15/1/0 | 72.0s | 13.0s | 40.0s | 10.0s | 138.0s | 1 |\n" +
			"| bookworm | 3 | 4 | ❌ failed (0/2) | 7/1/0 | 96.5s | 14.2s | 140.0s | 21.3s | 273.4s | 0 |\n" +
			"| trixie | 0 | 1 | ✅ passed (2/2) | 14/0/2 | 80.0s | 12.5s | – | 1.0s | 94.0s | 0 |\n" +
			"| trixie | 1 | 2 | ✅ passed (2/2) | 16/0/0 | 92.0s | 13.0s | 40.0s | 10.0s | 158.0s | 0 |\n" +
			"| trixie | 3 | 4 | ✅ passed | 8/0/0 | 116.5s | 14.2s | 140.0s | 21.3s | 293.4s | 0 |\n",
		// The flake is bookworm's only; the failure at bookworm's size 3
		// against trixie's pass there is no flake.
		"- `" + flakySpec + "` on bookworm at size 1\n",
		"| `" + flakySpec + "` | bookworm | 5 | 4 | 1 | 1 | 20.0% |\n",
		"| `" + failedSpec + "` | bookworm | 5 | 4 | 1 | 0 | 0.0% |\n",
		"| `" + flakySpec + "` | trixie | 5 | 5 | 0 | 0 | 0.0% |\n",
		"| `" + failedSpec + "` | trixie | 5 | 5 | 0 | 0 | 0.0% |\n",
		"76 spec runs over 11 run(s): 2 failed, 1 of them flaky",
	} {
		if !strings.Contains(md, w) {
			t.Errorf("markdown lacks %q:\n%s", w, md)
		}
	}
	if want := []Flake{{Image: "bookworm", Name: flakySpec, Sizes: []int{1}}}; !reflect.DeepEqual(s.Flakes(), want) {
		t.Errorf("Flakes() = %+v, want %+v", s.Flakes(), want)
	}

	b, err := HTML(s)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, w := range []string{
		`<tr class="mixed"><td class="l">bookworm</td><td>1</td><td>2</td><td class="l">mixed (1/2)</td>`,
		`<tr class="passed"><td class="l">trixie</td><td>1</td><td>2</td><td class="l">passed (2/2)</td><td>16/0/0</td><td>92.0s</td>`,
		`<tr class="passed"><td class="l">trixie</td><td>3</td><td>4</td><td class="l">passed</td>`,
		`<li><code>` + flakySpec + `</code> on bookworm at size 1</li>`,
		`<td class="l"><code>` + flakySpec + `</code></td><td class="l">trixie</td><td>5</td><td>5</td>`,
		// The per-run table names each run's image.
		`<tr class="passed"><td class="l">trixie</td><td>0</td><td>1</td>`,
		`images bookworm, trixie · sizes 0, 1, 3 × 2`,
	} {
		if !strings.Contains(page, w) {
			t.Errorf("page lacks %s", w)
		}
	}
	// Bookworm's rows and runs come before trixie's, as --images gave them.
	if strings.Index(page, `<td class="l">trixie</td><td>0</td>`) < strings.LastIndex(page, `<td class="l">bookworm</td><td>3</td><td>4</td>`) {
		t.Error("trixie's rows are not after bookworm's")
	}
}

// The chart has one line per phase and image: the phase's colour, the
// image's dash pattern, the image in the label; x is the union of sizes.
func TestTwoImagesChart(t *testing.T) {
	s := twoImages(t)
	s.Sizes = append(s.Sizes, 7) // asked for, never run on either image
	b, err := HTML(s)
	if err != nil {
		t.Fatal(err)
	}
	m := chartDataRE.FindStringSubmatch(string(b))
	if m == nil {
		t.Fatal("chart data not found in page")
	}
	var got chartData
	if err := json.Unmarshal([]byte(m[1]), &got); err != nil {
		t.Fatalf("chart data is not JSON: %v\n%s", err, m[1])
	}
	if !reflect.DeepEqual(got.Nodes, []int{1, 2, 4, 8}) || !reflect.DeepEqual(got.Images, []string{"bookworm", "trixie"}) {
		t.Fatalf("nodes %v, images %v", got.Nodes, got.Images)
	}
	if len(got.Series) != 2*len(phases()) {
		t.Fatalf("%d series, want one per phase and image", len(got.Series))
	}
	byLabel := map[string]chartSeries{}
	for _, cs := range got.Series {
		byLabel[cs.Label] = cs
	}
	bw, tx := byLabel["total · bookworm"], byLabel["total · trixie"]
	if bw.Color != tx.Color || bw.Color != "#d62728" {
		t.Errorf("total's colours %s and %s, want the phase's on both images", bw.Color, tx.Color)
	}
	if len(bw.Dash) != 0 || len(tx.Dash) == 0 || bw.Point == tx.Point {
		t.Errorf("the images' lines look alike: bookworm dash %v point %s, trixie dash %v point %s", bw.Dash, bw.Point, tx.Dash, tx.Point)
	}
	vals := func(cs chartSeries) []any {
		var out []any
		for _, v := range cs.Data {
			if v == nil {
				out = append(out, nil)
			} else {
				out = append(out, *v)
			}
		}
		return out
	}
	if got, want := vals(bw), []any{74.0, 138.0, 273.4, nil}; !reflect.DeepEqual(got, want) {
		t.Errorf("total on bookworm = %v, want %v", got, want)
	}
	if got, want := vals(tx), []any{94.0, 158.0, 293.4, nil}; !reflect.DeepEqual(got, want) {
		t.Errorf("total on trixie = %v, want %v", got, want)
	}
	if !strings.Contains(string(b), "borderDash: s.dash") {
		t.Error("the page's script does not draw the images' dash patterns")
	}
}

func TestJSONKeepsTheImages(t *testing.T) {
	s := twoImages(t)
	path := filepath.Join(t.TempDir(), "summary.json")
	if err := WriteJSON(path, s); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	for _, w := range []string{"\"schema\": 2,\n", "\"images\": [\n    \"bookworm\",\n    \"trixie\"\n  ]", `"image": "trixie",`} {
		if !strings.Contains(string(raw), w) {
			t.Errorf("JSON lacks %q", w)
		}
	}
	back, err := ReadJSON(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s, back) {
		t.Error("round trip changed the two-image summary")
	}
}

// A summary of schema 1 (no schema key, no images) still reads and
// renders, with its image unknown; a newer schema is refused by type.
func TestReadJSONSchemas(t *testing.T) {
	dir := t.TempDir()
	v1 := filepath.Join(dir, "v1.json")
	os.WriteFile(v1, []byte(`{"run_id":"old","sizes":[0],"repeat":1,"runs":[{"size":0,"attempt":1,"passed":true,"timings":{"launch_s":1,"total_s":2},"specs":[{"name":"s","state":"passed","duration_s":1}]}]}`), 0o644)
	s, err := ReadJSON(v1)
	if err != nil {
		t.Fatal(err)
	}
	if s.Schema != 1 || s.Runs[0].Image != "" {
		t.Errorf("schema-1 summary read as schema %d, image %q", s.Schema, s.Runs[0].Image)
	}
	md := Markdown(s)
	if !strings.Contains(md, "| – | 0 | 1 | ✅ passed | 1/0/0 |") || strings.Contains(md, "images ") {
		t.Errorf("schema-1 summary rendered wrong:\n%s", md)
	}

	v9 := filepath.Join(dir, "v9.json")
	os.WriteFile(v9, []byte(`{"schema":9,"run_id":"new"}`), 0o644)
	_, err = ReadJSON(v9)
	var se *SchemaError
	if !errors.As(err, &se) || se.Schema != 9 || !strings.Contains(err.Error(), v9) || !strings.Contains(err.Error(), "reads schemas 1 to 2") {
		t.Errorf("schema 9: err = %v, want a SchemaError naming the file and the schemas read", err)
	}
}
