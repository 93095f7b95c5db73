package report

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MarkdownHeader is the results table's header row; tools that scrape the
// CI summary can look for it.
const MarkdownHeader = "| image | size | nodes | result | specs passed/failed/skipped | launch | bootstrap | joins | ready | total | flakes |"

// Markdown renders s for a CI job summary ($GITHUB_STEP_SUMMARY and the
// like): one table row per image and size, then every failure with its
// first line, then the flaky specs. Free text (spec names, failures, host
// names) goes into code spans, which Markdown renders literally, so a
// failure message with markup or HTML in it cannot change the page it
// lands on.
func Markdown(s Summary) string {
	var b strings.Builder
	verdict := "❌ failed"
	if s.Passed() {
		verdict = "✅ passed"
	}
	fmt.Fprintf(&b, "## bcmtest matrix %s: %s\n\n", code(s.RunID), verdict)
	fmt.Fprintf(&b, "%s\n\n", metaLine(s, code))

	b.WriteString(MarkdownHeader + "\n")
	b.WriteString("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range s.rows() {
		cells := append([]string{r.ImageText(), strconv.Itoa(r.Size), strconv.Itoa(r.Nodes), r.Result(), r.SpecCounts()}, r.Cells()...)
		cells = append(cells, strconv.Itoa(r.Flakes))
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	b.WriteString("\n" + rowsNote + "\n")

	if fs := s.failures(); len(fs) > 0 {
		b.WriteString("\n### Failures\n\n")
		for _, f := range fs {
			what := "run error"
			if f.Spec != "" {
				what = code(f.Spec)
			}
			fmt.Fprintf(&b, "- %s, %s: %s\n", f.At(), what, code(f.Headline()))
		}
	}
	if fl := s.Flakes(); len(fl) > 0 {
		b.WriteString("\n### Flaky specs\n\n" + flakesNote + "\n\n")
		for _, f := range fl {
			fmt.Fprintf(&b, "- %s %s\n", code(f.Name), f.Where())
		}
	}
	if len(s.Runs) > 1 {
		b.WriteString("\n### Specs across runs\n\n" + s.flakeLine() + "\n\n")
		b.WriteString(SpecTableHeader + "\n| --- | --- | ---: | ---: | ---: | ---: | ---: |\n")
		for _, st := range s.specRows() {
			fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %s |\n", code(st.Name), st.ImageText, st.Runs(), st.Passed, st.Failed, st.Flaky, st.Rate)
		}
	}
	if ks := s.kernelItems(); len(ks) > 0 {
		b.WriteString("\n### Kernel findings\n\nFrom each node's serial console and kernel log at teardown.\n\n")
		for _, k := range ks {
			fmt.Fprintf(&b, "- %s: %s\n", k.At(), code(k.Text))
		}
	}
	if hs := s.heartbeatRows(); len(hs) > 0 {
		b.WriteString("\n### LXD heartbeats\n\n" + heartbeatNote + "\n\n")
		b.WriteString("| image | size | attempt | member | late rounds led | max over interval | failed heartbeats to it |\n| --- | ---: | ---: | --- | ---: | ---: | ---: |\n")
		for _, h := range hs {
			if h.Unread != "" {
				fmt.Fprintf(&b, "| %s | %d | %d | %s | log not read: %s | | |\n", h.ImageText(), h.Size, h.Attempt, code(h.Member), code(h.Unread))
				continue
			}
			fmt.Fprintf(&b, "| %s | %d | %d | %s | %d | %s | %d |\n", h.ImageText(), h.Size, h.Attempt, code(h.Member), h.LateRounds, h.MaxLate, h.Failed)
		}
	}
	return b.String()
}

// SpecTableHeader is the header row of the per-spec table: one row per
// spec and image.
const SpecTableHeader = "| spec | image | runs | passed | failed | flaky | flake rate |"

// rowsNote and flakesNote explain the results table and the flaky-spec
// list, in Markdown and on the page alike.
const (
	rowsNote   = "Spec counts are summed over each image and size's runs; phase times are medians over the runs whose cluster came up."
	flakesNote = "Passed and failed at the same image and size across repeats."
)

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
	}
	if len(s.Images) > 0 {
		images := make([]string, len(s.Images))
		for i, im := range s.Images {
			images[i] = quote(im)
		}
		parts = append(parts, "images "+strings.Join(images, ", "))
	}
	parts = append(parts, fmt.Sprintf("sizes %s × %d", strings.Join(sizes, ", "), max(s.Repeat, 1)))
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
