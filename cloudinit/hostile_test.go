package cloudinit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// Hostile inputs: small files that cost a naive checker far more than their
// size. The generators are shared by the tests, the benchmark and the fuzz
// seeds.

// aliasFanout returns a cloud-config of about size bytes: an anchored list
// of n one-item lists, "x: &a [[x], [x], ...]", named m times by
// "runcmd: [*a, *a, ...]" with n and m each about size/7. Every [x] is a
// type error inside a command, so a walk that follows each alias afresh
// reports n*m problems.
func aliasFanout(size int) []byte {
	n := max(1, size/7)
	var b strings.Builder
	b.Grow(size + 64)
	b.WriteString("#cloud-config\nx: &a [")
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("[x]")
	}
	b.WriteString("]\nruncmd: [")
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("*a")
	}
	b.WriteString("]\n")
	return []byte(b.String())
}

// billionLaughs is the classic YAML bomb: nine levels of nine aliases to the
// level below, 9^9 strings once expanded, used where the checker and the
// provider lint look (runcmd, mounts, packages).
func billionLaughs() []byte {
	var b strings.Builder
	b.WriteString("#cloud-config\nl0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i <= 8; i++ {
		fmt.Fprintf(&b, "l%d: &l%d [", i, i)
		for j := range 9 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*l%d", i-1)
		}
		b.WriteString("]\n")
	}
	b.WriteString("runcmd: *l8\nbootcmd: *l8\nmounts: *l8\npackages: *l8\nsnap: {commands: *l8}\n")
	return []byte(b.String())
}

// flatList returns a valid cloud-config of exactly size bytes: one runcmd
// list of short commands, padded with a comment.
func flatList(size int) []byte {
	const head, item = "#cloud-config\nruncmd:\n", "  - ls\n"
	var b strings.Builder
	b.Grow(size)
	b.WriteString(head)
	for b.Len()+len(item) <= size-2 {
		b.WriteString(item)
	}
	if pad := size - b.Len(); pad > 0 {
		b.WriteString("#" + strings.Repeat("x", pad-2) + "\n")
	}
	return []byte(b.String())[:size]
}

// syntaxErrorAtEnd is a 1 MiB file of small nodes whose last, long line has
// a syntax error near its end: locating it re-parses large prefixes.
func syntaxErrorAtEnd() []byte {
	var b strings.Builder
	b.WriteString("#cloud-config\nruncmd:\n")
	for b.Len() < MaxSize-500 {
		b.WriteString("- a\n")
	}
	b.WriteString("- " + strings.Repeat("b", 390) + ": x: y\n")
	return []byte(b.String())
}

// walk parses data and runs the checker over it, for tests that look at the
// checker's counters.
func walk(t testing.TB, ctx context.Context, data []byte) *checker {
	t.Helper()
	root, err := parseCloudConfig(context.Background(), "vm.yaml", data)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	c := &checker{file: "vm.yaml", poll: poll{ctx: ctx}}
	c.top(root)
	return c
}

// Each YAML node is checked once however often aliases name it: the visits
// grow with n+m, not n*m, and a repeated alias reports nothing new.
func TestAliasFanoutIsLinear(t *testing.T) {
	for _, size := range []int{8 << 10, 64 << 10} {
		data := aliasFanout(size)
		n := size / 7
		c := walk(t, context.Background(), data)
		// runcmd itself, its n aliases, and the n items of the anchored list once.
		if want := 1 + 2*n; c.visits != want {
			t.Errorf("%d bytes: %d visits, want %d (n=m=%d; a walk per alias would make %d)", len(data), c.visits, want, n, n*n)
		}
		if len(c.errs) != n {
			t.Errorf("%d bytes: %d problems, want %d: one per [x], none again per alias", len(data), len(c.errs), n)
		}
		if p := c.errs[0]; p.Path != "runcmd.0.0" || p.Line != 2 || p.Column != 8 {
			t.Errorf("first problem %v, want at vm.yaml:2:8 path runcmd.0.0", p)
		}
	}
}

// An alias used where its kind is wrong is reported at each use: that check
// is constant work per alias.
func TestAliasKindErrorAtEachUse(t *testing.T) {
	err := Validate("vm.yaml", []byte("#cloud-config\nx: &s jq\npackages: *s\nruncmd: [*s]\nbootcmd: *s\n"))
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 2 || ps[0].Path != "packages" || ps[1].Path != "bootcmd" {
		t.Fatalf("Validate = %v; want packages and bootcmd, each at its alias", err)
	}
}

