package report

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MarkdownHeader is the results table's header row; tools that scrape the
// CI summary can look for it.
const MarkdownHeader = "| size | nodes | result | specs passed/failed/skipped | launch | bootstrap | joins | ready | total | flakes |"

// Markdown renders s for a CI job summary ($GITHUB_STEP_SUMMARY and the
// like): one table row per size, then every failure with its first line,
// then the flaky specs. Free text (spec names, failures, host names) goes
// into code spans, which Markdown renders literally, so a failure message
// with markup or HTML in it cannot change the page it lands on.
func Markdown(s Summary) string {
	var b strings.Builder
	verdict := "❌ failed"
	if s.Passed() {
		verdict = "✅ passed"
	}
	fmt.Fprintf(&b, "## bcmtest matrix %s: %s\n\n", code(s.RunID), verdict)
	fmt.Fprintf(&b, "%s\n\n", metaLine(s, code))

	b.WriteString(MarkdownHeader + "\n")
	b.WriteString("| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range s.rows() {
		cells := append([]string{strconv.Itoa(r.Size), strconv.Itoa(r.Nodes), r.Result(), r.SpecCounts()}, r.Cells()...)
		cells = append(cells, strconv.Itoa(r.Flakes))
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	b.WriteString("\nSpec counts are summed over each size's runs; phase times are medians over the runs whose cluster came up.\n")

	if fs := s.failures(); len(fs) > 0 {
		b.WriteString("\n### Failures\n\n")
		for _, f := range fs {
			what := "run error"
			if f.Spec != "" {
				what = code(f.Spec)
			}
			fmt.Fprintf(&b, "- size %d (%d nodes), attempt %d, %s: %s\n", f.Size, f.Nodes, f.Attempt, what, code(f.Headline()))
		}
	}
	if fl := s.flakeList(); len(fl) > 0 {
		b.WriteString("\n### Flaky specs\n\nPassed and failed at the same size across repeats.\n\n")
		for _, f := range fl {
			fmt.Fprintf(&b, "- %s at size %s\n", code(f.Name), f.SizesText())
		}
	}
	if len(s.Runs) > 1 {
		b.WriteString("\n### Specs across runs\n\n" + s.flakeLine() + "\n\n")
		b.WriteString(SpecTableHeader + "\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
		for _, st := range s.specRows() {
			fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %s |\n", code(st.Name), st.Runs(), st.Passed, st.Failed, st.Flaky, st.Rate)
		}
	}
	if ks := s.kernelItems(); len(ks) > 0 {
		b.WriteString("\n### Kernel findings\n\nFrom each node's serial console and kernel log at teardown.\n\n")
		for _, k := range ks {
			fmt.Fprintf(&b, "- size %d (%d nodes), attempt %d: %s\n", k.Size, k.Nodes, k.Attempt, code(k.Text))
		}
	}
	if hs := s.heartbeatRows(); len(hs) > 0 {
		b.WriteString("\n### LXD heartbeats\n\n" + heartbeatNote + "\n\n")
		b.WriteString("| size | attempt | member | late rounds led | max over interval | failed heartbeats to it |\n| ---: | ---: | --- | ---: | ---: | ---: |\n")
		for _, h := range hs {
			if h.Unread != "" {
				fmt.Fprintf(&b, "| %d | %d | %s | log not read: %s | | |\n", h.Size, h.Attempt, code(h.Member), code(h.Unread))
				continue
			}
			fmt.Fprintf(&b, "| %d | %d | %s | %d | %s | %d |\n", h.Size, h.Attempt, code(h.Member), h.LateRounds, h.MaxLate, h.Failed)
		}
	}
	return b.String()
}

// SpecTableHeader is the header row of the per-spec table.
const SpecTableHeader = "| spec | runs | passed | failed | flaky | flake rate |"

// heartbeatNote says where the heartbeat numbers come from and what they
// can and cannot say.
const heartbeatNote = "From the members' LXD logs at teardown. LXD warns when a heartbeat round of the database leader " +
	"takes longer than the interval (counted for the member that led it) and when a heartbeat to a member fails " +
	"(counted for that member); rounds on time leave no line."

// metaLine is the line under the heading, shared by Markdown and HTML;
// quote wraps each free-text value the way the output format needs.
func metaLine(s Summary, quote func(string) string) string {
	sizes := make([]string, 0, len(s.Sizes))
	for _, n := range s.Sizes {
		sizes = append(sizes, strconv.Itoa(n))
	}
	parts := []string{
		"host " + quote(s.Host),
		"provider " + quote(s.Provider),
		"accel " + quote(s.Accel),
		fmt.Sprintf("sizes %s × %d", strings.Join(sizes, ", "), max(s.Repeat, 1)),
	}
	if !s.Started.IsZero() {
		parts = append(parts, "started "+s.Started.UTC().Format(time.RFC3339))
		if s.Finished.After(s.Started) {
			parts = append(parts, "took "+s.Finished.Sub(s.Started).Round(time.Second).String())
		}
	}
	return strings.Join(parts, " · ")
}

// code wraps s in a Markdown code span. The fence is one backtick longer
// than the longest run inside s, and padded when s touches a backtick, as
// CommonMark requires; newlines become spaces to keep list items on one line.
func code(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "–"
	}
	longest, run := 0, 0
	for _, c := range s {
		if c == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", longest+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return fence + s + fence
}
