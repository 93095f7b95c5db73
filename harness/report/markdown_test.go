package report

import (
	"strings"
	"testing"
)

func TestMarkdownTable(t *testing.T) {
	md := Markdown(recorded(t))
	lines := strings.Split(md, "\n")
	at := -1
	for i, l := range lines {
		if l == MarkdownHeader {
			at = i
			break
		}
	}
	if at < 0 {
		t.Fatalf("header %q missing from:\n%s", MarkdownHeader, md)
	}
	want := []string{
		"| image | size | nodes | result | specs passed/failed/skipped | launch | bootstrap | joins | ready | total | flakes |",
		"| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
		// Size 0: both runs passed; the peer-port spec is skipped on one node.
		"| bookworm | 0 | 1 | ✅ passed (2/2) | 14/0/2 | 60.0s | 12.5s | – | 1.0s | 74.0s | 0 |",
		// Size 1: the flake; medians of two complete runs.
		"| bookworm | 1 | 2 | ⚠️ mixed (1/2) | 15/1/0 | 72.0s | 13.0s | 40.0s | 10.0s | 138.0s | 1 |",
		// Size 3: one failed spec, one cluster that never came up, whose
		// partial timings must not enter the medians.
		"| bookworm | 3 | 4 | ❌ failed (0/2) | 7/1/0 | 96.5s | 14.2s | 140.0s | 21.3s | 273.4s | 0 |",
		"",
	}
	if len(lines) < at+len(want) {
		t.Fatalf("table cut short:\n%s", md)
	}
	for i, w := range want {
		if got := lines[at+i]; got != w {
			t.Errorf("table line %d:\n got %q\nwant %q", i, got, w)
		}
	}
}

func TestMarkdownFailuresAndFlakes(t *testing.T) {
	md := Markdown(recorded(t))
	for _, w := range []string{
		"## bcmtest matrix `20261126-020000`: ❌ failed\n",
		"host `ci-runner-3` · provider `qemu` · accel `kvm` · images `bookworm` · sizes 0, 1, 3 × 2 · started 2026-11-26T02:00:00Z · took 1h12m34s\n",
		"### Failures\n",
		// First line only, inside a code span so the <script> is shown as text.
		"- image bookworm, size 1 (2 nodes), attempt 2, `" + flakySpec + "`: " +
			"`circuit established on bcm-01: tor answered \"<script>alert(1)</script> 250 OK\" although the node has no route out`\n",
		// Gomega's heading is joined with its detail, its type line dropped.
		"- image bookworm, size 3 (4 nodes), attempt 1, `" + failedSpec + "`: " +
			"`Unexpected error: tor control on bcm-02: 515 Authentication failed: Password did not match HashedControlPassword value from configuration`\n",
		"- image bookworm, size 3 (4 nodes), attempt 2, run error: `cluster failed to come up: member bcm-03 did not reach Online within 5m0s`\n",
		"### Flaky specs\n",
		"- `" + flakySpec + "` on bookworm at size 1\n",
	} {
		if !strings.Contains(md, w) {
			t.Errorf("markdown lacks %q:\n%s", w, md)
		}
	}
	if strings.Contains(md, "not to contain substring") {
		t.Error("markdown has more than the failure's headline")
	}
	// Above the per-spec table, which lists every spec once.
	above, _, _ := strings.Cut(md, "### Specs across runs")
	if n := strings.Count(above, "`"+failedSpec+"`"); n != 1 {
		t.Errorf("consistently failing spec listed %d times, want once (it is no flake)", n)
	}
}

func TestMarkdownAllPassed(t *testing.T) {
	s := recorded(t)
	s.Runs = s.Runs[:2] // size 0 only
	s.Sizes = []int{0}
	md := Markdown(s)
	if !strings.Contains(md, ": ✅ passed\n") || strings.Contains(md, "### Failures") || strings.Contains(md, "### Flaky") {
		t.Errorf("all-green summary rendered wrong:\n%s", md)
	}
}

func TestCodeSpan(t *testing.T) {
	for in, want := range map[string]string{
		"plain":        "`plain`",
		"a `b` c":      "``a `b` c``",
		"`x`":          "`` `x` ``",
		"a``b":         "```a``b```",
		"two\nlines  ": "`two lines`",
		"":             "–",
	} {
		if got := code(in); got != want {
			t.Errorf("code(%q) = %q, want %q", in, got, want)
		}
	}
}
