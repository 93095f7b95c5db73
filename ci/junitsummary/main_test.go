package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const ginkgoReport = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="3" failures="1">
  <testsuite name="BCM e2e | 1 member" tests="3" time="12.6">
    <testcase name="[It] passes" status="passed"></testcase>
    <testcase name="[It] fails ` + "`x`" + `" status="failed">
      <failure message="harness certificate trusted&#xA;Expected&#xA;  untrusted" type="failed">[FAILED] harness certificate trusted&#xA;In [It] at: /work/main/suites/e2e/membership_test.go:65 @ 11/26/26 11:01:19.655&#xA;</failure>
    </testcase>
    <testcase name="[It] skipped" status="skipped"><skipped message="skipped"/></testcase>
  </testsuite>
</testsuites>`

const plainSuite = `<testsuite name="integration" time="3"><testcase name="boots" classname="vm"/></testsuite>`

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSummarize(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "run1", "junit.xml"), ginkgoReport)
	write(t, filepath.Join(dir, "run1", "report.json"), "{}")
	write(t, filepath.Join(dir, "integration-run1-junit.xml"), plainSuite)
	write(t, filepath.Join(dir, "run1", "broken-junit.xml"), "<html>")

	var out strings.Builder
	n, err := summarize(&out, []string{
		filepath.Join(dir, "run1"),
		filepath.Join(dir, "integration-run1-junit.xml"),
		filepath.Join(dir, "missing"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("found %d reports, want 3", n)
	}
	got := out.String()
	t.Log(got)
	for _, want := range []string{
		"**1 of 4 specs failed.**",
		`| BCM e2e \| 1 member | 3 | 1 | 1 | 0 | 1 | 13s |`,
		"| integration | 1 | 1 | 0 | 0 | 0 | 3s |",
		"broken-junit.xml | unreadable: ",
		"- `[It] fails 'x'` (failed, ",
		"`harness certificate trusted Expected untrusted (at membership_test.go:65)`",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
}

func TestSummarizeNothingFound(t *testing.T) {
	var out strings.Builder
	n, err := summarize(&out, []string{filepath.Join(t.TempDir(), "nope")})
	if err != nil || n != 0 || out.Len() != 0 {
		t.Errorf("got n=%d err=%v output %q, want nothing", n, err, out.String())
	}
}

func TestAllPassed(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "junit.xml"), plainSuite)
	var out strings.Builder
	if _, err := summarize(&out, []string{dir}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "**No failures** in 1 specs (0 skipped).") {
		t.Errorf("summary starts %q", out.String())
	}
}
