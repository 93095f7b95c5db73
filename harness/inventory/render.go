package inventory

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// timingFloor is the time under which a module's timing line is left
// out of text and markdown (it is in the JSON), unless flagged.
const timingFloor = 0.5

// ANSI colours for a terminal.
const (
	cRed    = "\x1b[31m"
	cGreen  = "\x1b[32m"
	cYellow = "\x1b[33m"
	cBold   = "\x1b[1m"
	cReset  = "\x1b[0m"
)

// Summary is the report's one-line verdict.
func (r Report) Summary() string {
	switch {
	case r.New.Node == "":
		return fmt.Sprintf("NEW not booted (%s); %d regression(s)", r.New.Status, len(r.Regressions))
	case r.Regression():
		return fmt.Sprintf("REGRESSION: NEW failed (%s) where OLD succeeded; %d regression(s), %d difference(s)", r.New.Status, len(r.Regressions), len(r.Differences))
	case r.Failed():
		return fmt.Sprintf("NEW failed (%s), as OLD did (%s); %d regression(s), %d difference(s)", r.New.Status, r.Old.Status, len(r.Regressions), len(r.Differences))
	case len(r.Regressions) == 0 && len(r.Differences) == 0:
		return "no difference"
	}
	return fmt.Sprintf("NEW succeeded; %d regression(s), %d difference(s)", len(r.Regressions), len(r.Differences))
}

// WriteText writes the report for people: regressions first, then the
// differences by section (+ added, - removed, ~ changed), then timings;
// in colour when color is set (a terminal).
func (r Report) WriteText(w io.Writer, color bool) error {
	paint := func(c, s string) string {
		if !color {
			return s
		}
		return c + s + cReset
	}
	var b strings.Builder
	for _, s := range []struct {
		label string
		side  Side
	}{{"OLD", r.Old}, {"NEW", r.New}} {
		if s.side.Node == "" {
			fmt.Fprintf(&b, "%s %s: %s\n", s.label, s.side.File, s.side.Status)
		} else {
			fmt.Fprintf(&b, "%s %s: node %s, cloud-init %s, %s\n", s.label, s.side.File, s.side.Node, s.side.CloudInitVersion, s.side.Status)
		}
	}
	if len(r.Regressions) > 0 {
		fmt.Fprintf(&b, "\n%s\n", paint(cBold+cRed, fmt.Sprintf("Regressions (%d)", len(r.Regressions))))
		for _, f := range r.Regressions {
			fmt.Fprintf(&b, "  %s %s\n", paint(cRed, "!"), f.What)
			for _, d := range f.Detail {
				fmt.Fprintf(&b, "      %s\n", d)
			}
		}
	}
	if len(r.Differences) > 0 {
		fmt.Fprintf(&b, "\n%s\n", paint(cBold, fmt.Sprintf("Differences (%d)", len(r.Differences))))
		sec := ""
		for _, c := range r.Differences {
			if c.Section != sec {
				sec = c.Section
				fmt.Fprintf(&b, "  %s\n", sec)
			}
			switch c.Op {
			case OpAdded:
				fmt.Fprintf(&b, "    %s\n", paint(cGreen, "+ "+c.Key+valueSuffix(c.New)))
			case OpRemoved:
				fmt.Fprintf(&b, "    %s\n", paint(cRed, "- "+c.Key+valueSuffix(c.Old)))
			default:
				fmt.Fprintf(&b, "    %s\n", paint(cYellow, fmt.Sprintf("~ %s: %s -> %s", c.Key, c.Old, c.New)))
			}
			for _, l := range splitLines(c.Diff) {
				switch {
				case strings.HasPrefix(l, "+") && !strings.HasPrefix(l, "+++"):
					l = paint(cGreen, l)
				case strings.HasPrefix(l, "-") && !strings.HasPrefix(l, "---"):
					l = paint(cRed, l)
				}
				fmt.Fprintf(&b, "        %s\n", l)
			}
		}
	}
	shown, left := r.shownTimings()
	if len(shown) > 0 {
		fmt.Fprintf(&b, "\n%s\n", paint(cBold, fmt.Sprintf("Timings (seconds, OLD -> NEW; * = at least %gx and %g s slower)", SlowFactor, SlowSeconds)))
		for _, t := range shown {
			mark := " "
			if t.Flagged {
				mark = paint(cRed, "*")
			}
			fmt.Fprintf(&b, "  %s %-55s %7s -> %7s\n", mark, t.Module, secs(t.Old), secs(t.New))
		}
		if left > 0 {
			fmt.Fprintf(&b, "    (%d module(s) under %gs on both left out; all are in -o json)\n", left, timingFloor)
		}
	}
	fmt.Fprintf(&b, "\n%s\n", r.Summary())
	_, err := io.WriteString(w, b.String())
	return err
}

