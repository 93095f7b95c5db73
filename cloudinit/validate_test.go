package cloudinit

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// smoke mirrors the project's own fixture: every feature it uses must pass.
const smoke = `#cloud-config
# A marker written by cloud-init and a package that is not in the image.
package_update: true
packages:
  - jq
  - [curl, "7.88.1-10"]
write_files:
  - path: /var/lib/bcmtest/marker
    content: "written by cloud-init\n"
    permissions: '0644'
    owner: root:root
    encoding: text/plain
    append: false
    defer: true
runcmd:
  - [sh, -c, "echo runcmd-ran > /var/lib/bcmtest/runcmd-marker"]
  - echo hi
  - [sleep, 5]
bootcmd:
  - [cloud-init-per, once, mymkfs, mkfs, /dev/vdb]
users:
  - default
  - name: bob
    groups: [sudo, lxd]
    sudo: ALL=(ALL) NOPASSWD:ALL
    lock_passwd: yes
    ssh_authorized_keys:
      - ssh-ed25519 AAAA bob@example
ssh_authorized_keys: [ssh-ed25519 AAAA me@example]
hostname: bcm-01
timezone: UTC
locale: en_US.UTF-8
final_message: "done after $UPTIME seconds"
power_state: {mode: reboot, delay: now, condition: true}
ntp: {enabled: true, servers: [ntp.example]}
apt:
  sources:
    tor.list:
      source: deb https://deb.torproject.org/torproject.org bookworm main
mounts:
  - [/dev/vdb, /data, ext4, "defaults,nofail", 0, 2]
disk_setup:
  /dev/vdb: {table_type: gpt, layout: true, overwrite: false}
fs_setup:
  - {label: data, filesystem: ext4, device: /dev/vdb, partition: auto}
snap:
  commands:
    - [snap, install, lxd]
`

