package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
	"github.com/BitcoinCacheMachine/bcmtest/harness/report"
)

const matrixLong = `For each node image (--images) and each size (joining members), brings up a fresh
cluster and runs the e2e suites against it (the --suites package, compiled once with
go test -c, so run it from the repository), one image after another and within it
one size after another; a failure at one point does not stop the others. --image R
is --images R; with neither, $BCMTEST_IMAGE or the default image.
Writes to --out: summary.json, summary.md (for CI job summaries), report.html (phase
timings charted against cluster size, a line per phase and image) and report.png (the
page rendered by headless Chromium, when installed), plus each run's reports and
diagnostics under size-N[-aK]/ (IMAGE-size-N[-aK]/ with more than one image), where
image.txt records the run's image.

Every run's teardown checks each node's kernel (lockups, RCU stalls, hung tasks, OOM
kills, oopses, BUGs, panics, segfaults of LXD, dqlite or cloud-init): a finding fails
the run, or with --keep-going is only reported. The report has, per spec and image,
passes, failures and flaky failures across the runs (a spec that failed and passed at
the same image and size) with the flake rate, each run's kernel findings, and LXD's
heartbeat lateness per member from the members' LXD logs.

--from-runs DIR builds the same report from runs already made (each a subdirectory
of DIR with a Ginkgo report.json, as "make soak" leaves them) without running
anything: they count as repeats of the one size in --sizes, each on the image its
image.txt records; a run without one ran on the one image --image (or --images,
BCMTEST_IMAGE, the default) names, and an image given that a run's record
contradicts is refused.

Ctrl-C (SIGINT or SIGTERM) reaches the running suite, which tears its cluster down;
the matrix waits for that and exits 130.`

const matrixExample = `  bcmtest matrix --sizes 0,1
  bcmtest matrix --images bookworm,trixie --sizes 0,1
  bcmtest matrix --sizes 0,1,3 --label-filter smoke --repeat 2
  bcmtest matrix --sizes 1 --from-runs artifacts/soak-20261203-100000`

type matrixOptions struct {
	sizes, labels, out, provider, suites, cloudInit, image, images string
	// imagesSet: --images was given, even empty (which is refused).
	imagesSet bool
	repeat    int
	keepGoing bool
	fromRuns  string
}

func (a *app) matrixCmd() *cobra.Command {
	var o matrixOptions
	c := &cobra.Command{
		Use:               "matrix [--sizes 0,1,3] [flags]",
		Short:             "Run the suites over cluster sizes, with a JSON/Markdown/HTML report",
		Long:              matrixLong,
		Example:           matrixExample,
		Args:              matrixArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(c *cobra.Command, args []string) error {
			o.imagesSet = c.Flags().Changed("images")
			return a.matrix(c.Context(), o)
		},
	}
	f := c.Flags()
	f.StringVarP(&o.sizes, "sizes", "s", "0,1,3", "comma-separated member counts")
	f.StringVarP(&o.labels, "label-filter", "l", "", "Ginkgo label filter for the specs")
	f.IntVar(&o.repeat, "repeat", 1, "runs per image and size (repeats reveal flakes)")
	f.StringVar(&o.out, "out", "", "report directory (default artifacts/matrix-<time>)")
	addProviderFlag(c, &o.provider)
	addImageFlag(c, &o.image)
	f.StringVar(&o.images, "images", "", "comma-separated Debian releases to run each size on ("+image.ReleaseNames()+"), one after another (default: --image's)")
	c.RegisterFlagCompletionFunc("images", completeImages)
	f.StringVar(&o.suites, "suites", "./suites/e2e", "the e2e suites package (a directory)")
	f.StringVar(&o.cloudInit, "cloud-init", "", "cloud-init file for every node")
	f.BoolVar(&o.keepGoing, "keep-going", false, "report kernel findings at teardown without failing the run")
	f.StringVar(&o.fromRuns, "from-runs", "", "build the report from the runs under this directory instead of running")
	c.MarkFlagDirname("out")
	c.MarkFlagDirname("suites")
	c.MarkFlagDirname("from-runs")
	addCloudInitFlagCompletion(c, "cloud-init")
	return c
}

func matrixArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("matrix: unexpected argument %q (the sizes go in --sizes)", args[0])
	}
	return nil
}

