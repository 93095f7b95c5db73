// Package kernelcheck searches a node's serial console and kernel log for
// signs that its kernel was in trouble: soft and hard lockups, RCU stalls,
// hung tasks, OOM kills, oopses, BUGs, panics, and segfaults of LXD, dqlite
// or cloud-init. A guest kernel that stalls under a test fails the test's
// cleanup in ways that look like the code under test failing; this check
// names the node, the line and the time since boot instead, so nobody has
// to read a serial console by hand to find it.
//
// Scan is pure (recorded console text in, findings out); Check reads the
// two sources from a provider's VMs.
package kernelcheck

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Kind is what a finding is a sign of.
type Kind string

// The kinds of trouble the check looks for.
const (
	SoftLockup Kind = "soft lockup"
	HardLockup Kind = "hard lockup"
	RCUStall   Kind = "RCU stall"
	HungTask   Kind = "hung task"
	OOMKill    Kind = "OOM kill"
	Oops       Kind = "oops"
	Bug        Kind = "BUG"
	Panic      Kind = "panic"
	// Segfault is a segfault (or general protection fault) of LXD, dqlite
	// or cloud-init; other programs' crashes are theirs to report.
	Segfault Kind = "segfault"
)

// Source is where a finding was read.
type Source string

// The two sources a node's kernel messages are read from.
const (
	Console   Source = "serial console"
	KernelLog Source = "kernel log"
)

// Finding is one line that shows kernel trouble on one node.
type Finding struct {
	Node string
	Kind Kind
	// Sources are where the line was seen; one event printed both on the
	// console and in the kernel log is one finding with both sources.
	Sources []Source
	// Line is the message as read, without control characters.
	Line string
	// SinceBoot is the printk timestamp ([  123.456789]): the kernel's
	// time since boot. Timed is false when the line had none.
	SinceBoot time.Duration
	Timed     bool
}

// When is the time since boot for people: "123.457 s after boot".
func (f Finding) When() string {
	if !f.Timed {
		return "time since boot unknown"
	}
	return strconv.FormatFloat(f.SinceBoot.Seconds(), 'f', 3, 64) + " s after boot"
}

func (f Finding) String() string {
	srcs := make([]string, len(f.Sources))
	for i, s := range f.Sources {
		srcs[i] = string(s)
	}
	return fmt.Sprintf("%s: %s %s (%s): %s", f.Node, f.Kind, f.When(), strings.Join(srcs, ", "), f.Line)
}

// findingJSON is Finding on disk; since_boot_s is null when not Timed.
type findingJSON struct {
	Node      string   `json:"node"`
	Kind      Kind     `json:"kind"`
	Sources   []Source `json:"sources"`
	Line      string   `json:"line"`
	SinceBoot *float64 `json:"since_boot_s"`
}

// MarshalJSON writes the time since boot in seconds, null when unknown.
func (f Finding) MarshalJSON() ([]byte, error) {
	j := findingJSON{Node: f.Node, Kind: f.Kind, Sources: f.Sources, Line: f.Line}
	if f.Timed {
		s := f.SinceBoot.Seconds()
		j.SinceBoot = &s
	}
	return json.Marshal(j)
}

// UnmarshalJSON is the inverse of MarshalJSON.
func (f *Finding) UnmarshalJSON(b []byte) error {
	var j findingJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*f = Finding{Node: j.Node, Kind: j.Kind, Sources: j.Sources, Line: j.Line}
	if j.SinceBoot != nil {
		f.SinceBoot, f.Timed = time.Duration(*j.SinceBoot*float64(time.Second)).Round(time.Microsecond), true
	}
	return nil
}