func TestValidateAccepts(t *testing.T) {
	multipart := "Content-Type: multipart/mixed; boundary=\"XXX\"\n" +
		"MIME-Version: 1.0\n\n" +
		"--XXX\nContent-Type: text/cloud-config; charset=\"us-ascii\"\n\n" +
		"#cloud-config\npackages: [jq]\n" +
		"--XXX\nContent-Type: text/x-shellscript\n\n" +
		"#!/bin/sh\necho hi\n" +
		"--XXX--\n"
	tests := []struct{ name, data string }{
		{"header only", "#cloud-config\n"},
		{"header without newline", "#cloud-config"},
		{"header with trailing spaces", "#cloud-config   \npackages: [jq]\n"},
		{"header with trailing tab", "#cloud-config\t\npackages: [jq]\n"},
		{"CRLF line endings", "#cloud-config\r\npackages:\r\n  - jq\r\n"},
		{"comments only", "#cloud-config\n# nothing yet\n"},
		{"full example", smoke},
		{"YAML 1.1 booleans", "#cloud-config\npackage_update: yes\npackage_upgrade: off\n"},
		{"anchors and aliases", "#cloud-config\nx-pkgs: &p [jq]\npackages: *p\n"},
		{"binary content", "#cloud-config\nwrite_files:\n  - path: /x\n    content: !!binary aGVsbG8=\n"},
		{"shell script", "#!/bin/sh\necho hello\n"},
		{"script with space after #!", "#! /usr/bin/env python3\nprint('hi')\n"},
		{"boothook", "#cloud-boothook\n#!/bin/sh\necho early\n"},
		{"multipart", multipart},
		{"multipart, MIME-Version first", "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/x-shellscript\n\n#!/bin/sh\n--b--\n"},
		{"multipart, base64 part", "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/cloud-config\nContent-Transfer-Encoding: base64\n\nI2Nsb3VkLWNvbmZpZwpwYWNrYWdlczogW2pxXQo=\n--b--\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Validate("vm.yaml", []byte(tt.data)); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name      string
		data      string
		line, col int
		path      string
		rule      string // substring of Rule
	}{
		{name: "no header", data: "packages: [jq]\n", line: 1, col: 1, rule: "must start with #cloud-config (or #! for a script)"},
		{name: "space in header", data: "# cloud-config\npackages: [jq]\n", line: 1, col: 1, rule: `write exactly "#cloud-config"`},
		{name: "header not on first line", data: "\n#cloud-config\npackages: [jq]\n", line: 1, col: 1, rule: "#cloud-config is on line 2"},
		{name: "header with trailing text", data: "#cloud-config: yes\n", line: 1, col: 1, rule: `first line must be exactly "#cloud-config"`},
		{name: "cloud-config archive", data: "#cloud-config-archive\n- type: text/cloud-config\n", line: 1, col: 1, rule: `must start with #cloud-config (or #! for a script); "#cloud-config-archive" user data is not supported`},
		{name: "include file", data: "#include\nhttp://example/x\n", line: 1, col: 1, rule: "must start with #cloud-config"},
		{name: "empty", data: " \n\n", rule: "is empty"},
		{name: "NUL byte", data: "#cloud-config\nab\x00c\n", line: 2, col: 3, rule: "binary files are not cloud-init user data"},
		{name: "invalid UTF-8", data: "#cloud-config\nx: \xff\xfe\n", line: 2, col: 4, rule: "is not valid UTF-8"},
		{name: "gzip", data: "\x1f\x8b\x08\x00\x00", rule: "gzip-compressed"},
		{name: "byte order mark", data: "\xef\xbb\xbf#cloud-config\n", line: 1, col: 1, rule: "byte order mark"},

		// YAML syntax: the column is computed, yaml.v3 does not give one.
		{name: "YAML: mapping value in plain scalar", data: "#cloud-config\npackages:\n  - jq\nfinal_message: Done: now\n", line: 4, col: 20, rule: "yaml: mapping values are not allowed in this context"},
		{name: "YAML: bad indentation", data: "#cloud-config\nwrite_files:\n  - path: /etc/x\n    content: |\n      line\n     bad\n", line: 6, col: 6, rule: "yaml: did not find expected key"},
		{name: "YAML: tab indentation", data: "#cloud-config\nruncmd:\n\t- ls\n", line: 3, col: 1, rule: "tabs"},
		{name: "YAML: missing colon", data: "#cloud-config\npackage_update: true\npackages\n", line: 3, col: 1, rule: "yaml: could not find expected ':'"},
		{name: "YAML: unclosed quote", data: "#cloud-config\nfinal_message: \"done\nhostname: x\n", line: 2, col: 16, rule: "yaml: found unexpected end of stream"},
		{name: "YAML: unclosed bracket", data: "#cloud-config\nruncmd:\n  - [ls, -l\nhostname: x\n", line: 3, col: 5, rule: "yaml: did not find expected ',' or ']'"},
		{name: "YAML: unknown alias", data: "#cloud-config\npackages: *pkgs\n", line: 2, col: 11, rule: "unknown anchor 'pkgs'"},
		{name: "YAML: non-ASCII column", data: "#cloud-config\nfinal_message: é: x\n", line: 2, col: 17, rule: "mapping values are not allowed"},
		{name: "YAML: two documents", data: "#cloud-config\npackages: [jq]\n---\nhostname: x\n", line: 3, col: 1, rule: "expected a single document"},
		{name: "YAML: unsafe tag", data: "#cloud-config\nhostname: !!python/object:os.system x\n", line: 2, col: 11, rule: "tag !!python/object:os.system is not allowed"},
		{name: "YAML: local tag", data: "#cloud-config\nhostname: !secret x\n", line: 2, col: 11, rule: "tag !secret is not allowed"},

		// Shapes and types.
		{name: "top level is a list", data: "#cloud-config\n- packages: [jq]\n", line: 2, col: 1, rule: "top level must be a mapping"},
		{name: "top level is a string", data: "#cloud-config\njust some text\n", line: 2, col: 1, rule: "top level must be a mapping of cloud-config keys (key: value), got a string"},
		{name: "packages is a string", data: "#cloud-config\npackage_update: true\npackages: jq\n", line: 3, col: 11, path: "packages", rule: "must be a list, got a string"},
		{name: "packages is empty", data: "#cloud-config\npackages:\n", line: 2, col: 10, path: "packages", rule: "must be a list, got null"},
		{name: "package entry is a mapping", data: "#cloud-config\npackages:\n  - jq\n  - name: curl\n", line: 4, col: 5, path: "packages.1", rule: "must be a string or a list, got a mapping"},
		{name: "write_files entry without path", data: "#cloud-config\nwrite_files:\n  - content: hi\n    owner: root\n", line: 3, col: 5, path: "write_files.0", rule: `missing required key "path"`},
		{name: "write_files is a mapping", data: "#cloud-config\nwrite_files:\n  path: /x\n", line: 3, col: 3, path: "write_files", rule: "must be a list, got a mapping"},
		{name: "write_files unquoted octal", data: "#cloud-config\nwrite_files:\n  - path: /x\n    permissions: 0644\n", line: 4, col: 18, path: "write_files.0.permissions", rule: "must be a string, got an integer (quote it, e.g. '0644'"},
		{name: "write_files bad encoding", data: "#cloud-config\nwrite_files:\n  - path: /x\n    encoding: base65\n", line: 4, col: 15, path: "write_files.0.encoding", rule: `must be one of gz, gzip`},
		{name: "write_files append as string", data: "#cloud-config\nwrite_files:\n  - path: /x\n    append: \"true\"\n", line: 4, col: 13, path: "write_files.0.append", rule: "must be a boolean, got a string"},
		{name: "package_update quoted yes", data: "#cloud-config\npackage_update: \"yes\"\n", line: 2, col: 17, path: "package_update", rule: `must be a boolean, got a string (remove the quotes`},
		{name: "package_upgrade a number", data: "#cloud-config\npackage_upgrade: 1\n", line: 2, col: 18, path: "package_upgrade", rule: "must be a boolean, got an integer"},
		{name: "runcmd is a mapping", data: "#cloud-config\nruncmd:\n  first: echo hi\n", line: 3, col: 3, path: "runcmd", rule: "must be a list, got a mapping"},
		{name: "runcmd entry is a mapping", data: "#cloud-config\nruncmd:\n  - echo: hi\n", line: 3, col: 5, path: "runcmd.0", rule: "must be a string, null or a list, got a mapping"},
		{name: "runcmd argv holds a list", data: "#cloud-config\nruncmd:\n  - [ls, [a]]\n", line: 3, col: 10, path: "runcmd.0.1", rule: "must be a string or number, got a list"},
		{name: "bootcmd is a string", data: "#cloud-config\nbootcmd: echo hi\n", line: 2, col: 10, path: "bootcmd", rule: "must be a list, got a string"},
		{name: "hostname a number", data: "#cloud-config\nhostname: 1234\n", line: 2, col: 11, path: "hostname", rule: "must be a string, got an integer (quote it"},
		{name: "ssh keys a string", data: "#cloud-config\nssh_authorized_keys: ssh-ed25519 AAAA\n", line: 2, col: 22, path: "ssh_authorized_keys", rule: "must be a list, got a string"},
		{name: "user keys a string", data: "#cloud-config\nusers:\n  - name: bob\n    ssh_authorized_keys: ssh-ed25519 AAAA\n", line: 4, col: 26, path: "users.0.ssh_authorized_keys", rule: "must be a list, got a string"},
		{name: "apt a list", data: "#cloud-config\napt: [x]\n", line: 2, col: 6, path: "apt", rule: "must be a mapping, got a list"},
		{name: "power_state without mode", data: "#cloud-config\npower_state:\n  delay: now\n", line: 3, col: 3, path: "power_state", rule: `missing required key "mode"`},
		{name: "power_state bad mode", data: "#cloud-config\npower_state: {mode: shutdown}\n", line: 2, col: 21, path: "power_state.mode", rule: "must be one of poweroff, reboot, halt"},
		{name: "mounts of strings", data: "#cloud-config\nmounts:\n  - /dev/vdb /data\n", line: 3, col: 5, path: "mounts.0", rule: "must be a list, got a string"},
		{name: "timezone a list", data: "#cloud-config\ntimezone: [UTC]\n", line: 2, col: 11, path: "timezone", rule: "must be a string, got a list"},
		{name: "alias of wrong type", data: "#cloud-config\nx: &s jq\npackages: *s\n", line: 3, col: 11, path: "packages", rule: "must be a list, got a string"},

		// Scripts and MIME.
		{name: "script without interpreter", data: "#!\necho hi\n", line: 1, col: 3, rule: "no interpreter"},
		{name: "script with CRLF", data: "#!/bin/sh\r\necho hi\r\n", line: 1, col: 10, rule: "CRLF"},
		{name: "single-part MIME", data: "Content-Type: text/x-shellscript\n\n#!/bin/sh\n", rule: "not multipart; it must start with #cloud-config"},
		{name: "multipart without boundary", data: "Content-Type: multipart/mixed\n\n--b\n\n--b--\n", rule: "has no boundary"},
		{name: "multipart with wrong boundary", data: "Content-Type: multipart/mixed; boundary=a\n\n--b\n\nx\n--b--\n", rule: "has no parts"},
		{name: "multipart script part without #!", data: "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/x-shellscript\n\necho hi\n--b--\n", line: 1, col: 1, rule: "must start with #!"},
		{name: "multipart bad cloud-config part", data: "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/cloud-config\n\n#cloud-config\npackages: jq\n--b--\n", line: 2, col: 11, path: "packages", rule: "must be a list, got a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate("vm.yaml", []byte(tt.data))
			var p *Problem
			if !errors.As(err, &p) {
				t.Fatalf("Validate = %v, want a *Problem", err)
			}
			if !strings.HasPrefix(p.File, "vm.yaml") || p.Line != tt.line || p.Column != tt.col || p.Path != tt.path || !strings.Contains(p.Rule, tt.rule) {
				t.Errorf("got  %s (line %d col %d path %q)\nwant line %d col %d path %q rule containing %q",
					p, p.Line, p.Column, p.Path, tt.line, tt.col, tt.path, tt.rule)
			}
		})
	}
}

