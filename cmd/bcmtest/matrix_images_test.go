package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
	"github.com/BitcoinCacheMachine/bcmtest/harness/report"
)

// TestMatrixImagesRefusals: a bad --images (or --image beside it) is
// refused before anything runs, naming the flag and the rule, as the
// bad-input table refuses the other flags.
func TestMatrixImagesRefusals(t *testing.T) {
	runs := t.TempDir() // --from-runs refuses before reading it
	launched := refuseLaunches(t)
	for _, r := range []badInput{
		{name: "unknown image", args: []string{"matrix", "--sizes", "0", "--images", "bookworm,sid"}, code: exitUsage, field: `--images "bookworm,sid"`, rule: `image "sid": must be bookworm or trixie`},
		{name: "image of the wrong case", args: []string{"matrix", "--sizes", "0", "--images", "Trixie"}, code: exitUsage, field: `--images "Trixie"`, rule: "must be bookworm or trixie"},
		{name: "image listed twice", args: []string{"matrix", "--sizes", "0", "--images", "trixie,bookworm,trixie"}, code: exitUsage, field: `--images "trixie,bookworm,trixie"`, rule: "trixie is listed twice"},
		{name: "empty list", args: []string{"matrix", "--sizes", "0", "--images", ""}, code: exitUsage, field: `--images ""`, rule: "give at least one release (bookworm or trixie)"},
		{name: "only commas", args: []string{"matrix", "--sizes", "0", "--images", ",,"}, code: exitUsage, field: `--images ",,"`, rule: "give at least one release"},
		{name: "without a value", args: []string{"matrix", "--sizes", "0", "--images"}, code: exitUsage, field: "--images", rule: "needs a value"},
		{name: "both image flags", args: []string{"matrix", "--sizes", "0", "--image", "trixie", "--images", "bookworm,trixie"}, code: exitUsage, field: `--image "trixie" and --images "bookworm,trixie"`, rule: "give one of them"},
		{name: "both image flags, the same image", args: []string{"matrix", "--sizes", "0", "--images", "trixie", "--image", "trixie"}, code: exitUsage, field: `--image "trixie" and --images "trixie"`, rule: "give one of them"},
		{name: "bad image variable without a flag", args: []string{"matrix", "--sizes", "0", "--from-runs", runs}, env: map[string]string{image.ImageEnv: "sid"}, code: exitUsage, field: "BCMTEST_IMAGE", rule: "must be bookworm or trixie"},
		{name: "two images read back", args: []string{"matrix", "--sizes", "1", "--from-runs", runs, "--images", "bookworm,trixie"}, code: exitUsage, field: `--from-runs with --images "bookworm,trixie"`, rule: "give one image"},
	} {
		t.Run(r.name, func(t *testing.T) {
			stateDir, _ := isolate(t)
			t.Setenv(image.ImageEnv, "")
			for k, v := range r.env {
				t.Setenv(k, v)
			}
			code, _, msg := runCLI(t, r.args...)
			expectRefusal(t, r, code, msg)
			assertNoVM(t, stateDir)
		})
	}
	if l := launched(); len(l) > 0 {
		t.Errorf("rows asked a provider to launch VMs: %v", l)
	}
	if entries, _ := os.ReadDir(runs); len(entries) > 0 {
		t.Errorf("a refused --from-runs wrote into the runs' directory: %v", entries)
	}
}

func TestMatrixImagesAxis(t *testing.T) {
	for _, c := range []struct {
		o    matrixOptions
		env  string
		want []image.Release
	}{
		{matrixOptions{images: " trixie , bookworm", imagesSet: true}, "", []image.Release{image.Trixie, image.Bookworm}},
		{matrixOptions{images: "trixie,", imagesSet: true}, "bookworm", []image.Release{image.Trixie}},
		{matrixOptions{image: "trixie"}, "", []image.Release{image.Trixie}},
		{matrixOptions{}, "trixie", []image.Release{image.Trixie}},
		{matrixOptions{}, "", []image.Release{image.DefaultRelease}},
	} {
		t.Setenv(image.ImageEnv, c.env)
		got, err := matrixImages(c.o)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("--image %q --images %q, %s=%q: %v, %v; want %v", c.o.image, c.o.images, image.ImageEnv, c.env, got, err, c.want)
		}
	}
}