// completeImages completes the last release of a comma-separated
// --images value, offering the releases not listed yet.
func completeImages(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	done := ""
	if i := strings.LastIndexByte(toComplete, ','); i >= 0 {
		done = toComplete[:i+1]
	}
	listed := map[string]bool{}
	for _, f := range strings.Split(done, ",") {
		listed[strings.TrimSpace(f)] = true
	}
	var out []string
	for _, r := range image.Releases() {
		if !listed[string(r)] {
			out = append(out, done+string(r))
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
}

// matrixImages is the matrix's image axis: --images, or --image as a
// one-image shorthand, else BCMTEST_IMAGE or the default; every name is
// checked as --image checks it, before anything runs.
func matrixImages(o matrixOptions) ([]image.Release, error) {
	if o.imagesSet && o.image != "" {
		return nil, usagef("matrix: --image %q and --images %q: give one of them (--image R is --images R)", o.image, o.images)
	}
	if !o.imagesSet {
		rel, err := imageChoice(o.image)
		if err != nil {
			return nil, fmt.Errorf("matrix: %w", err)
		}
		return []image.Release{rel}, nil
	}
	var out []image.Release
	seen := map[image.Release]bool{}
	for _, f := range strings.Split(o.images, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		rel, err := image.ParseRelease(f)
		if err != nil {
			return nil, usagef("matrix: --images %q: %v", o.images, err)
		}
		if seen[rel] {
			return nil, usagef("matrix: --images %q: %s is listed twice", o.images, rel)
		}
		seen[rel] = true
		out = append(out, rel)
	}
	if len(out) == 0 {
		return nil, usagef("matrix: --images %q: give at least one release (%s), e.g. %s,%s", o.images, image.ReleaseNames(), image.Bookworm, image.Trixie)
	}
	return out, nil
}

func (a *app) matrix(ctx context.Context, o matrixOptions) error {
	sizes, err := parseSizes(o.sizes)
	if err != nil {
		return fmt.Errorf("matrix: %w", err)
	}
	if o.repeat < 1 {
		return usagef("matrix: --repeat %d: must be 1 or more", o.repeat)
	}
	images, err := matrixImages(o)
	if err != nil {
		return err
	}
	if o.fromRuns != "" {
		return a.matrixFromRuns(ctx, o, sizes, images)
	}
	prov, err := chooseProvider(o.provider)
	if err != nil {
		return fmt.Errorf("matrix: %w", err)
	}
	// The suites run in their own directory: relative paths would break.
	ci, err := absPath("--cloud-init", o.cloudInit)
	if err != nil {
		return err
	}
	if ci != "" {
		// Each image judges the file by its own cloud-init's schema.
		for _, rel := range images {
			if _, _, err := lint(ctx, ci, "", rel, io.Discard, a.stderr); err != nil {
				return fmt.Errorf("matrix: --cloud-init for image %s: %w", rel, err)
			}
		}
	}
	suites, err := absPath("--suites", o.suites)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(suites); err != nil || !fi.IsDir() {
		return usagef("matrix: --suites %s: not a directory of suites (run bcmtest matrix from the repository root)", o.suites)
	}
	if _, err := exec.LookPath("go"); err != nil {
		return envError{fmt.Errorf("matrix compiles the suites with go test -c: go not found on PATH")}
	}
	dir := o.out
	if dir == "" {
		dir = filepath.Join("artifacts", "matrix-"+time.Now().UTC().Format("20060102-150405"))
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return usagef("matrix: --out %s: %v", dir, err)
	}
	log := stamp{a.stderr}
	bin, err := compileSuites(ctx, suites, dir, log)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	sum := report.Summary{RunID: filepath.Base(dir), Host: host, Provider: prov, Started: time.Now().UTC(), Sizes: sizes, Repeat: o.repeat}
	if sum.Provider == "" {
		sum.Provider = "auto"
	}
	for _, rel := range images {
		sum.Images = append(sum.Images, string(rel))
	}
	// Image after image: each image's snapshots serve all its sizes.
	for _, rel := range images {
		for _, n := range sizes {
			for at := 1; at <= o.repeat; at++ {
				if ctx.Err() != nil {
					break
				}
				r := runSize(ctx, matrixRun{size: n, attempt: at, repeat: o.repeat, dir: dir, labels: o.labels, provider: sum.Provider,
					image: rel, byImage: len(images) > 1, suiteBin: bin, suiteDir: suites, cloudInit: ci, keepGoing: o.keepGoing}, log)
				sum.Runs = append(sum.Runs, r)
				p, f, s := r.Counts()
				fmt.Fprintf(log, "matrix: image %s, size %d, attempt %d: passed=%v (%d passed, %d failed, %d skipped) in %s\n", rel, n, at, r.Passed, p, f, s, r.Timings.Total.Round(time.Second))
			}
		}
	}
	sum.Finished = time.Now().UTC()
	sum.Accel = accelOf(dir)
	return a.writeMatrix(ctx, dir, sum)
}

// writeMatrix writes the report, lists its files and says whether the
// matrix passed, with the flake rate when there were repeats.
func (a *app) writeMatrix(ctx context.Context, dir string, sum report.Summary) error {
	files, werr := report.WriteAll(context.WithoutCancel(ctx), dir, sum)
	for _, f := range files {
		fmt.Fprintln(a.stdout, f)
	}
	if werr != nil {
		return werr
	}
	runs, failed, flaky := sum.SpecTotals()
	fmt.Fprintf(a.stderr, "matrix: %d run(s), %d spec runs, %d failed, %d flaky\n", len(sum.Runs), runs, failed, flaky)
	if ctx.Err() != nil {
		return errInterrupted
	}
	if !sum.Passed() {
		return fmt.Errorf("matrix: failures; see %s", filepath.Join(dir, "summary.md"))
	}
	return nil
}

// absPath makes a path flag absolute ("" stays ""), since the suites run
// in their own directory.
func absPath(flag, p string) (string, error) {
	if p == "" {
		return "", nil
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", usagef("matrix: %s %s: %v", flag, p, err)
	}
	return abs, nil
}

// compileSuites builds the suites' test binary once, so that every size
// runs it directly: a signal then reaches the process that tears the
// cluster down, not only a `go test` in front of it.
func compileSuites(ctx context.Context, suitesDir, outDir string, log io.Writer) (string, error) {
	bin := filepath.Join(outDir, "e2e.test")
	fmt.Fprintf(log, "matrix: compiling the suites in %s\n", suitesDir)
	cmd := exec.CommandContext(ctx, "go", "test", "-c", "-o", bin, ".")
	cmd.Dir = suitesDir
	if out, err := cmd.CombinedOutput(); err != nil {
		if ctx.Err() != nil {
			return "", errInterrupted
		}
		return "", fmt.Errorf("matrix: compiling the suites in %s: %w\n%s", suitesDir, err, out)
	}
	return bin, nil
}

type matrixRun struct {
	size, attempt, repeat int
	dir, labels, provider string
	image                 image.Release
	// byImage: the matrix has more than one image, so run IDs name it.
	byImage                       bool
	suiteBin, suiteDir, cloudInit string
	keepGoing                     bool
}

// id names the run and its directory: size-N, with -aK for repeats, and
// with more than one image IMAGE-size-N[-aK].
func (m matrixRun) id() string {
	id := "size-" + strconv.Itoa(m.size)
	if m.repeat > 1 {
		id += "-a" + strconv.Itoa(m.attempt)
	}
	if m.byImage {
		id = string(m.image) + "-" + id
	}
	return id
}

// runImageFile records in a run's directory the image the run's nodes ran
// (the release's name and a newline), so that --from-runs reads the run
// back on its image.
const runImageFile = "image.txt"

// readRunImage reads the image a run directory records; recorded is false
// when it records none (a run made by make e2e).
func readRunImage(dir string) (rel image.Release, recorded bool, err error) {
	path := filepath.Join(dir, runImageFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	name := strings.TrimSpace(string(b))
	shown := filepath.Join(filepath.Base(dir), runImageFile)
	if name == "" {
		return "", false, fmt.Errorf("%s: empty; must name the run's image, %s", shown, image.ReleaseNames())
	}
	if rel, err = image.ParseRelease(name); err != nil {
		return "", false, fmt.Errorf("%s: %w", shown, err)
	}
	return rel, true, nil
}

// command is one run of the suites' binary, in the suites' directory as
// `go test` would run it, with the run's settings in the environment.
func (m matrixRun) command(runDir string) *exec.Cmd {
	args := []string{"-test.count=1", "-test.timeout=90m", "-ginkgo.v", "-ginkgo.fail-on-empty",
		"-ginkgo.json-report=" + filepath.Join(runDir, "report.json"), "-ginkgo.junit-report=" + filepath.Join(runDir, "junit.xml")}
	if m.labels != "" {
		args = append(args, "-ginkgo.label-filter="+m.labels)
	}
	cmd := exec.Command(m.suiteBin, args...)
	cmd.Dir = m.suiteDir
	cmd.Env = append(os.Environ(), "BCMTEST_E2E=1", "BCMTEST_MEMBERS="+strconv.Itoa(m.size), "BCMTEST_PROVIDER="+m.provider,
		image.ImageEnv+"="+string(m.image), "BCMTEST_ARTIFACTS="+m.dir, "BCMTEST_RUN_ID="+m.id(), "BCMTEST_CLOUD_INIT="+m.cloudInit)
	if m.keepGoing {
		cmd.Env = append(cmd.Env, "BCMTEST_KEEP_GOING=1")
	}
	return cmd
}

// teardownGrace is how long an interrupted suite gets to tear its cluster
// down before it is killed.
const teardownGrace = 5 * time.Minute

// runInGroup runs cmd in a process group of its own. When ctx ends it sends
// SIGINT to the whole group (the suite tears down on SIGINT) and waits for
// it; after grace it kills the group.
func runInGroup(ctx context.Context, cmd *exec.Cmd, grace time.Duration) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	pgid := cmd.Process.Pid // Setpgid: the group is named after its leader
	syscall.Kill(-pgid, syscall.SIGINT)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		syscall.Kill(-pgid, syscall.SIGKILL)
		err := <-done
		return fmt.Errorf("the suite did not end within %s of SIGINT and was killed: %w", grace, err)
	}
}

// runSize runs the suites once for one size and turns Ginkgo's JSON report
// and the suite's timings.json into a report.Run.
func runSize(ctx context.Context, m matrixRun, log io.Writer) report.Run {
	r := report.Run{Image: string(m.image), Size: m.size, Attempt: m.attempt, Started: time.Now().UTC()}
	runDir := filepath.Join(m.dir, m.id())
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		r.Error = err.Error()
		return r
	}
	if err := os.WriteFile(filepath.Join(runDir, runImageFile), []byte(string(m.image)+"\n"), 0o644); err != nil {
		r.Error = fmt.Sprintf("recording the run's image: %v", err)
		return r
	}
	fmt.Fprintf(log, "matrix: image %s, size %d (%d nodes), attempt %d: bringing up a cluster and running the suites; log %s\n", m.image, m.size, m.size+1, m.attempt, filepath.Join(runDir, "output.log"))
	cmd := m.command(runDir)
	logf, err := os.Create(filepath.Join(runDir, "output.log"))
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	runErr := runInGroup(ctx, cmd, teardownGrace)
	collectRun(&r, runDir, m.labels, runErr)
	return r
}