// shownTimings are the timings worth a line, and how many were left out.
func (r Report) shownTimings() ([]Timing, int) {
	var out []Timing
	for _, t := range r.Timings {
		if t.Flagged || t.Old >= timingFloor || t.New >= timingFloor {
			out = append(out, t)
		}
	}
	return out, len(r.Timings) - len(out)
}

func secs(f float64) string {
	if f < 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", f)
}

func valueSuffix(v string) string {
	if v == "" || v == "present" {
		return ""
	}
	return " (" + v + ")"
}

// WriteMarkdown writes the report for a pull-request comment or a CI
// job summary ($GITHUB_STEP_SUMMARY).
func (r Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "### cloud-init diff: `%s` → `%s`\n\n", r.Old.File, r.New.File)
	fmt.Fprintf(&b, "**%s**\n\n", mdEscape(r.Summary()))
	b.WriteString("| | OLD | NEW |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| file | `%s` | `%s` |\n", mdEscape(r.Old.File), mdEscape(r.New.File))
	fmt.Fprintf(&b, "| cloud-init | %s | %s |\n", mdEscape(r.Old.CloudInitVersion), mdEscape(r.New.CloudInitVersion))
	fmt.Fprintf(&b, "| status | %s | %s |\n\n", mdEscape(r.Old.Status), mdEscape(r.New.Status))
	if len(r.Regressions) > 0 {
		fmt.Fprintf(&b, "#### Regressions (%d)\n\n", len(r.Regressions))
		for _, f := range r.Regressions {
			fmt.Fprintf(&b, "- :x: %s\n", mdEscape(f.What))
			for _, d := range f.Detail {
				fmt.Fprintf(&b, "  - `%s`\n", strings.ReplaceAll(d, "`", "'"))
			}
		}
		b.WriteString("\n")
	}
	if len(r.Differences) > 0 {
		fmt.Fprintf(&b, "#### Differences (%d)\n\n| section | | item | OLD | NEW |\n|---|---|---|---|---|\n", len(r.Differences))
		var diffs []Change
		for _, c := range r.Differences {
			op := map[string]string{OpAdded: "+", OpRemoved: "−", OpChanged: "~"}[c.Op]
			fmt.Fprintf(&b, "| %s | %s | `%s` | %s | %s |\n", c.Section, op, mdEscape(c.Key), mdEscape(c.Old), mdEscape(c.New))
			if c.Diff != "" {
				diffs = append(diffs, c)
			}
		}
		b.WriteString("\n")
		for _, c := range diffs {
			fmt.Fprintf(&b, "<details><summary>diff of %s</summary>\n\n```diff\n%s```\n</details>\n\n", mdEscape(c.Key), c.Diff)
		}
	}
	shown, left := r.shownTimings()
	if len(shown) > 0 {
		flagged := 0
		for _, t := range shown {
			if t.Flagged {
				flagged++
			}
		}
		fmt.Fprintf(&b, "<details><summary>Timings (%d module(s) flagged as at least %gx and %g s slower)</summary>\n\n| module | OLD s | NEW s | |\n|---|---:|---:|---|\n", flagged, SlowFactor, SlowSeconds)
		for _, t := range shown {
			mark := ""
			if t.Flagged {
				mark = ":warning: slower"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", t.Module, secs(t.Old), secs(t.New), mark)
		}
		if left > 0 {
			fmt.Fprintf(&b, "\n%d module(s) under %gs on both left out.\n", left, timingFloor)
		}
		b.WriteString("\n</details>\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "\n", " ")
	return s
}

// WriteJSON writes the report as indented JSON (schema ReportVersion).
func (r Report) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