func TestValidateReportsEveryTypeError(t *testing.T) {
	data := "#cloud-config\npackages: jq\npackage_update: \"yes\"\nruncmd: {a: b}\n"
	err := Validate("vm.yaml", []byte(data))
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 3 {
		t.Fatalf("Validate = %v, want 3 problems", err)
	}
	want := "vm.yaml:2:11: packages: must be a list, got a string\n" +
		"vm.yaml:3:17: package_update: must be a boolean, got a string (remove the quotes: a quoted \"yes\" is a string)\n" +
		"vm.yaml:4:9: runcmd: must be a list, got a mapping"
	if err.Error() != want {
		t.Errorf("message:\n%s\nwant:\n%s", err, want)
	}
	var first *Problem
	if !errors.As(err, &first) || first.Path != "packages" {
		t.Errorf("errors.As(*Problem) = %v, want the packages problem", first)
	}
}

func TestValidateSizeLimit(t *testing.T) {
	data := "#cloud-config\nfinal_message: \"" + strings.Repeat("x", MaxSize) + "\"\n"
	err := Validate("big.yaml", []byte(data))
	if err == nil || !strings.Contains(err.Error(), "larger than the 1048576-byte (1 MiB) limit") {
		t.Fatalf("Validate = %v, want the size limit", err)
	}
}

