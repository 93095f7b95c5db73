package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/report"
)

const matrixLong = `For each size (joining members), brings up a fresh cluster and runs the e2e suites
against it (go test ./suites/e2e, so run it from the repository), one size after
another; a failure at one size does not stop the others. Writes to --out:
summary.json, summary.md (for CI job summaries), report.html (phase timings charted
against cluster size) and report.png (the page rendered by headless Chromium, when
installed), plus each run's reports and diagnostics under size-N[-aK]/.`

const matrixExample = `  bcmtest matrix --sizes 0,1
  bcmtest matrix --sizes 0,1,3 --label-filter smoke --repeat 2`

type matrixOptions struct {
	sizes, labels, out, provider, suites, cloudInit string
	repeat                                          int
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
			return a.matrix(c.Context(), o)
		},
	}
	f := c.Flags()
	f.StringVarP(&o.sizes, "sizes", "s", "0,1,3", "comma-separated member counts")
	f.StringVarP(&o.labels, "label-filter", "l", "", "Ginkgo label filter for the specs")
	f.IntVar(&o.repeat, "repeat", 1, "runs per size (repeats reveal flakes)")
	f.StringVar(&o.out, "out", "", "report directory (default artifacts/matrix-<time>)")
	addProviderFlag(c, &o.provider)
	f.StringVar(&o.suites, "suites", "./suites/e2e", "the e2e suites package")
	f.StringVar(&o.cloudInit, "cloud-init", "", "cloud-init file for every node")
	c.MarkFlagDirname("out")
	c.MarkFlagDirname("suites")
	addCloudInitFlagCompletion(c, "cloud-init")
	return c
}

func matrixArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("matrix: unexpected argument %q (the sizes go in --sizes)", args[0])
	}
	return nil
}

func (a *app) matrix(ctx context.Context, o matrixOptions) error {
	sizes, err := parseSizes(o.sizes)
	if err != nil {
		return fmt.Errorf("matrix: %w", err)
	}
	if o.repeat < 1 {
		return usagef("matrix: --repeat %d: must be 1 or more", o.repeat)
	}
	prov, err := chooseProvider(o.provider)
	if err != nil {
		return fmt.Errorf("matrix: %w", err)
	}
	if o.cloudInit != "" {
		if _, err := lint(ctx, o.cloudInit, io.Discard, a.stderr); err != nil {
			return fmt.Errorf("matrix: --cloud-init: %w", err)
		}
	}
	if _, err := os.Stat(o.suites); err != nil {
		return usagef("matrix: --suites %s: %v (run bcmtest matrix from the repository root)", o.suites, err)
	}
	if _, err := exec.LookPath("go"); err != nil {
		return envError{fmt.Errorf("matrix runs the suites with go test: go not found on PATH")}
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
	host, _ := os.Hostname()
	sum := report.Summary{RunID: filepath.Base(dir), Host: host, Provider: prov, Started: time.Now().UTC(), Sizes: sizes, Repeat: o.repeat}
	if sum.Provider == "" {
		sum.Provider = "auto"
	}
	log := stamp{a.stderr}
	for _, n := range sizes {
		for at := 1; at <= o.repeat; at++ {
			if ctx.Err() != nil {
				break
			}
			r := runSize(ctx, matrixRun{size: n, attempt: at, repeat: o.repeat, dir: dir, labels: o.labels, provider: sum.Provider,
				suites: o.suites, cloudInit: o.cloudInit}, log)
			sum.Runs = append(sum.Runs, r)
			p, f, s := r.Counts()
			fmt.Fprintf(log, "matrix: size %d attempt %d: passed=%v (%d passed, %d failed, %d skipped) in %s\n", n, at, r.Passed, p, f, s, r.Timings.Total.Round(time.Second))
		}
	}
	sum.Finished = time.Now().UTC()
	sum.Accel = accelOf(dir)
	files, werr := report.WriteAll(ctx, dir, sum)
	for _, f := range files {
		fmt.Fprintln(a.stdout, f)
	}
	if werr != nil {
		return werr
	}
	if ctx.Err() != nil {
		return errInterrupted
	}
	if !sum.Passed() {
		return fmt.Errorf("matrix: failures; see %s", filepath.Join(dir, "summary.md"))
	}
	return nil
}

type matrixRun struct {
	size, attempt, repeat int
	dir, labels, provider string
	suites, cloudInit     string
}

func (m matrixRun) id() string {
	if m.repeat == 1 {
		return "size-" + strconv.Itoa(m.size)
	}
	return fmt.Sprintf("size-%d-a%d", m.size, m.attempt)
}

// runSize runs the suites once for one size and turns Ginkgo's JSON report
// and the suite's timings.json into a report.Run.
func runSize(ctx context.Context, m matrixRun, log io.Writer) report.Run {
	r := report.Run{Size: m.size, Attempt: m.attempt, Started: time.Now().UTC()}
	runDir := filepath.Join(m.dir, m.id())
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		r.Error = err.Error()
		return r
	}
	fmt.Fprintf(log, "matrix: size %d (%d nodes), attempt %d: bringing up a cluster and running the suites; log %s\n", m.size, m.size+1, m.attempt, filepath.Join(runDir, "output.log"))
	args := []string{"test", "-count=1", "-timeout", "90m", m.suites, "-ginkgo.v",
		"-ginkgo.json-report=" + filepath.Join(runDir, "report.json"), "-ginkgo.junit-report=" + filepath.Join(runDir, "junit.xml")}
	if m.labels != "" {
		args = append(args, "-ginkgo.label-filter="+m.labels)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) } // the suite tears down on SIGINT
	cmd.WaitDelay = 5 * time.Minute
	cmd.Env = append(os.Environ(), "BCMTEST_E2E=1", "BCMTEST_MEMBERS="+strconv.Itoa(m.size), "BCMTEST_PROVIDER="+m.provider,
		"BCMTEST_ARTIFACTS="+m.dir, "BCMTEST_RUN_ID="+m.id(), "BCMTEST_CLOUD_INIT="+m.cloudInit)
	logf, err := os.Create(filepath.Join(runDir, "output.log"))
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	runErr := cmd.Run()
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
	_, failed, _ := r.Counts()
	r.Passed = runErr == nil && failed == 0 && r.Error == ""
	if runErr != nil && r.Error == "" && failed == 0 {
		r.Error = fmt.Sprintf("the suite run failed (%v); see %s", runErr, filepath.Join(runDir, "output.log"))
	}
	return r
}

// accelOf reads which acceleration the runs' VMs used, as the suite
// recorded it (provider.txt: "qemu tcg").
func accelOf(dir string) string {
	files, _ := filepath.Glob(filepath.Join(dir, "size-*", "provider.txt"))
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil {
			if fs := strings.Fields(string(b)); len(fs) == 2 {
				return fs[1]
			}
		}
	}
	return "unknown"
}
