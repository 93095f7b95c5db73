package ci

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// actionFile is the composite action at the repository root.
const actionFile = "../action.yml"

type action struct {
	Name   string `yaml:"name"`
	Inputs map[string]struct {
		Description string `yaml:"description"`
		Default     string `yaml:"default"`
	} `yaml:"inputs"`
	Outputs map[string]struct {
		Value string `yaml:"value"`
	} `yaml:"outputs"`
	Runs struct {
		Using string       `yaml:"using"`
		Steps []actionStep `yaml:"steps"`
	} `yaml:"runs"`
}

type actionStep struct {
	Name             string            `yaml:"name"`
	ID               string            `yaml:"id"`
	If               string            `yaml:"if"`
	Uses             string            `yaml:"uses"`
	Run              string            `yaml:"run"`
	Shell            string            `yaml:"shell"`
	WorkingDirectory string            `yaml:"working-directory"`
	Env              map[string]string `yaml:"env"`
	With             map[string]any    `yaml:"with"`
}

func loadAction(t *testing.T) action {
	t.Helper()
	b, err := os.ReadFile(actionFile)
	if err != nil {
		t.Fatal(err)
	}
	var a action
	if err := yaml.Unmarshal(b, &a); err != nil {
		t.Fatalf("%s: %v", actionFile, err)
	}
	if a.Runs.Using != "composite" || len(a.Runs.Steps) == 0 {
		t.Fatalf("%s: not a composite action with steps: %+v", actionFile, a.Runs)
	}
	return a
}