var (
	// printkTime is the kernel's timestamp at the start of a console or
	// dmesg line, with the caller id some kernels add ([    T1]).
	printkTime = regexp.MustCompile(`^\[\s*(\d+)\.(\d{1,9})\](?:\[\s*[TC]\d+\])?\s?`)
	// ansi are terminal escapes (systemd's coloured "[  OK  ]").
	ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[ -/]*[@-~]`)
)

// pattern recognises one kind in a message (the line without timestamp).
type pattern struct {
	kind Kind
	re   *regexp.Regexp
	// ok, when set, must also accept the match (segfaults of our daemons).
	ok func(m []string) bool
}

// patterns are tried in order and the first match wins: a soft lockup is
// printed as "BUG: soft lockup" and must not count as a BUG too. Messages
// that start an event are matched, not the lines that follow them (call
// traces, "Modules linked in", the hung-task hint), so one event is one
// finding (an oops is preceded by the BUG that caused it: two).
var patterns = []pattern{
	{kind: SoftLockup, re: regexp.MustCompile(`\bBUG: soft lockup - CPU#\d+ stuck for \d+s!`)},
	{kind: HardLockup, re: regexp.MustCompile(`\bWatchdog detected hard LOCKUP on cpu \d+`)},
	{kind: RCUStall, re: regexp.MustCompile(`\brcu_\w+ (?:self-)?detected (?:expedited )?stalls?\b`)},
	{kind: HungTask, re: regexp.MustCompile(`\bINFO: task .{1,64}:\d+ blocked for more than \d+ seconds`)},
	{kind: OOMKill, re: regexp.MustCompile(`\b(?:Out of memory|Memory cgroup out of memory): Kill(?:ed)? process \d+`)},
	{kind: Oops, re: regexp.MustCompile(`^(?:Oops|general protection fault|stack segment)\b.*\[#\d+\]`)},
	{kind: Bug, re: regexp.MustCompile(`^(?:[\w./-]+: )?(?:BUG: |kernel BUG at )`)},
	{kind: Panic, re: regexp.MustCompile(`^Kernel panic - not syncing`)},
	{kind: Segfault, re: regexp.MustCompile(`^(?:traps: )?([^\s\[]+)\[\d+\]:? (?:segfault at |general protection fault|trap )(?:.* in (\S+))?`),
		ok: func(m []string) bool { return watched(m[1]) || watched(m[2]) }},
}

// watched reports whether a crashing program (the kernel's comm, at most
// 15 characters, or the object it crashed in) is one whose crash the check
// is about: LXD and its dqlite, and cloud-init.
func watched(s string) bool {
	for _, p := range []string{"lxd", "lxc", "dqlite", "libdqlite", "cloud-init"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// maxLine caps the length of a finding's line in reports.
const maxLine = 300

// Scan returns the findings in text, read from source on node, in the
// order the lines appear. text is a serial console or dmesg's output:
// lines that start with the printk timestamp where the kernel wrote them
// (FromJournal turns journalctl's into that form).
func Scan(node string, source Source, text string) []Finding {
	var out []Finding
	for raw := range strings.Lines(text) {
		line := clean(raw)
		if line == "" {
			continue
		}
		msg, since, timed := splitTime(line)
		for _, p := range patterns {
			if m := p.re.FindStringSubmatch(msg); m == nil || (p.ok != nil && !p.ok(m)) {
				continue
			}
			if r := []rune(line); len(r) > maxLine {
				line = string(r[:maxLine-1]) + "…"
			}
			out = append(out, Finding{Node: node, Kind: p.kind, Sources: []Source{source}, Line: line, SinceBoot: since, Timed: timed})
			break
		}
	}
	return out
}

// clean drops terminal escapes, carriage returns and other control
// characters a serial console carries.
func clean(s string) string {
	s = ansi.ReplaceAllString(s, "")
	s = strings.Map(func(r rune) rune {
		if r == '\t' {
			return ' '
		}
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// splitTime cuts the printk timestamp off line.
func splitTime(line string) (msg string, since time.Duration, timed bool) {
	m := printkTime.FindStringSubmatchIndex(line)
	if m == nil {
		return line, 0, false
	}
	secs, _ := strconv.ParseInt(line[m[2]:m[3]], 10, 64)
	frac := line[m[4]:m[5]]
	ns, _ := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
	return line[m[1]:], time.Duration(secs)*time.Second + time.Duration(ns), true
}

// Merge joins findings of the same node: one event seen on the console and
// in the kernel log (same kind, same time since boot) becomes one finding
// with both sources. Order is kept, by first appearance.
func Merge(fs []Finding) []Finding {
	type key struct {
		node  string
		kind  Kind
		since time.Duration
		line  string
	}
	at := map[key]int{}
	var out []Finding
	for _, f := range fs {
		k := key{f.Node, f.Kind, f.SinceBoot, ""}
		if !f.Timed {
			k.line = f.Line
		}
		if i, ok := at[k]; ok {
			for _, s := range f.Sources {
				if !containsSource(out[i].Sources, s) {
					out[i].Sources = append(out[i].Sources, s)
				}
			}
			continue
		}
		at[k] = len(out)
		f.Sources = append([]Source(nil), f.Sources...)
		out = append(out, f)
	}
	return out
}

func containsSource(ss []Source, s Source) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