// yaml.v3 v3.0.1 guards decoding into Go values against alias bombs
// ("excessive aliasing") and limits nesting to 10000 levels. This package
// only decodes into yaml.Node, which keeps aliases as pointers and never
// expands them, so a bomb costs what its text costs; the checker must not
// expand it either.
func TestBillionLaughs(t *testing.T) {
	data := billionLaughs()
	var v any
	if err := yaml.Unmarshal(data, &v); err == nil || !strings.Contains(err.Error(), "excessive aliasing") {
		t.Errorf("yaml.v3 into a Go value = %v, want its excessive aliasing guard", err)
	}
	docs, err := decodeAll(context.Background(), data)
	if err != nil || len(docs) != 1 {
		t.Fatalf("decodeAll = %d docs, %v", len(docs), err)
	}
	if n := countNodes(docs[0]); n > 200 {
		t.Errorf("the node tree has %d nodes; aliases must stay pointers", n)
	}
	c := walk(t, context.Background(), data)
	if c.visits > 200 {
		t.Errorf("checker made %d visits for a %d-byte file; aliases must not be expanded", c.visits, len(data))
	}
	if _, err := Lint("vm.yaml", data); err == nil {
		t.Errorf("Lint accepted lists of lists as runcmd and packages")
	}
}

// countNodes counts a tree's nodes without following aliases.
func countNodes(n *yaml.Node) int {
	total := 1
	for _, c := range n.Content {
		total += countNodes(c)
	}
	return total
}

func TestDeepNestingIsAProblem(t *testing.T) {
	data := []byte("#cloud-config\nruncmd: " + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + "\n")
	err := Validate("vm.yaml", data)
	var p *Problem
	if !errors.As(err, &p) || !strings.Contains(p.Rule, "exceeded max depth of 10000") || p.Line != 2 {
		t.Fatalf("Validate = %v, want yaml.v3's depth limit as a problem on line 2", err)
	}
	// Just under the limit the walks must cope with the depth.
	data = []byte("#cloud-config\nruncmd: " + strings.Repeat("[", 9990) + strings.Repeat("]", 9990) + "\n")
	if err := Validate("vm.yaml", data); err == nil || !strings.Contains(err.Error(), "runcmd.0.0: must be a string or number, got a list") {
		t.Fatalf("Validate = %v", err)
	}
}

// An anchor may contain an alias to itself; the walks must terminate.
func TestSelfReferentialAlias(t *testing.T) {
	for _, src := range []string{
		"#cloud-config\nruncmd: &a [*a]\n",
		"#cloud-config\nusers: &u [*u, {name: bob, groups: *u}]\n",
		"#cloud-config\nwrite_files: &w [{path: /x, source: {uri: u, headers: *w}}, *w]\n",
	} {
		_, err := Lint("vm.yaml", []byte(src))
		var ps Problems
		var p *Problem
		if err == nil || !(errors.As(err, &ps) || errors.As(err, &p)) {
			t.Errorf("Lint(%q) = %v, want type errors", src, err)
		}
	}
	warnings, err := Lint("vm.yaml", []byte("#cloud-config\ndisk_setup: &d {x: *d}\n"))
	if err != nil || len(warnings) != 1 || warnings[0] != "vm.yaml:2:17: disk_setup.x.x: unknown key; cloud-init will ignore it" {
		t.Errorf("Lint = %q, %v; want one unknown key", warnings, err)
	}
}

// Long keys and values are shortened in messages: one long value named by
// many aliases, or one long key above many problems, must not multiply.
func TestLongValuesAreShortened(t *testing.T) {
	long := strings.Repeat("k", 100000)
	var b strings.Builder
	// A plain key is at most 1024 characters; an explicit "? key" is not.
	fmt.Fprintf(&b, "#cloud-config\nx: &e %s\ndisk_setup:\n  ? %s\n  :\n", long, long)
	for i := range 1000 {
		fmt.Fprintf(&b, "    bad%d: 1\n", i)
	}
	b.WriteString("write_files:\n")
	for range 1000 {
		b.WriteString("  - {path: /x, encoding: *e}\n")
	}
	warnings, err := check(context.Background(), "vm.yaml", []byte(b.String()))
	if err == nil || len(warnings) != 1001 {
		t.Fatalf("check = %d warnings, error %t; want one for x, one per unknown disk_setup key, and errors", len(warnings), err != nil)
	}
	var ps Problems
	errors.As(err, &ps)
	if len(ps) != 1000 {
		t.Errorf("%d problems, want one per write_files entry", len(ps))
	}
	for _, p := range append(ps, warnings...) {
		if len(p.Error()) > 300 {
			t.Fatalf("a %d-byte message: %.300s...", len(p.Error()), p)
		}
	}
	if w := warnings[1].Path; w != "disk_setup."+strings.Repeat("k", maxShown)+"....bad0" {
		t.Errorf("warning path %.100q, want the long key shortened", w)
	}
	if !strings.Contains(err.Error(), `write_files.0.encoding: must be one of gz, gzip, gz+base64, gzip+base64, gz+b64, gzip+b64, b64, base64, text/plain, got "`+strings.Repeat("k", maxShown)+`"...`) {
		t.Errorf("error does not quote the shortened value:\n%.300s", err)
	}
}