func TestProblemError(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "vm.yaml", Line: 4, Column: 11, Path: "packages", Rule: "must be a list, got a string"}, "vm.yaml:4:11: packages: must be a list, got a string"},
		{Problem{File: "vm.yaml", Line: 3, Column: 5, Rule: "yaml: x"}, "vm.yaml:3:5: yaml: x"},
		{Problem{File: "vm.yaml", Line: 3, Rule: "r"}, "vm.yaml:3: r"},
		{Problem{File: "vm.yaml", Rule: "is empty"}, "vm.yaml: is empty"},
		{Problem{Path: "runcmd.0", Rule: "r"}, "runcmd.0: r"},
		{Problem{Line: 2, Column: 1, Rule: "r"}, "line 2:1: r"},
	}
	for _, tt := range tests {
		if got := tt.p.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

// A file with thousands of problems lists the first hundred and counts the
// rest, in Validate's error and in Lint's warnings alike.
func TestProblemListIsCapped(t *testing.T) {
	var b strings.Builder
	b.WriteString("#cloud-config\nruncmd:\n")
	for range 250 {
		b.WriteString("  - {a: b}\n")
	}
	err := Validate("vm.yaml", []byte(b.String()))
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 250 {
		t.Fatalf("Validate = %d problems, want all 250 kept for errors.As", len(ps))
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 101 || lines[99] != "vm.yaml:102:5: runcmd.99: must be a string, null or a list, got a mapping" || lines[100] != "and 150 more" {
		t.Errorf("Error() has %d lines, ending %q; want 100 problems and \"and 150 more\"", len(lines), lines[len(lines)-2:])
	}

	b.Reset()
	b.WriteString("#cloud-config\n")
	for i := range 130 {
		fmt.Fprintf(&b, "unknown%d: x\n", i)
	}
	warnings, err := Lint("vm.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 101 || warnings[100] != "and 30 more" || !strings.HasPrefix(warnings[99], "vm.yaml:101:1: unknown99: ") {
		t.Errorf("Lint = %d warnings ending %q; want 100 and \"and 30 more\"", len(warnings), warnings[len(warnings)-2:])
	}

	exactly := Problems(ps[:100]).Error()
	if n := strings.Count(exactly, "\n") + 1; n != 100 || strings.Contains(exactly, "more") {
		t.Errorf("exactly 100 problems: %d lines, want all of them and no summary", n)
	}
}
