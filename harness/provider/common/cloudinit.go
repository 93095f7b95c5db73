package common

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

// cloudInitStatus is the part of /run/cloud-init/status.json we read.
type cloudInitStatus struct {
	V1 map[string]json.RawMessage `json:"v1"`
}

type stageStatus struct {
	Errors []string `json:"errors"`
}

var moduleInError = regexp.MustCompile(`^\('([A-Za-z0-9_-]+)'`)

// waitForCloudInit blocks in the guest until cloud-init's last stage has
// written result.json, then prints status.json. It replaces `cloud-init
// status --wait`, a Python process that polls beside cloud-init for the whole
// boot: under software emulation its start alone took seconds of the CPU the
// stages need. A shell test and a sleep every 0.2 s cost next to nothing.
const waitForCloudInit = `while [ ! -e /run/cloud-init/result.json ]; do sleep 0.2; done; cat /run/cloud-init/status.json`

// CheckCloudInit waits for cloud-init on a VM of any provider and reports
// its failures: the errors each stage recorded in status.json. console
// supplies the serial console tail when there is one. The in-guest wait has
// no timeout of its own: ctx bounds it (callers give it the cloud-init
// interval).
func CheckCloudInit(ctx context.Context, p provider.Provider, name string, console func() string) error {
	res, err := p.Exec(ctx, name, provider.ExecInput{Argv: []string{"sh", "-c", waitForCloudInit}})
	if err == nil && res.ExitCode != 0 {
		err = fmt.Errorf("exit status %d: %s", res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}
	if err != nil {
		e := &provider.CloudInitError{VM: name, Status: "running", Cause: fmt.Errorf("waiting for cloud-init: %w", err)}
		if console != nil {
			e.ConsoleTail = console()
		}
		// ctx has likely ended; the log's tail is read within diag-exec.
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), wait.LoadOrDefault().DiagExec.Timeout)
		defer cancel()
		readLogs(tctx, p, e)
		return e
	}
	var st cloudInitStatus
	if err := json.Unmarshal(res.Stdout, &st); err != nil {
		return fmt.Errorf("parsing /run/cloud-init/status.json on %s: %w", name, err)
	}
	var errs, mods []string
	for stage, raw := range st.V1 {
		var s stageStatus
		if json.Unmarshal(raw, &s) != nil {
			continue
		}
		for _, e := range s.Errors {
			errs = append(errs, stage+": "+e)
			if m := moduleInError.FindStringSubmatch(e); m != nil {
				mods = append(mods, m[1])
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	// As `cloud-init status` says it: a stage recorded errors.
	e := &provider.CloudInitError{VM: name, Status: "error", FailedModules: mods, Errors: errs}
	readLogs(ctx, p, e)
	if console != nil {
		e.ConsoleTail = console()
	}
	return e
}

// The logs CheckCloudInit reads when cloud-init failed. The whole of
// cloud-init.log is rarely needed: one boot writes a few thousand lines.
const (
	outputLog      = "/var/log/cloud-init-output.log"
	cloudInitLog   = "/var/log/cloud-init.log"
	outputLogLines = "200"
	mainLogLines   = "5000"
	// maxFailingOutput caps the lines of the failing command's output.
	maxFailingOutput = 20
)

// readLogs fills e from the VM's cloud-init logs: the output log's tail,
// and what both logs say about the command that failed. A log that cannot
// be read is left out.
func readLogs(ctx context.Context, p provider.Provider, e *provider.CloudInitError) {
	e.OutputTail = readTail(ctx, p, e.VM, outputLog, outputLogLines)
	explain(e, e.OutputTail, readTail(ctx, p, e.VM, cloudInitLog, mainLogLines))
}

// readTail is the last n lines of a log on the VM, or "" if unreadable.
func readTail(ctx context.Context, p provider.Provider, name, path, n string) string {
	out, err := p.Exec(ctx, name, provider.ExecInput{Argv: []string{"tail", "-n", n, path}})
	if err != nil || out.ExitCode != 0 {
		return ""
	}
	return string(out.Stdout)
}

var (
	// bootStart is cloud-init's first line of a boot's init stages, in both
	// logs: "Cloud-init v. 22.4.2 running 'init-local' at ...".
	bootStart = regexp.MustCompile(`Cloud-init v\. \S+ running '(init-local|init)'`)
	// moduleEvent is a module's start or finish as cloud-init.log's
	// handlers.py reports it: "finish: modules-final/config-scripts_user:
	// FAIL: running config-scripts_user with frequency once-per-instance".
	moduleEvent = regexp.MustCompile(`\b(start|finish): ([\w-]+/config-([\w-]+)): (?:(SUCCESS|FAIL|WARN): )?`)
	// failedRunning is runparts' warning about a script (runcmd, a user
	// script) that exited non-zero.
	failedRunning = regexp.MustCompile(`Failed running (\S+) \[(-?\d+|-)\]`)
	// moduleFailed is the warning cloud-init logs after a module failed.
	moduleFailed = regexp.MustCompile(`Running module ([\w-]+) \(.*\) failed|Failed to run module ([\w-]+)`)
	// logLine is a line cloud-init itself logged (either log, or syslog's
	// and the console's rendering of it), as opposed to a program's output.
	logLine  = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ - |\b[\w.-]+\.py\[(DEBUG|INFO|WARNING|ERROR|CRITICAL)\]: |^Cloud-init v\. |^ci-info: `)
	pyString = regexp.MustCompile(`'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"`)
)

// explain fills e's FailingCommand, ExitCode and FailingOutput (and any
// failed module e does not list yet) from the logs of the boot that failed:
// output is the tail of cloud-init-output.log, mainLog that of
// cloud-init.log; either may be "". The failing command is the first that
// exited non-zero inside a module cloud-init.log reports as FAIL, else the
// first script runparts reports; its output is what cloud-init.log recorded
// of it or, for a command whose output went to the console (runcmd, apt),
// the lines it printed in the output log just before cloud-init's warnings.
func explain(e *provider.CloudInitError, output, mainLog string) {
	out := lastBoot(lines(output))
	main := lastBoot(lines(mainLog))
	f, mods := fromMainLog(main)
	if f.command == "" {
		f = fromOutputLog(out)
	}
	for _, m := range append(mods, outputModules(out)...) {
		if !slices.Contains(e.FailedModules, m) {
			e.FailedModules = append(e.FailedModules, m)
		}
	}
	if f.command == "" {
		return
	}
	e.FailingCommand, e.ExitCode, e.FailingOutput = f.command, f.exit, f.output
	if len(e.FailingOutput) == 0 && !f.captured {
		e.FailingOutput = printedBefore(out, f)
	}
}

// failure is what the logs say about a failed command.
type failure struct {
	module, command string
	exit            int
	output          []string
	// captured: cloud-init kept the command's output (it is in output, or
	// there was none); otherwise it went to the console and the output log.
	captured bool
}

func lines(s string) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// lastBoot drops the lines of earlier boots (an image's first boot is in
// the logs of every VM made from it).
func lastBoot(ls []string) []string {
	init, local := -1, -1
	for i, l := range ls {
		if m := bootStart.FindStringSubmatch(l); m != nil {
			if m[1] == "init" {
				init = i
			} else {
				local = i
			}
		}
	}
	switch {
	case local >= 0 && local < init:
		// The init-local stage of the boot whose init stage came last.
		return ls[local:]
	case local > init:
		return ls[local:] // the last boot stopped in init-local
	case init >= 0:
		return ls[init:]
	}
	return ls
}

// fromMainLog finds, in cloud-init.log, the modules that finished with
// FAIL and the first command that failed in one of them.
func fromMainLog(ls []string) (failure, []string) {
	var first failure
	var mods []string
	start := map[string]int{}
	for i, l := range ls {
		m := moduleEvent.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		if m[1] == "start" {
			start[m[2]] = i
			continue
		}
		if m[4] != "FAIL" {
			continue
		}
		mods = append(mods, strings.ReplaceAll(m[3], "-", "_"))
		from, ok := start[m[2]]
		if !ok || first.command != "" {
			continue
		}
		if f := failedIn(ls[from:i]); f.command != "" {
			f.module = strings.ReplaceAll(m[3], "-", "_")
			first = f
		}
	}
	return first, mods
}

// failedIn is the first failed command among one module's log lines: a
// ProcessExecutionError ("Unexpected error while running command." with
// Command, Exit code, Reason, Stdout and Stderr), or runparts' warning.
func failedIn(ls []string) failure {
	for i, l := range ls {
		if strings.Contains(l, "Unexpected error while running command.") {
			return processError(ls[i+1:])
		}
		if m := failedRunning.FindStringSubmatch(l); m != nil {
			code, _ := strconv.Atoi(m[2])
			return failure{command: m[1], exit: code}
		}
	}
	return failure{}
}

// processError parses the fields that follow "Unexpected error while
// running command.". Multi-line values go on in lines indented by eight
// spaces; "-" means none.
func processError(ls []string) failure {
	var f failure
	var stdout, stderr []string
	var cur *[]string
	reason := ""
fields:
	for _, l := range ls {
		key, val, ok := strings.Cut(l, ": ")
		if !ok && strings.HasSuffix(l, ":") {
			key, ok = strings.TrimSuffix(l, ":"), true
		}
		switch {
		case ok && key == "Command":
			f.command = command(val)
			cur = nil
		case ok && key == "Exit code":
			f.exit, _ = strconv.Atoi(strings.TrimSpace(val))
			cur = nil
		case ok && key == "Reason":
			reason = strings.TrimSpace(val)
			cur = nil
		case ok && key == "Stdout":
			stdout, cur = field(val), &stdout
		case ok && key == "Stderr":
			stderr, cur = field(val), &stderr
		case cur != nil && strings.HasPrefix(l, "        "):
			*cur = append(*cur, strings.TrimPrefix(l, "        "))
		default:
			break fields
		}
	}
	f.captured = stdout != nil || stderr != nil
	f.output = append(stdout, stderr...)
	if reason != "" && reason != "-" {
		f.output = append([]string{"reason: " + reason}, f.output...)
	}
	if len(f.output) > maxFailingOutput {
		f.output = f.output[len(f.output)-maxFailingOutput:]
	}
	return f
}

// field is the first line of a Stdout or Stderr value: nil for "-".
func field(v string) []string {
	if v = strings.TrimRight(v, " "); v == "-" || v == "" {
		return nil
	}
	return []string{v}
}

// command renders Python's repr of an argv list as a command line.
func command(repr string) string {
	repr = strings.TrimSpace(repr)
	if !strings.HasPrefix(repr, "[") {
		return repr
	}
	var argv []string
	for _, m := range pyString.FindAllStringSubmatch(repr, -1) {
		argv = append(argv, m[1]+m[2])
	}
	if argv == nil {
		return repr
	}
	return strings.Join(argv, " ")
}

// fromOutputLog is the first script runparts reports as failed in
// cloud-init-output.log, for when cloud-init.log could not be read.
func fromOutputLog(ls []string) failure {
	for i, l := range ls {
		if m := failedRunning.FindStringSubmatch(l); m != nil {
			code, _ := strconv.Atoi(m[2])
			f := failure{command: m[1], exit: code}
			for _, n := range ls[i+1:] {
				if mm := moduleFailed.FindStringSubmatch(n); mm != nil {
					f.module = modName(mm)
					break
				}
			}
			return f
		}
	}
	return failure{}
}

// modName is the module a moduleFailed match names, spelled as
// status.json spells it (older releases wrote scripts-user).
func modName(m []string) string { return strings.ReplaceAll(m[1]+m[2], "-", "_") }

// outputModules are the modules the output log's warnings say failed.
func outputModules(ls []string) []string {
	var mods []string
	for _, l := range ls {
		if m := moduleFailed.FindStringSubmatch(l); m != nil && !slices.Contains(mods, modName(m)) {
			mods = append(mods, modName(m))
		}
	}
	return mods
}

// printedBefore is what f's command printed to the output log: the lines
// right before cloud-init's warnings about it (runparts' "Failed running"
// line, else the module's failure), back to the previous line cloud-init
// wrote itself.
func printedBefore(ls []string, f failure) []string {
	at := -1
	for i, l := range ls {
		if m := failedRunning.FindStringSubmatch(l); m != nil && m[1] == f.command {
			at = i
			break
		}
	}
	if at < 0 && f.module != "" {
		for i, l := range ls {
			if m := moduleFailed.FindStringSubmatch(l); m != nil && modName(m) == f.module {
				at = i
				break
			}
		}
	}
	if at < 0 {
		return nil
	}
	for at > 0 && logLine.MatchString(ls[at-1]) {
		at-- // the warnings just before the one found
	}
	from := at
	for from > 0 && !logLine.MatchString(ls[from-1]) && at-from < maxFailingOutput {
		from--
	}
	out := slices.Clone(ls[from:at])
	for len(out) > 0 && strings.TrimSpace(out[len(out)-1]) == "" {
		out = out[:len(out)-1]
	}
	return out
}