// collectRun fills r from what a run of the suites left in runDir: Ginkgo's
// JSON report, the suite's timings.json and its teardown's kernel findings
// and heartbeats; runErr is how the suite's process ended (nil when not
// known, for runs read back with --from-runs).
func collectRun(r *report.Run, runDir, labels string, runErr error) {
	specs, suiteErr, err := report.ReadGinkgoReport(filepath.Join(runDir, "report.json"))
	r.Specs, r.Error = specs, suiteErr
	if err != nil {
		r.Error = "no usable Ginkgo report: " + err.Error()
	}
	if b, err := os.ReadFile(filepath.Join(runDir, "timings.json")); err == nil {
		var t cluster.Timings
		if json.Unmarshal(b, &t) == nil {
			r.Timings = report.PhaseTimings(t)
		}
	}
	if err := report.ReadTeardownFiles(r, runDir); err != nil && r.Error == "" {
		r.Error = err.Error()
	}
	passed, failed, _ := r.Counts()
	if passed+failed == 0 && r.Error == "" {
		// Ginkgo exits 0 when its filter leaves nothing to run; a size
		// that tested nothing must not read as a pass.
		r.Error = noSpecRan(labels)
	}
	r.Passed = runErr == nil && failed == 0 && r.Error == ""
	if runErr != nil && r.Error == "" && failed == 0 {
		r.Error = fmt.Sprintf("the suite run failed (%v); see %s", runErr, filepath.Join(runDir, "output.log"))
	}
}

