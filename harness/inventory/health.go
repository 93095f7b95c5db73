package inventory

import (
	"encoding/json"
	"regexp"
	"sort"
	"strings"
)

// statusJSON is `cloud-init status --format json` (cloud-init 23.1+;
// extended_status and recoverable_errors from 23.4).
type statusJSON struct {
	Status            string              `json:"status"`
	ExtendedStatus    string              `json:"extended_status"`
	Errors            []string            `json:"errors"`
	RecoverableErrors map[string][]string `json:"recoverable_errors"`
	Unsupported       string              `json:"bcmtest_format_json"`
}

// resultJSON is /run/cloud-init/result.json, written when cloud-init ends.
type resultJSON struct {
	V1 struct {
		Errors []string `json:"errors"`
	} `json:"v1"`
}

// stageStatus is one stage of /run/cloud-init/status.json.
type stageStatus struct {
	Errors            []string            `json:"errors"`
	RecoverableErrors map[string][]string `json:"recoverable_errors"`
}

var reSkipped = regexp.MustCompile(`Skipping modules '([^']*)' because no applicable config is provided`)

// parseHealth reads cloud-init's verdict: from `status --format json`
// where the node's cloud-init has it, else (22.4) from result.json and
// status.json, as `cloud-init status` itself does; and the log rules.
func parseHealth(secs map[string]string, n func(string) string) Health {
	h := Health{Errors: []string{}, SkippedModules: []string{}}
	var st statusJSON
	if err := json.Unmarshal([]byte(strings.TrimSpace(secs["status"])), &st); err == nil && st.Unsupported == "" && st.Status != "" {
		h.Status, h.ExtendedStatus = st.Status, st.ExtendedStatus
		h.Errors = append(h.Errors, st.Errors...)
		h.RecoverableErrors = st.RecoverableErrors
	} else {
		h.Status, h.Errors = legacyStatus(secs["status_long"], secs["result_json"], secs["status_json"])
	}
	for i, e := range h.Errors {
		h.Errors[i] = n(e)
	}
	h.Errors = sortedUnique(h.Errors)
	for lvl, msgs := range h.RecoverableErrors {
		for i := range msgs {
			msgs[i] = n(msgs[i])
		}
		h.RecoverableErrors[lvl] = sortedUnique(msgs)
	}
	h.Log = LogFindings(secs["log"], n)
	h.SchemaValid, h.SchemaOutput = parseSchema(secs["schema"], n)
	for _, m := range reSkipped.FindAllStringSubmatch(secs["log"], -1) {
		for _, mod := range strings.Split(m[1], ",") {
			if mod = strings.TrimSpace(mod); mod != "" {
				h.SkippedModules = append(h.SkippedModules, mod)
			}
		}
	}
	h.SkippedModules = sortedUnique(h.SkippedModules)
	return h
}

// legacyStatus is cloud-init 22.4's status: "done" when result.json
// exists with no errors, "error" when it lists some, else the stage from
// `status --long` (running, disabled, not run); the errors of every stage.
func legacyStatus(long, result, status string) (string, []string) {
	var errs []string
	var sj struct {
		V1 map[string]json.RawMessage `json:"v1"`
	}
	if json.Unmarshal([]byte(status), &sj) == nil {
		for _, raw := range sj.V1 {
			var s stageStatus
			if json.Unmarshal(raw, &s) == nil {
				errs = append(errs, s.Errors...)
			}
		}
	}
	var rj resultJSON
	if strings.TrimSpace(result) != "" && json.Unmarshal([]byte(result), &rj) == nil {
		errs = append(errs, rj.V1.Errors...)
		if len(errs) > 0 {
			return "error", errs
		}
		return "done", []string{}
	}
	for _, l := range strings.Split(long, "\n") {
		if v, ok := strings.CutPrefix(l, "status:"); ok {
			return strings.TrimSpace(v), append([]string{}, errs...)
		}
	}
	return "unknown", append([]string{}, errs...)
}

func parseSchema(s string, n func(string) string) (bool, []string) {
	valid := strings.Contains(s, "bcmtest-exit=0")
	if valid {
		return true, nil
	}
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "bcmtest-exit=") {
			out = append(out, n(l))
		}
	}
	return false, out
}

var (
	reDeprecated = regexp.MustCompile(`(?i)deprecat`)
	reLogPrefix  = regexp.MustCompile(`^\S+ \S+ - [^\[]*\[[A-Z]+\]: `)
	reErrorRule  = regexp.MustCompile(`CRITICAL.*|ERROR.*`)
	reSignal     = regexp.MustCompile(`(?i)received SIG[A-Z]+`)
)

// expectedWarnings are the warnings cloud-init's verify_clean_log allows.
var expectedWarnings = []string{
	"No lease found; using default endpoint",
	"thinpool by default on Ubuntu due to LP #1982780",
	"WARNING]: Could not match supplied host pattern, ignoring:",
}

// LogFindings applies the rules of cloud-init's own integration tests
// (verify_clean_log) to cloud-init.log: lines with ERROR or CRITICAL,
// "[WARNING]" lines (less the ones it expects), deprecations (which it
// sets apart), Tracebacks (with their exception line) and "received
// SIG...". Each finding's line is normalised and without its timestamp
// prefix; findings are unique and sorted.
func LogFindings(log string, n func(string) string) []LogFinding {
	seen := map[LogFinding]bool{}
	add := func(rule, line string) {
		line = n(strings.TrimSpace(reLogPrefix.ReplaceAllString(line, "")))
		seen[LogFinding{Rule: rule, Line: line}] = true
	}
	lines := strings.Split(log, "\n")
	for i, l := range lines {
		switch {
		case reDeprecated.MatchString(l):
			add("deprecation", l)
			continue
		case strings.Contains(l, "Traceback"):
			exc := l
			for _, next := range lines[i+1:] {
				if next != "" && next[0] != ' ' && next[0] != '\t' {
					exc = next
					break
				}
			}
			add("traceback", exc)
		case reSignal.MatchString(l):
			add("signal", l)
		}
		if reErrorRule.MatchString(l) {
			add("error", l)
		} else if strings.Contains(l, "[WARNING]") && !expected(l) {
			add("warning", l)
		}
	}
	out := make([]LogFinding, 0, len(seen))
	for f := range seen {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Rule != out[j].Rule {
			return out[i].Rule < out[j].Rule
		}
		return out[i].Line < out[j].Line
	})
	return out
}

func expected(line string) bool {
	for _, w := range expectedWarnings {
		if strings.Contains(line, w) {
			return true
		}
	}
	return false
}

func sortedUnique(in []string) []string {
	sort.Strings(in)
	out := []string{}
	for i, s := range in {
		if i == 0 || s != in[i-1] {
			out = append(out, s)
		}
	}
	return out
}
