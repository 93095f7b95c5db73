// Command junitsummary prints a Markdown summary of JUnit XML reports, for
// $GITHUB_STEP_SUMMARY in the workflows under ci/workflows.
//
//	go run ./ci/junitsummary artifacts/RUN_ID artifacts/integration-RUN_ID-junit.xml
//
// Each argument is a report file or a directory searched for *.xml files with
// "junit" in their name. Missing paths are skipped. It exits 1 when it found
// no report at all (and prints nothing to stdout), 0 otherwise: failing tests
// are reported, not turned into an exit status.
package main

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// maxFailures caps the failures listed; the full reports are in the artifacts.
const maxFailures = 30

type testsuites struct {
	XMLName xml.Name
	Suites  []testsuite `xml:"testsuite"`
	// Set when the root element is itself a <testsuite>.
	Name  string     `xml:"name,attr"`
	Cases []testcase `xml:"testcase"`
	Time  float64    `xml:"time,attr"`
}

type testsuite struct {
	Name  string     `xml:"name,attr"`
	Time  float64    `xml:"time,attr"`
	Cases []testcase `xml:"testcase"`
}

type testcase struct {
	Name      string   `xml:"name,attr"`
	ClassName string   `xml:"classname,attr"`
	Status    string   `xml:"status,attr"`
	Failure   *problem `xml:"failure"`
	Error     *problem `xml:"error"`
	Skipped   *problem `xml:"skipped"`
}

type problem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

type row struct {
	report, suite                  string
	tests, passed, failed, errored int
	skipped                        int
	time                           float64
	parseErr                       error
}

type failure struct {
	report, name, kind, message string
}

func main() {
	n, err := summarize(os.Stdout, os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "junitsummary:", err)
		os.Exit(1)
	}
	if n == 0 {
		fmt.Fprintln(os.Stderr, "junitsummary: no JUnit report found in", strings.Join(os.Args[1:], " "))
		os.Exit(1)
	}
}

// summarize writes the Markdown summary of the reports found under paths and
// returns how many report files it found. It writes nothing when it finds none.
func summarize(w io.Writer, paths []string) (int, error) {
	files, err := findReports(paths)
	if err != nil {
		return 0, err
	}
	if len(files) == 0 {
		return 0, nil
	}
	var rows []row
	var fails []failure
	for _, f := range files {
		r, fl := readReport(f)
		rows = append(rows, r...)
		fails = append(fails, fl...)
	}
	var b strings.Builder
	var total, failed, skipped int
	for _, r := range rows {
		total += r.tests
		failed += r.failed + r.errored
		skipped += r.skipped
	}
	switch {
	case failed > 0:
		fmt.Fprintf(&b, "**%d of %d specs failed.**\n\n", failed, total)
	case total == 0:
		b.WriteString("**No specs ran.**\n\n")
	default:
		fmt.Fprintf(&b, "**No failures** in %d specs (%d skipped).\n\n", total, skipped)
	}
	b.WriteString("| Report | Suite | Tests | Passed | Failed | Errors | Skipped | Time |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rows {
		if r.parseErr != nil {
			fmt.Fprintf(&b, "| %s | unreadable: %s | | | | | | |\n", cell(r.report), cell(r.parseErr.Error()))
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %d | %.0fs |\n",
			cell(r.report), cell(r.suite), r.tests, r.passed, r.failed, r.errored, r.skipped, r.time)
	}
	if len(fails) > 0 {
		b.WriteString("\n### Failures\n\n")
		for i, f := range fails {
			if i == maxFailures {
				fmt.Fprintf(&b, "- … and %d more; see the reports in the artifacts.\n", len(fails)-maxFailures)
				break
			}
			fmt.Fprintf(&b, "- `%s` (%s, %s): `%s`\n", inline(f.name), f.kind, inline(f.report), inline(f.message))
		}
	}
	_, err = io.WriteString(w, b.String())
	return len(files), err
}

// findReports expands paths into report files, sorted, without duplicates.
func findReports(paths []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			add(filepath.Clean(p))
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			name := strings.ToLower(d.Name())
			if !d.IsDir() && strings.HasSuffix(name, ".xml") && strings.Contains(name, "junit") {
				add(path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(out)
	return out, nil
}

// readReport reads one JUnit file: one row per suite, plus its failures.
func readReport(path string) ([]row, []failure) {
	data, err := os.ReadFile(path)
	if err != nil {
		return []row{{report: path, parseErr: err}}, nil
	}
	var doc testsuites
	if err := xml.Unmarshal(data, &doc); err != nil {
		return []row{{report: path, parseErr: err}}, nil
	}
	suites := doc.Suites
	switch doc.XMLName.Local {
	case "testsuites":
	case "testsuite":
		suites = []testsuite{{Name: doc.Name, Time: doc.Time, Cases: doc.Cases}}
	default:
		return []row{{report: path, parseErr: fmt.Errorf("root element <%s> is not <testsuites> or <testsuite>", doc.XMLName.Local)}}, nil
	}
	var rows []row
	var fails []failure
	for _, s := range suites {
		r := row{report: path, suite: s.Name, time: s.Time, tests: len(s.Cases)}
		for _, c := range s.Cases {
			name := c.Name
			if name == "" {
				name = c.ClassName
			}
			switch {
			case c.Error != nil:
				r.errored++
				fails = append(fails, failure{path, name, "error", firstLine(c.Error)})
			case c.Failure != nil:
				r.failed++
				fails = append(fails, failure{path, name, "failed", firstLine(c.Failure)})
			case c.Skipped != nil || c.Status == "skipped" || c.Status == "pending":
				r.skipped++
			default:
				r.passed++
			}
		}
		rows = append(rows, r)
	}
	return rows, fails
}

// firstLine condenses a failure into one line: the first lines of its message
// and, when Ginkgo recorded it, where it failed ("at tor_test.go:33").
func firstLine(p *problem) string {
	msg := ""
	for _, s := range []string{p.Message, p.Text, p.Type} {
		var parts []string
		for _, l := range strings.Split(s, "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "In [") {
				parts = append(parts, l)
			}
			if len(parts) == 3 {
				break
			}
		}
		if len(parts) > 0 {
			msg = strings.TrimPrefix(strings.Join(parts, " "), "[FAILED] ")
			break
		}
	}
	if r := []rune(msg); len(r) > 240 {
		msg = string(r[:240]) + "…"
	}
	if msg == "" {
		msg = "(no message)"
	}
	if loc := location(p.Text); loc != "" {
		msg += " (at " + loc + ")"
	}
	return msg
}

// location finds Ginkgo's "In [It] at: /path/file_test.go:33 @ time" line and
// returns "file_test.go:33".
func location(text string) string {
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "In [") {
			continue
		}
		_, after, ok := strings.Cut(l, " at: ")
		if !ok {
			continue
		}
		at, _, _ := strings.Cut(after, " @ ")
		return filepath.Base(strings.TrimSpace(at))
	}
	return ""
}

// cell makes s safe inside a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

// inline makes s safe inside a Markdown list item, backquotes included.
func inline(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "`", "'")
}