// matrixFromRuns builds the report from runs made elsewhere (make soak):
// every subdirectory of --from-runs with a report.json is one repeat of
// the single size given on the image it records (else on the one image
// given), in the order of the number its name ends in.
func (a *app) matrixFromRuns(ctx context.Context, o matrixOptions, sizes []int, images []image.Release) error {
	if len(sizes) != 1 {
		return usagef("matrix: --from-runs needs exactly one size in --sizes (the runs' member count), not %s", o.sizes)
	}
	if len(images) != 1 {
		return usagef("matrix: --from-runs with --images %q: give one image, the one of runs whose directory records none (each run's %s names its own)", o.images, runImageFile)
	}
	// Given explicitly, an image that a run's record contradicts is an
	// error; from BCMTEST_IMAGE or the default, it is only the fallback.
	given := o.image != "" || o.imagesSet
	dir, err := filepath.Abs(o.fromRuns)
	if err != nil {
		return usagef("matrix: --from-runs %s: %v", o.fromRuns, err)
	}
	runDirs, err := runDirsIn(dir)
	if err != nil {
		return usagef("matrix: --from-runs %s: %v", o.fromRuns, err)
	}
	if len(runDirs) == 0 {
		return usagef("matrix: --from-runs %s: no subdirectory with a report.json", o.fromRuns)
	}
	out := o.out
	if out == "" {
		out = dir
	}
	host, _ := os.Hostname()
	sum := report.Summary{RunID: filepath.Base(dir), Host: host, Provider: o.provider, Sizes: sizes}
	if sum.Provider == "" {
		sum.Provider = "auto"
	}
	attempts := map[image.Release]int{}
	for _, rd := range runDirs {
		rel, recorded, err := readRunImage(rd)
		if err != nil {
			return usagef("matrix: --from-runs %s: %v", o.fromRuns, err)
		}
		switch {
		case !recorded:
			rel = images[0]
		case given && rel != images[0]:
			return usagef("matrix: --from-runs %s: %s records image %s, but %s names %s",
				o.fromRuns, filepath.Join(filepath.Base(rd), runImageFile), rel, imageFlagName(o), images[0])
		}
		if attempts[rel] == 0 {
			sum.Images = append(sum.Images, string(rel))
		}
		attempts[rel]++
		sum.Repeat = max(sum.Repeat, attempts[rel])
		r := report.Run{Image: string(rel), Size: sizes[0], Attempt: attempts[rel]}
		if fi, err := os.Stat(filepath.Join(rd, "report.json")); err == nil {
			r.Started = fi.ModTime().UTC()
		}
		collectRun(&r, rd, o.labels, nil)
		sum.Runs = append(sum.Runs, r)
	}
	if n := len(sum.Runs); n > 0 {
		sum.Started, sum.Finished = sum.Runs[0].Started, sum.Runs[n-1].Started
	}
	sum.Accel = accelOfRuns(runDirs)
	return a.writeMatrix(ctx, out, sum)
}