// A run of the matrix records its image in its directory (which names
// the image when there are several) and hands it to the suite.
func TestMatrixRunRecordsItsImage(t *testing.T) {
	t.Setenv("BCMTEST_TEST_HELPER", "empty")
	dir := t.TempDir()
	m := matrixRun{size: 1, attempt: 2, repeat: 2, dir: dir, provider: "qemu", image: image.Trixie, byImage: true,
		suiteBin: os.Args[0], suiteDir: dir}
	if m.id() != "trixie-size-1-a2" {
		t.Errorf("run id %q, want trixie-size-1-a2", m.id())
	}
	if !slices.Contains(m.command(dir).Env, image.ImageEnv+"=trixie") {
		t.Error("the suite is not told its image")
	}
	r := runSize(context.Background(), m, io.Discard)
	if r.Image != "trixie" || r.Size != 1 || r.Attempt != 2 {
		t.Errorf("run %+v", r)
	}
	rel, recorded, err := readRunImage(filepath.Join(dir, "trixie-size-1-a2"))
	if err != nil || !recorded || rel != image.Trixie {
		t.Errorf("the run directory records %q (%v, %v), want trixie", rel, recorded, err)
	}
	// One image: the directory keeps the name it always had.
	m.byImage, m.repeat = false, 1
	if m.id() != "size-1" {
		t.Errorf("one image: run id %q, want size-1", m.id())
	}
}