// stepNamed is the action's step of that name.
func stepNamed(t *testing.T, name string) actionStep {
	t.Helper()
	for _, s := range loadAction(t).Runs.Steps {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("action.yml has no step %q", name)
	return actionStep{}
}

var inputRef = regexp.MustCompile(`(?:^|[^.\w])inputs\.([A-Za-z0-9_-]+)`)

// TestActionInputsAreDeclared: every inputs.X the action reads is declared,
// every declared input is read, run scripts take inputs only through env
// (no ${{ }} inside a script), and every run step says shell: bash.
func TestActionInputsAreDeclared(t *testing.T) {
	a := loadAction(t)
	for _, want := range []string{"cloud-init", "members", "labels", "provider", "image", "base", "artifacts-name"} {
		if _, ok := a.Inputs[want]; !ok {
			t.Errorf("input %s is not declared", want)
		}
	}
	for _, want := range []string{"run-id", "report"} {
		if _, ok := a.Outputs[want]; !ok {
			t.Errorf("output %s is not declared", want)
		}
	}
	b, err := os.ReadFile(actionFile)
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, m := range inputRef.FindAllStringSubmatch(string(b), -1) {
		used[m[1]] = true
		if _, ok := a.Inputs[m[1]]; !ok {
			t.Errorf("inputs.%s is used but not declared", m[1])
		}
	}
	for name := range a.Inputs {
		if !used[name] {
			t.Errorf("input %s is declared but never used", name)
		}
	}
	for i, s := range a.Runs.Steps {
		where := fmt.Sprintf("step %d (%s)", i+1, s.Name)
		if s.Name == "" {
			t.Errorf("%s has no name", where)
		}
		if (s.Run == "") == (s.Uses == "") {
			t.Errorf("%s: want exactly one of run and uses", where)
		}
		if s.Run != "" && s.Shell != "bash" {
			t.Errorf("%s: shell %q, want bash", where, s.Shell)
		}
		if strings.Contains(s.Run, "${{") {
			t.Errorf("%s: the script expands ${{ }} itself; pass values through env", where)
		}
	}
}

// TestActionRunStepsPassBashAndShellcheck checks each run script with
// bash -n and shellcheck, as the script GitHub writes for shell: bash.
func TestActionRunStepsPassBashAndShellcheck(t *testing.T) {
	a := loadAction(t)
	sc := ""
	if p, err := exec.LookPath("shellcheck"); err == nil {
		sc = p
	} else if os.Getenv(shellcheckEnv) != "" {
		t.Fatalf("%s is set but shellcheck is not on PATH", shellcheckEnv)
	} else {
		t.Log("shellcheck not on PATH (apt-get install shellcheck): checking with bash -n only")
	}
	dir := t.TempDir()
	n := 0
	for i, s := range a.Runs.Steps {
		if s.Run == "" {
			continue
		}
		n++
		path := filepath.Join(dir, fmt.Sprintf("step%02d.sh", i+1))
		if err := os.WriteFile(path, []byte("#!/usr/bin/env bash\n"+s.Run), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("bash", "-n", path).CombinedOutput(); err != nil {
			t.Errorf("step %d (%s): bash -n: %v\n%s", i+1, s.Name, err, out)
		}
		if sc != "" {
			if out, err := exec.Command(sc, "-s", "bash", "-f", "gcc", path).CombinedOutput(); err != nil {
				t.Errorf("step %d (%s): shellcheck: %v\n%s", i+1, s.Name, err, out)
			}
		}
	}
	if n < 5 {
		t.Errorf("only %d run steps", n)
	}
	// The helper every root step goes through.
	if sc != "" {
		for _, f := range []string{"as-root", depsScript} {
			if out, err := exec.Command(sc, f).CombinedOutput(); err != nil {
				t.Errorf("shellcheck %s: %v\n%s", f, err, out)
			}
		}
	}
}

// TestShellcheckCatchesABadStep proves the check above can fail.
func TestShellcheckCatchesABadStep(t *testing.T) {
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Skip("shellcheck not on PATH")
	}
	path := filepath.Join(t.TempDir(), "bad.sh")
	os.WriteFile(path, []byte("#!/usr/bin/env bash\nrm -rf $RUNNER_TEMP/x\n"), 0o644)
	if out, err := exec.Command(sc, "-s", "bash", "-f", "gcc", path).CombinedOutput(); err == nil || !strings.Contains(string(out), "SC2086") {
		t.Errorf("shellcheck passed an unquoted variable: %v\n%s", err, out)
	}
}

var (
	docSteps = regexp.MustCompile(`(?s)<!-- action-steps -->\n(.*?)<!-- /action-steps -->`)
	docStep  = regexp.MustCompile(`(?m)^(\d+)\. \*\*([^*]+)\*\*`)
)

// TestActionStepsMatchTheDocs: the numbered list in ci/README.md between
// the action-steps markers names the action's steps, in order.
func TestActionStepsMatchTheDocs(t *testing.T) {
	a := loadAction(t)
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := docSteps.FindSubmatch(b)
	if m == nil {
		t.Fatal("ci/README.md has no <!-- action-steps --> section")
	}
	var documented, actual []string
	for i, d := range docStep.FindAllStringSubmatch(string(m[1]), -1) {
		if d[1] != fmt.Sprint(i+1) {
			t.Errorf("documented step %q is numbered %s, want %d", d[2], d[1], i+1)
		}
		documented = append(documented, d[2])
	}
	for _, s := range a.Runs.Steps {
		actual = append(actual, s.Name)
	}
	if !slices.Equal(documented, actual) {
		t.Errorf("ci/README.md documents the steps\n  %q\naction.yml has\n  %q", documented, actual)
	}
}

// localRun runs the action's steps on this machine as GitHub runs a
// composite action: each run step as `bash --noprofile --norc -eo pipefail
// FILE` in its working directory, with GITHUB_ENV and GITHUB_OUTPUT files
// per step and GITHUB_STEP_SUMMARY for the job, expressions in env, with,
// working-directory and if evaluated from inputs, github, runner and earlier
// steps' outputs. uses steps are not run: uses answers with their outputs
// (cache-hit for the restore), or nil to skip.
type localRun struct {
	t         *testing.T
	inputs    map[string]string
	actionDir string
	workspace string
	temp      string
	summary   string
	env       map[string]string // GITHUB_ENV so far
	outputs   map[string]map[string]string
	failed    bool
	uses      func(s actionStep) map[string]string
	only      map[string]bool // when set, run only these step names
	log       strings.Builder
}

func newLocalRun(t *testing.T, inputs map[string]string) *localRun {
	t.Helper()
	a := loadAction(t)
	all := map[string]string{}
	for name, in := range a.Inputs {
		all[name] = in.Default
	}
	for k, v := range inputs {
		if _, ok := a.Inputs[k]; !ok {
			t.Fatalf("input %s is not declared", k)
		}
		all[k] = v
	}
	actionDir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	temp := t.TempDir()
	r := &localRun{t: t, inputs: all, actionDir: actionDir, workspace: t.TempDir(), temp: temp,
		summary: filepath.Join(temp, "step-summary.md"), env: map[string]string{}, outputs: map[string]map[string]string{}}
	if err := os.WriteFile(r.summary, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return r
}

var exprRef = regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)

// value resolves a context path such as inputs.members or
// steps.key.outputs.key; anything else fails the test.
func (r *localRun) value(path string) string {
	f := strings.Split(path, ".")
	switch {
	case len(f) == 2 && f[0] == "inputs":
		if v, ok := r.inputs[f[1]]; ok {
			return v
		}
	case path == "github.action_path":
		return r.actionDir
	case path == "github.workspace":
		return r.workspace
	case path == "runner.temp":
		return r.temp
	case path == "runner.os":
		return "Linux"
	case len(f) == 4 && f[0] == "steps" && f[2] == "outputs":
		return r.outputs[f[1]][f[3]]
	}
	r.t.Fatalf("the local runner cannot evaluate %q", path)
	return ""
}

func (r *localRun) expand(s string) string {
	return exprRef.ReplaceAllStringFunc(s, func(m string) string {
		return r.value(exprRef.FindStringSubmatch(m)[1])
	})
}

var cmpTerm = regexp.MustCompile(`^([a-z][A-Za-z0-9_.-]*)\s*(==|!=)\s*'([^']*)'$`)

// runs evaluates a step's if: terms joined by &&, each always(),
// success(), failure() or a context path compared with a string.
func (r *localRun) runs(cond string) bool {
	cond = strings.TrimSpace(cond)
	if m := exprRef.FindStringSubmatch(cond); m != nil && m[0] == cond {
		cond = m[1]
	}
	status := !r.failed // an if without a status function means success() &&
	for _, term := range strings.Split(cond, "&&") {
		term = strings.TrimSpace(term)
		switch {
		case term == "":
		case term == "always()":
			status = true
		case term == "success()":
			status = !r.failed
		case term == "failure()":
			status = r.failed
		default:
			m := cmpTerm.FindStringSubmatch(term)
			if m == nil {
				r.t.Fatalf("the local runner cannot evaluate %q in if: %q", term, cond)
			}
			if (r.value(m[1]) == m[3]) != (m[2] == "==") {
				return false
			}
		}
	}
	return status
}

// readKV reads a GITHUB_ENV or GITHUB_OUTPUT file (NAME=VALUE and
// NAME<<DELIM ... DELIM).
func readKV(t *testing.T, path string) map[string]string {
	t.Helper()
	out := map[string]string{}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if name, delim, ok := strings.Cut(line, "<<"); ok && !strings.Contains(name, "=") {
			var v []string
			for sc.Scan() && sc.Text() != delim {
				v = append(v, sc.Text())
			}
			out[name] = strings.Join(v, "\n")
		} else if name, v, ok := strings.Cut(line, "="); ok {
			out[name] = v
		} else if line != "" {
			t.Errorf("%s: malformed line %q", path, line)
		}
	}
	return out
}