// imageFlagName is the flag that named the matrix's image.
func imageFlagName(o matrixOptions) string {
	if o.imagesSet {
		return "--images"
	}
	return "--image"
}

// runDirsIn lists dir's subdirectories that hold a report.json, ordered by
// the number their names end in (run-2 before run-10), then by name.
func runDirsIn(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, e.Name(), "report.json")); err == nil {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		ni, nj := trailingNumber(filepath.Base(out[i])), trailingNumber(filepath.Base(out[j]))
		if ni != nj {
			return ni < nj
		}
		return out[i] < out[j]
	})
	return out, nil
}

// trailingNumber is the number name ends in, -1 if none.
func trailingNumber(name string) int {
	i := len(name)
	for i > 0 && name[i-1] >= '0' && name[i-1] <= '9' {
		i--
	}
	n, err := strconv.Atoi(name[i:])
	if err != nil {
		return -1
	}
	return n
}

// noSpecRan says why a run in which no spec ran failed.
func noSpecRan(labels string) string {
	if labels == "" {
		return "no spec ran: the suite has no spec for this size"
	}
	return fmt.Sprintf("no spec ran: the label filter %q matched no spec", labels)
}

// accelOf reads which acceleration the runs' VMs used, as the suite
// recorded it (provider.txt: "qemu tcg").
func accelOf(dir string) string {
	files, _ := filepath.Glob(filepath.Join(dir, "*size-*"))
	return accelOfRuns(files)
}

// accelOfRuns is accelOf over the given run directories.
func accelOfRuns(dirs []string) string {
	for _, d := range dirs {
		if b, err := os.ReadFile(filepath.Join(d, "provider.txt")); err == nil {
			if fs := strings.Fields(string(b)); len(fs) == 2 {
				return fs[1]
			}
		}
	}
	return "unknown"
}
