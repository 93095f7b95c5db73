package framework

import (
	"bufio"
	"strings"
	"time"
)

// SimulatedUpdate is the packages the current-snapshot spec and bench
// pretend the archive updated: installed in the image, small, and nothing
// depends on their exact version.
var SimulatedUpdate = []string{"tor", "curl", "wait-for-it"}

// AptUpgrades reads apt's history.log and returns what the entries started
// at or after since upgraded ("tor:amd64 (0.4.7.16-1~bcmtestaged,
// 0.4.7.16-1)"), in order. Start-Date is the node's clock, which is UTC.
func AptUpgrades(history string, since time.Time) []string {
	var out []string
	in := false
	sc := bufio.NewScanner(strings.NewReader(history))
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "Start-Date: "); ok {
			t, err := time.ParseInLocation("2006-01-02  15:04:05", strings.TrimSpace(v), time.UTC)
			// An unreadable date counts: a check must not pass for want of one.
			in = err != nil || !t.Before(since.Truncate(time.Second))
			continue
		}
		if v, ok := strings.CutPrefix(line, "Upgrade: "); ok && in {
			out = append(out, splitAptList(v)...)
		}
	}
	return out
}

// splitAptList splits "a:amd64 (1, 2), b:amd64 (3, 4)" at the commas
// between packages, not those inside the parentheses.
func splitAptList(v string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range v {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(v[start:i]))
				start = i + 1
			}
		}
	}
	if s := strings.TrimSpace(v[start:]); s != "" {
		out = append(out, s)
	}
	return out
}

// SystemdTime reads a timestamp systemctl shows ("Fri 2026-12-04 18:55:00
// UTC").
func SystemdTime(v string) (time.Time, error) {
	return time.Parse("Mon 2006-01-02 15:04:05 MST", strings.TrimSpace(v))
}
