package cloudinit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// Plain scalars must be typed the way PyYAML (YAML 1.1) types them, because
// that is what cloud-init sees; yaml.v3 alone would follow YAML 1.2.
func TestResolvePlainLikePyYAML(t *testing.T) {
	tests := []struct {
		in   string
		want kind
	}{
		{"yes", kindBool}, {"No", kindBool}, {"on", kindBool}, {"OFF", kindBool}, {"true", kindBool},
		{"y", kindString}, {"n", kindString}, {"yEs", kindString},
		{"0644", kindInt}, {"755", kindInt}, {"0x1f", kindInt}, {"1_000", kindInt}, {"1:30", kindInt}, {"-3", kindInt},
		{"08", kindString}, {"0o644", kindString},
		{"1.5", kindFloat}, {".inf", kindFloat}, {"1.0e+3", kindFloat}, {"1e3", kindString},
		{"", kindNull}, {"~", kindNull}, {"null", kindNull}, {"NULL", kindNull},
		{"2024-01-31", kindDate}, {"2024-01-31 10:00:00", kindDate},
		{"jq", kindString}, {"ALL=(ALL) NOPASSWD:ALL", kindString},
	}
	for _, tt := range tests {
		if got := resolvePlain(tt.in); got != tt.want {
			t.Errorf("resolvePlain(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestKindOfStyles(t *testing.T) {
	var doc yaml.Node
	src := "a: yes\nb: \"yes\"\nc: 'on'\nd: |\n  1\ne: !!str 12\nf: !!binary aGk=\ng: [1]\nh: {x: 1}\ni: &x 0644\nj: *x\n"
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]kind{"a": kindBool, "b": kindString, "c": kindString, "d": kindString, "e": kindString,
		"f": kindString, "g": kindList, "h": kindMap, "i": kindInt, "j": kindInt}
	m := doc.Content[0]
	for i := 0; i < len(m.Content); i += 2 {
		key := m.Content[i].Value
		if got := kindOf(m.Content[i+1]); got != want[key] {
			t.Errorf("kindOf(%s) = %s, want %s", key, got, want[key])
		}
	}
}

// yaml.v3 reports the line of the enclosing block (0-based) for parser
// errors; the error here is 300 lines below it.
func TestLocateFarFromContext(t *testing.T) {
	var b strings.Builder
	b.WriteString("#cloud-config\nwrite_files:\n")
	for i := range 100 {
		fmt.Fprintf(&b, "  - path: /etc/f%d\n    content: |\n      x\n", i)
	}
	b.WriteString("  - path: /etc/bad\n   content: y\n")
	_, err := parseCloudConfig(context.Background(), "vm.yaml", []byte(b.String()))
	var p *Problem
	if !errors.As(err, &p) || p.Line != 304 || p.Column != 4 {
		t.Fatalf("got %v, want vm.yaml:304:4", err)
	}
	if !strings.HasPrefix(p.Rule, "yaml: did not find expected '-' indicator") {
		t.Errorf("rule = %q", p.Rule)
	}
}

func TestKindString(t *testing.T) {
	tests := []struct {
		k    kind
		want string
	}{
		{kindList, "a list"},
		{kindString | kindList, "a string or a list"},
		{kindString | kindNull | kindList, "a string, null or a list"},
		{kindScalar, "a string or number"},
		{kindScalar | kindNull, "a string, number or null"},
	}
	for _, tt := range tests {
		if got := tt.k.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

// On a large file each probe re-parses a large prefix, so the bad line is
// bisected rather than walked character by character.
func TestLocateOnLargeFileBisectsTheLine(t *testing.T) {
	var b strings.Builder
	b.WriteString("#cloud-config\nruncmd:\n")
	for b.Len() < 64<<10 {
		b.WriteString("- a\n")
	}
	b.WriteString("- " + strings.Repeat("b", 390) + ": x: y\n")
	data := []byte(b.String())
	lines := strings.Count(b.String(), "\n")
	_, err := decodeAll(context.Background(), data)
	msg, hint := splitYAMLError(err)
	line, col, probes := locateYAMLError(context.Background(), data, msg, hint)
	if line != lines || col != 396 {
		t.Errorf("located %d:%d, want %d:396", line, col, lines)
	}
	if probes > 30 {
		t.Errorf("%d parses of a %d-byte file; walking the line would make ~400", probes, len(data))
	}
}