// run runs every step and reports whether all that ran passed.
func (r *localRun) run() bool {
	t := r.t
	for i, s := range loadAction(t).Runs.Steps {
		if r.only != nil && !r.only[s.Name] {
			continue
		}
		if !r.runs(s.If) {
			fmt.Fprintf(&r.log, "step %d (%s): skipped (if: %s)\n", i+1, s.Name, s.If)
			continue
		}
		if s.Uses != "" {
			for k, v := range s.With {
				if str, ok := v.(string); ok {
					r.expand(str) // every expression must evaluate
				} else {
					_ = k
				}
			}
			outs := r.uses(s)
			fmt.Fprintf(&r.log, "step %d (%s): uses %s, not run here; outputs %v\n", i+1, s.Name, s.Uses, outs)
			if s.ID != "" {
				r.outputs[s.ID] = outs
			}
			continue
		}
		dir := r.temp
		if s.WorkingDirectory != "" {
			dir = r.expand(s.WorkingDirectory)
		}
		script := filepath.Join(r.temp, fmt.Sprintf("step%02d.sh", i+1))
		envFile, outFile := filepath.Join(r.temp, fmt.Sprintf("env%02d", i+1)), filepath.Join(r.temp, fmt.Sprintf("output%02d", i+1))
		for _, f := range []string{envFile, outFile} {
			if err := os.WriteFile(f, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(script, []byte(s.Run), 0o644); err != nil {
			t.Fatal(err)
		}
		env := os.Environ()
		for k, v := range r.env {
			env = append(env, k+"="+v)
		}
		env = append(env, "GITHUB_ENV="+envFile, "GITHUB_OUTPUT="+outFile, "GITHUB_STEP_SUMMARY="+r.summary,
			"GITHUB_ACTION_PATH="+r.actionDir, "GITHUB_WORKSPACE="+r.workspace, "RUNNER_TEMP="+r.temp, "RUNNER_OS=Linux",
			"GITHUB_RUN_ID=4242", "GITHUB_RUN_ATTEMPT=1", "CI=true")
		keys := make([]string, 0, len(s.Env))
		for k := range s.Env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			env = append(env, k+"="+r.expand(s.Env[k]))
		}
		cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", script)
		cmd.Dir, cmd.Env = dir, env
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		start := time.Now()
		out, err := cmd.CombinedOutput()
		fmt.Fprintf(&r.log, "step %d (%s): %v in %s\n%s\n", i+1, s.Name, err, time.Since(start).Round(time.Millisecond), out)
		if err != nil {
			r.failed = true
		}
		for k, v := range readKV(t, envFile) {
			r.env[k] = v
		}
		if s.ID != "" {
			r.outputs[s.ID] = readKV(t, outFile)
		}
	}
	return !r.failed
}

// actionOutputs evaluates the action's outputs after a run.
func (r *localRun) actionOutputs() map[string]string {
	out := map[string]string{}
	for name, o := range loadAction(r.t).Outputs {
		out[name] = r.expand(o.Value)
	}
	return out
}

// TestActionCachePackAndUnpackRoundTrip runs the pack and unpack steps on
// a cache holding a sparse 2 GiB file: it comes back whole and sparse,
// with the locks and unfinished builds left out.
func TestActionCachePackAndUnpackRoundTrip(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("BCMTEST_CACHE_DIR", cache)
	img := filepath.Join(cache, "images", "bookworm-0123456789ab")
	if err := os.MkdirAll(img, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(img, "root.img"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("ext4 at the end"), 2<<30-15)
	f.Close()
	for _, p := range []string{"images/bookworm-0123456789ab/manifest.json", "images/bookworm-0123456789ab.lock",
		"images/bookworm-0123456789ab.tmp-123/partial", "snapshots/bookworm-0123456789ab-c2-m2048-kvm-d1/state"} {
		os.MkdirAll(filepath.Join(cache, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(cache, p), []byte(p), 0o644)
	}

	r := newLocalRun(t, nil)
	r.only = map[string]bool{"Check inputs": true, "Pack image cache": true}
	r.outputs["key"] = map[string]string{"key": "bcmtest-Linux-test", "image": "bookworm-0123456789ab"}
	r.uses = func(actionStep) map[string]string { return nil }
	r.outputs["restore"] = map[string]string{"cache-hit": ""}
	if !r.run() {
		t.Fatalf("pack failed:\n%s", r.log.String())
	}
	archive := filepath.Join(r.temp, "bcmtest-cache", "cache.tar")
	if fi, err := os.Stat(archive); err != nil || fi.Size() > 64<<20 {
		t.Fatalf("archive %s: %v (size %v): not sparse-aware\n%s", archive, err, fi, r.log.String())
	}
	if r.outputs["pack"]["packed"] != "true" {
		t.Errorf("pack step outputs %v, want packed=true", r.outputs["pack"])
	}
	if save := stepNamed(t, "Save image cache"); !r.runs(save.If) {
		t.Errorf("Save image cache would not run (if: %s) after packing", save.If)
	}

	restored := t.TempDir()
	t.Setenv("BCMTEST_CACHE_DIR", filepath.Join(restored, "cache"))
	r.only = map[string]bool{"Unpack image cache": true}
	r.env["BCMTEST_CACHE_DIR"] = filepath.Join(restored, "cache")
	r.env["BCMTEST_ACTION_BIN"] = "true" // image list after unpacking: not under test here
	if !r.run() {
		t.Fatalf("unpack failed:\n%s", r.log.String())
	}
	root := filepath.Join(restored, "cache", "images", "bookworm-0123456789ab", "root.img")
	fi, err := os.Stat(root)
	if err != nil || fi.Size() != 2<<30 {
		t.Fatalf("restored root.img: %v %v\n%s", fi, err, r.log.String())
	}
	if blocks := fi.Sys().(*syscall.Stat_t).Blocks * 512; blocks > 16<<20 {
		t.Errorf("restored root.img uses %d bytes on disk: not sparse", blocks)
	}
	b := make([]byte, 15)
	rf, _ := os.Open(root)
	rf.ReadAt(b, 2<<30-15)
	rf.Close()
	if string(b) != "ext4 at the end" {
		t.Errorf("restored root.img ends %q", b)
	}
	for p, want := range map[string]bool{"images/bookworm-0123456789ab/manifest.json": true, "snapshots/bookworm-0123456789ab-c2-m2048-kvm-d1/state": true,
		"images/bookworm-0123456789ab.lock": false, "images/bookworm-0123456789ab.tmp-123/partial": false} {
		if _, err := os.Stat(filepath.Join(restored, "cache", p)); (err == nil) != want {
			t.Errorf("%s restored: %v, want %v", p, err == nil, want)
		}
	}
	if _, err := os.Stat(archive); !os.IsNotExist(err) {
		t.Errorf("the archive is left after unpacking: %v", err)
	}
}

// TestActionPacksNoCacheWithoutTheImage: when the image was not built
// (a failed build), nothing is packed, so no cache entry without it is
// saved for good under the key.
func TestActionPacksNoCacheWithoutTheImage(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("BCMTEST_CACHE_DIR", cache)
	os.MkdirAll(filepath.Join(cache, "images", "bookworm-0123456789ab.tmp-99"), 0o755)
	os.WriteFile(filepath.Join(cache, "images", "bookworm-0123456789ab.lock"), nil, 0o644)
	r := newLocalRun(t, nil)
	r.only = map[string]bool{"Pack image cache": true}
	r.outputs["key"] = map[string]string{"key": "bcmtest-Linux-test", "image": "bookworm-0123456789ab"}
	r.outputs["restore"] = map[string]string{"cache-hit": ""}
	if !r.run() {
		t.Fatalf("pack failed:\n%s", r.log.String())
	}
	if _, err := os.Stat(filepath.Join(r.temp, "bcmtest-cache", "cache.tar")); !os.IsNotExist(err) || r.outputs["pack"]["packed"] != "" {
		t.Errorf("packed a cache without the image: %v, outputs %v\n%s", err, r.outputs["pack"], r.log.String())
	}
	if save := stepNamed(t, "Save image cache"); r.runs(save.If) {
		t.Errorf("Save image cache would run (if: %s) with nothing packed", save.If)
	}
}

// TestActionRejectsBadInputs: the first run step refuses bad inputs,
// naming the input and the rule, before anything is built.
func TestActionRejectsBadInputs(t *testing.T) {
	for _, tc := range []struct {
		inputs map[string]string
		want   string
	}{
		{map[string]string{"members": "two"}, `input members "two": must be a whole number`},
		{map[string]string{"provider": "lxd"}, `input provider "lxd": must be auto, qemu or multipass`},
		{map[string]string{"cloud-init": "nope.yml"}, `input cloud-init "nope.yml": no such file`},
		{map[string]string{"base": "HEAD~1"}, `input base "HEAD~1" needs the cloud-init input`},
	} {
		r := newLocalRun(t, tc.inputs)
		r.only = map[string]bool{"Check inputs": true}
		if r.run() || !strings.Contains(r.log.String(), tc.want) {
			t.Errorf("inputs %v: want a failure saying %q, got:\n%s", tc.inputs, tc.want, r.log.String())
		}
	}
}

// TestActionRunsLocally runs every run step of the action on this machine
// with the qemu provider and 0 members: one VM boots (minutes under TCG).
// Set BCMTEST_ACTION_E2E=1 and hold the VM lock; BCMTEST_ACTION_LABELS
// picks the specs (default: the three cloud-init smoke specs).
func TestActionRunsLocally(t *testing.T) {
	if os.Getenv("BCMTEST_ACTION_E2E") != "1" {
		t.Skip("boots a VM: set BCMTEST_ACTION_E2E=1 (and hold the VM lock)")
	}
	labels := os.Getenv("BCMTEST_ACTION_LABELS")
	if labels == "" {
		labels = "cloud-init && smoke"
	}
	r := newLocalRun(t, map[string]string{"members": "0", "provider": "qemu", "labels": labels, "artifacts-name": "local"})
	// A cache hit: the image is this machine's cache; packing it is the
	// round-trip test's business.
	r.uses = func(s actionStep) map[string]string {
		if strings.HasPrefix(s.Uses, "actions/cache/restore@") {
			return map[string]string{"cache-hit": "true"}
		}
		return nil
	}
	ok := r.run()
	t.Logf("steps:\n%s", r.log.String())
	if !ok {
		t.Fatal("a step failed")
	}
	outs := r.actionOutputs()
	if outs["run-id"] != "gh-4242-1-m0" {
		t.Errorf("output run-id %q", outs["run-id"])
	}
	if want := filepath.Join(r.temp, "bcmtest-artifacts", "gh-4242-1-m0", "junit.xml"); outs["report"] != want {
		t.Errorf("output report %q, want %q", outs["report"], want)
	}
	if _, err := os.Stat(outs["report"]); err != nil {
		t.Errorf("the report output names no file: %v", err)
	}
	summary, err := os.ReadFile(r.summary)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("summary:\n%s", summary)
	for _, want := range []string{"## bcmtest, members=0 (run gh-4242-1-m0)", "| Report | Suite | Tests |"} {
		if !strings.Contains(string(summary), want) {
			t.Errorf("summary lacks %q", want)
		}
	}
}

// projectCopy lays the workflows out as in an installed repository
// (.github/workflows beside action.yml and .git), where actionlint checks
// each `uses: ./` step's inputs against action.yml.
func projectCopy(t *testing.T, extra map[string]string) []string {
	t.Helper()
	root := t.TempDir()
	wf := filepath.Join(root, ".github", "workflows")
	for _, d := range []string{wf, filepath.Join(root, ".git")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(actionFile)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "action.yml"), b, 0o644)
	var files []string
	for _, f := range workflowFiles(t) {
		if !strings.HasPrefix(f, workflowDir) {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(wf, filepath.Base(f))
		os.WriteFile(dst, b, 0o644)
		files = append(files, dst)
	}
	for name, body := range extra {
		dst := filepath.Join(wf, name)
		os.WriteFile(dst, []byte(body), 0o644)
		files = append(files, dst)
	}
	return files
}

// TestWorkflowsGiveTheActionItsInputs: installed as .github/workflows, our
// workflows pass actionlint with their `uses: ./` steps checked against
// action.yml; a step with an input the action lacks does not.
func TestWorkflowsGiveTheActionItsInputs(t *testing.T) {
	for _, e := range lint(t, projectCopy(t, nil)) {
		t.Error(format(e))
	}
	bad := "on: push\npermissions:\n  contents: read\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - uses: ./\n        with:\n          memberz: \"1\"\n"
	var found bool
	for _, e := range lint(t, projectCopy(t, map[string]string{"bad.yml": bad})) {
		found = found || (strings.HasSuffix(e.Filepath, "bad.yml") && strings.Contains(e.Message, `input "memberz" is not defined in action "bcmtest"`))
	}
	if !found {
		t.Error("actionlint did not check a uses: ./ step's inputs against action.yml")
	}
}

// TestActionReviewGoesToTheSummary runs the review, summary and verdict
// steps with base set and a stand-in bcmtest that records its arguments:
// the review is called as `cloudinit diff --base REV FILE -o markdown`, its
// Markdown lands in the job summary, and its failure fails the action only
// in the last step.
func TestActionReviewGoesToTheSummary(t *testing.T) {
	for _, status := range []int{0, 1} {
		r := newLocalRun(t, map[string]string{"base": "abc123", "cloud-init": "cloud_init.yml"})
		if err := os.WriteFile(filepath.Join(r.workspace, "cloud_init.yml"), []byte("#cloud-config\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		fake := filepath.Join(r.temp, "fake-bcmtest")
		args := filepath.Join(r.temp, "args")
		os.WriteFile(fake, []byte(fmt.Sprintf("#!/bin/sh\necho \"$*\" > %s\necho '| change | verdict |'\necho '| packages: +jq | ok |'\nexit %d\n", args, status)), 0o755)
		r.uses = func(actionStep) map[string]string { return nil }
		r.only = map[string]bool{"Check inputs": true}
		if !r.run() {
			t.Fatalf("check inputs:\n%s", r.log.String())
		}
		r.env["BCMTEST_ACTION_BIN"] = fake // instead of the bcmtest the action builds
		r.only = map[string]bool{"Review the cloud-init change": true, "Job summary": true, "Review verdict": true}
		ok := r.run()
		if ok != (status == 0) {
			t.Errorf("review exit %d: the action passed: %v\n%s", status, ok, r.log.String())
		}
		got, _ := os.ReadFile(args)
		if want := "cloudinit diff --base abc123 " + filepath.Join(r.workspace, "cloud_init.yml") + " -o markdown\n"; string(got) != want {
			t.Errorf("review called with %q, want %q", got, want)
		}
		summary, _ := os.ReadFile(r.summary)
		for _, want := range []string{"### cloud-init review against abc123", "| packages: +jq | ok |"} {
			if !strings.Contains(string(summary), want) {
				t.Errorf("summary lacks %q:\n%s", want, summary)
			}
		}
		if status != 0 && !strings.Contains(r.log.String(), "the cloud-init review failed (exit status 1)") {
			t.Errorf("the verdict does not say the review failed:\n%s", r.log.String())
		}
	}
}