// --from-runs reads each run's image back from its directory: a soak of
// runs on both images is two row groups, attempts counted per image, and a
// flake only within an image.
func TestMatrixFromRunsReadsEachRunsImage(t *testing.T) {
	t.Setenv(image.ImageEnv, "")
	dir := t.TempDir()
	pass, fail := types.SpecStatePassed, types.SpecStateFailed
	for i, run := range []struct {
		image string
		tor   types.SpecState
	}{{"trixie", pass}, {"bookworm", fail}, {"trixie", pass}, {"bookworm", pass}, {"", fail}} {
		rd := filepath.Join(dir, "run-"+string(rune('1'+i)))
		writeRun(t, rd, map[string]types.SpecState{"tor": run.tor}, nil, nil)
		if run.image != "" {
			if err := os.WriteFile(filepath.Join(rd, runImageFile), []byte(run.image+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	code, _, stderr := runCLI(t, "matrix", "--sizes", "1", "--from-runs", dir)
	if code != exitFailed {
		t.Errorf("exit %d, want %d (runs failed)\n%s", code, exitFailed, stderr)
	}
	sum, err := report.ReadJSON(filepath.Join(dir, report.JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Schema != report.SchemaVersion || !reflect.DeepEqual(sum.Images, []string{"trixie", "bookworm"}) || sum.Repeat != 3 {
		t.Errorf("schema %d, images %v, repeat %d; want %d, [trixie bookworm], 3", sum.Schema, sum.Images, sum.Repeat, report.SchemaVersion)
	}
	var got []string
	for _, r := range sum.Runs {
		got = append(got, r.Image+"/"+string(rune('0'+r.Attempt)))
	}
	// run-5 records no image: it ran on the default, bookworm.
	if want := []string{"trixie/1", "bookworm/1", "trixie/2", "bookworm/2", "bookworm/3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("runs (image/attempt) %v, want %v", got, want)
	}
	expectFileHas(t, filepath.Join(dir, report.MarkdownFile), []string{
		"| trixie | 1 | 2 | ✅ passed (2/2) |",
		"| bookworm | 1 | 2 | ⚠️ mixed (1/3) | 1/2/0 |",
		"| `tor` | bookworm | 3 | 1 | 2 | 2 | 66.7% |",
		"| `tor` | trixie | 2 | 2 | 0 | 0 | 0.0% |",
		"- `tor` on bookworm at size 1\n",
	})
	expectFileHas(t, filepath.Join(dir, report.HTMLFile), []string{`<td class="l">trixie</td><td>1</td><td>2</td>`, `<td class="l">bookworm</td><td>1</td><td>2</td>`})

	// --image names the runs that record none; it agrees with the
	// records here only when every record says the same.
	only := t.TempDir()
	writeRun(t, filepath.Join(only, "run-1"), map[string]types.SpecState{"tor": pass}, nil, nil)
	if code, _, stderr := runCLI(t, "matrix", "--sizes", "1", "--from-runs", only, "--image", "trixie"); code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if sum, err := report.ReadJSON(filepath.Join(only, report.JSONFile)); err != nil || sum.Runs[0].Image != "trixie" || !reflect.DeepEqual(sum.Images, []string{"trixie"}) {
		t.Errorf("a run without a record, --image trixie: %+v, %v", sum, err)
	}
}

// A run's record that the image given contradicts, or that names no
// release, is refused before any report is written.
func TestMatrixFromRunsImageRecordRefusals(t *testing.T) {
	t.Setenv(image.ImageEnv, "")
	mk := func(record string) string {
		dir := t.TempDir()
		rd := filepath.Join(dir, "run-1")
		writeRun(t, rd, map[string]types.SpecState{"tor": types.SpecStatePassed}, nil, nil)
		if err := os.WriteFile(filepath.Join(rd, runImageFile), []byte(record), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	for _, c := range []struct {
		name, record string
		extra        []string
		env          string
		field, rule  string
	}{
		{"record against --image", "bookworm\n", []string{"--image", "trixie"}, "", "run-1/image.txt records image bookworm", "but --image names trixie"},
		{"record against --images", "bookworm\n", []string{"--images", "trixie"}, "", "run-1/image.txt records image bookworm", "but --images names trixie"},
		{"unknown record", "sid\n", nil, "", "run-1/image.txt", `image "sid": must be bookworm or trixie`},
		{"empty record", "\n", nil, "", "run-1/image.txt", "empty; must name the run's image"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := mk(c.record)
			args := append([]string{"matrix", "--sizes", "1", "--from-runs", dir}, c.extra...)
			code, _, msg := runCLI(t, args...)
			expectRefusal(t, badInput{args: args, code: exitUsage, field: c.field, rule: c.rule}, code, msg)
			if _, err := os.Stat(filepath.Join(dir, report.JSONFile)); err == nil {
				t.Error("a summary was written despite the refusal")
			}
		})
	}
	// BCMTEST_IMAGE is only the fallback: a record wins over it.
	t.Setenv(image.ImageEnv, "trixie")
	dir := mk("bookworm\n")
	if code, _, stderr := runCLI(t, "matrix", "--sizes", "1", "--from-runs", dir); code != exitOK {
		t.Fatalf("record bookworm, BCMTEST_IMAGE=trixie: exit %d\n%s", code, stderr)
	}
	if sum, err := report.ReadJSON(filepath.Join(dir, report.JSONFile)); err != nil || sum.Runs[0].Image != "bookworm" {
		t.Errorf("record bookworm, BCMTEST_IMAGE=trixie: %+v, %v", sum.Runs, err)
	}
}

// fakeSuite is a suites package that stands in for suites/e2e: compiled by
// the matrix with go test -c like the real one, it takes the Ginkgo flags
// the matrix passes, and writes a Ginkgo report with one spec named after
// the image and member count it was given, timings and provider.txt. The
// spec fails on trixie with 1 member.
const fakeSuite = `package fake

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var jsonReport = flag.String("ginkgo.json-report", "", "")

func init() {
	flag.String("ginkgo.junit-report", "", "")
	flag.String("ginkgo.label-filter", "", "")
	flag.Bool("ginkgo.v", false, "")
	flag.Bool("ginkgo.fail-on-empty", false, "")
}

func TestMain(m *testing.M) {
	flag.Parse()
	img, members := os.Getenv("BCMTEST_IMAGE"), os.Getenv("BCMTEST_MEMBERS")
	name := "passed.json"
	if img == "trixie" && members == "1" {
		name = "failed.json"
	}
	b, err := os.ReadFile(name)
	if err != nil {
		os.Exit(3)
	}
	out := strings.ReplaceAll(string(b), "IMAGE", img)
	if os.WriteFile(*jsonReport, []byte(out), 0o644) != nil {
		os.Exit(4)
	}
	art := filepath.Join(os.Getenv("BCMTEST_ARTIFACTS"), os.Getenv("BCMTEST_RUN_ID"))
	os.WriteFile(filepath.Join(art, "timings.json"), []byte(os.Getenv("FAKE_TIMINGS_"+img)), 0o644)
	os.WriteFile(filepath.Join(art, "provider.txt"), []byte("qemu tcg\n"), 0o644)
	if name == "failed.json" {
		os.Exit(1)
	}
	os.Exit(0)
}
`

// TestMatrixOverTwoImages runs the whole matrix, --images bookworm,trixie
// --sizes 0,1, against a stand-in suite (no VM): four runs, each with its
// image in the suite's environment, its directory and its record, and a
// report whose every form has both images.
func TestMatrixOverTwoImages(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a stand-in suite with go test -c")
	}
	isolate(t)
	t.Setenv(image.ImageEnv, "")
	suite := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(suite, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module fakesuite\n\ngo 1.22\n")
	write("fake_test.go", fakeSuite)
	for name, st := range map[string]types.SpecState{"passed.json": types.SpecStatePassed, "failed.json": types.SpecStateFailed} {
		b, err := json.Marshal([]types.Report{{SuiteDescription: "fake", SuiteSucceeded: st == types.SpecStatePassed,
			SpecReports: types.SpecReports{{LeafNodeType: types.NodeTypeIt, LeafNodeText: "runs on IMAGE", State: st}}}})
		if err != nil {
			t.Fatal(err)
		}
		write(name, string(b))
	}
	for img, total := range map[string]time.Duration{"bookworm": 70 * time.Second, "trixie": 90 * time.Second} {
		b, _ := json.Marshal(cluster.Timings{Launch: total - 10*time.Second, Total: total})
		t.Setenv("FAKE_TIMINGS_"+img, string(b))
	}
	out := filepath.Join(t.TempDir(), "out")
	code, stdout, stderr := runCLI(t, "matrix", "--images", "bookworm,trixie", "--sizes", "0,1", "--suites", suite, "--out", out, "--provider", "qemu")
	if code != exitFailed {
		t.Fatalf("exit %d, want %d (trixie's size 1 fails)\nstdout:\n%s\nstderr:\n%s", code, exitFailed, stdout, stderr)
	}
	for _, id := range []string{"bookworm-size-0", "bookworm-size-1", "trixie-size-0", "trixie-size-1"} {
		img, _, _ := strings.Cut(id, "-")
		if rel, recorded, err := readRunImage(filepath.Join(out, id)); err != nil || !recorded || string(rel) != img {
			t.Errorf("%s records %q (%v, %v), want %s", id, rel, recorded, err, img)
		}
	}
	sum, err := report.ReadJSON(filepath.Join(out, report.JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range sum.Runs {
		got = append(got, r.Image+"/"+r.Specs[0].Name)
	}
	// Image after image, and each suite saw the image it ran on.
	if want := []string{"bookworm/runs on bookworm", "bookworm/runs on bookworm", "trixie/runs on trixie", "trixie/runs on trixie"}; !reflect.DeepEqual(got, want) {
		t.Errorf("runs %v, want %v", got, want)
	}
	if !reflect.DeepEqual(sum.Images, []string{"bookworm", "trixie"}) || sum.Accel != "tcg" {
		t.Errorf("images %v, accel %q", sum.Images, sum.Accel)
	}
	expectFileHas(t, filepath.Join(out, report.MarkdownFile), []string{
		"· images `bookworm`, `trixie` · sizes 0, 1 × 1 ·",
		"| bookworm | 0 | 1 | ✅ passed | 1/0/0 | 60.0s |",
		"| bookworm | 1 | 2 | ✅ passed | 1/0/0 | 60.0s |",
		"| trixie | 0 | 1 | ✅ passed | 1/0/0 | 80.0s |",
		"| trixie | 1 | 2 | ❌ failed | 0/1/0 | 80.0s |",
		"- image trixie, size 1 (2 nodes), attempt 1, `runs on trixie`",
	})
	expectFileHas(t, filepath.Join(out, report.HTMLFile), []string{`"label":"total · bookworm"`, `"label":"total · trixie"`, `<td class="l">trixie</td><td>1</td><td>2</td><td class="l">failed</td>`})
	if !strings.Contains(stderr, "matrix: image trixie, size 1, attempt 1: passed=false") {
		t.Errorf("the progress lines do not name the image:\n%s", stderr)
	}
}

// expectFileHas fails t for each of wants the file does not contain.
func expectFileHas(t *testing.T, path string, wants []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range wants {
		if !strings.Contains(string(b), w) {
			t.Errorf("%s lacks %q:\n%s", filepath.Base(path), w, b)
		}
	}
}
