package cloudinit

import (
	"errors"
	"strings"
	"testing"
)

// problems returns Validate's problems, one or many, as a slice.
func problems(t *testing.T, data string) []*Problem {
	t.Helper()
	err := Validate("vm.yaml", []byte(data))
	if err == nil {
		return nil
	}
	var ps Problems
	if errors.As(err, &ps) {
		return ps
	}
	var p *Problem
	if !errors.As(err, &p) {
		t.Fatalf("Validate = %v, want Problems", err)
	}
	return []*Problem{p}
}

func TestVendorDataDisabled(t *testing.T) {
	for _, v := range []string{"false", "no", "off", `"false"`, `"no"`, `"maybe"`, `""`} {
		ps := problems(t, "#cloud-config\nvendor_data:\n  enabled: "+v+"\n")
		if len(ps) != 1 {
			t.Fatalf("enabled: %s: %d problems %v, want 1", v, len(ps), ps)
		}
		p := ps[0]
		if p.Path != "vendor_data.enabled" || p.Line != 3 || p.Column != 12 ||
			!strings.Contains(p.Rule, "the harness delivers its own SSH access (user bcmtest and its key) through vendor-data") {
			t.Errorf("enabled: %s: got %v", v, p)
		}
	}
	ps := problems(t, "#cloud-config\nvendor_data: {enabled: false}\n")
	if len(ps) != 1 || ps[0].Error() != "vm.yaml:2:24: vendor_data.enabled: turns vendor-data off, and the harness delivers its own SSH access (user bcmtest and its key) through vendor-data: the harness would be locked out of every VM; remove vendor_data.enabled" {
		t.Errorf("flow style: %v", ps)
	}
	for _, ok := range []string{
		"vendor_data: {enabled: true}",
		"vendor_data: {enabled: yes}",
		`vendor_data: {enabled: "on"}`,
		`vendor_data: {enabled: "1"}`,
		"vendor_data: {prefix: [/usr/bin/ltrace]}",
		"vendor_data: {}",
		// Only the last of duplicate keys counts, as in cloud-init.
		"vendor_data: {enabled: false}\nvendor_data: {enabled: true}",
	} {
		if ps := problems(t, "#cloud-config\n"+ok+"\n"); len(ps) != 0 {
			t.Errorf("%s: %v", ok, ps)
		}
	}
	if ps := problems(t, "#cloud-config\nvendor_data: {enabled: [x]}\n"); len(ps) != 1 || ps[0].Rule != "must be a string or a boolean, got a list" {
		t.Errorf("a list: %v, want only the type error", ps)
	}
}

func TestHarnessUserLockout(t *testing.T) {
	tests := []struct {
		name, data string
		line, col  int
		path, rule string
	}{
		{"userdel in runcmd", "#cloud-config\nruncmd:\n  - userdel -r bcmtest\n", 3, 5, "runcmd.0", `"userdel bcmtest" deletes the harness's user bcmtest`},
		{"deluser in bootcmd", "#cloud-config\nbootcmd:\n  - [deluser, --remove-home, bcmtest]\n", 3, 6, "bootcmd.0", `"deluser bcmtest" deletes`},
		{"usermod -L", "#cloud-config\nruncmd:\n  - echo hi\n  - usermod -L bcmtest\n", 4, 5, "runcmd.1", `"usermod bcmtest" locks the harness's user bcmtest`},
		{"usermod --lock under sudo", "#cloud-config\nruncmd:\n  - sudo -u root usermod --lock bcmtest\n", 3, 5, "runcmd.0", "locks"},
		{"passwd -l as argv", "#cloud-config\nruncmd:\n  - [ls]\n  - [/usr/bin/passwd, -l, bcmtest]\n", 4, 6, "runcmd.1", `"passwd bcmtest" locks`},
		{"inside sh -c", "#cloud-config\nruncmd:\n  - [sh, -c, 'id bcmtest && userdel bcmtest']\n", 3, 14, "runcmd.0", "deletes"},
		{"after a pipe and in $()", "#cloud-config\nruncmd:\n  - echo $(true; passwd --lock bcmtest)\n", 3, 5, "runcmd.0", "locks"},
		{"shell script", "#!/bin/sh\nset -e\n  userdel bcmtest || true\n", 3, 3, "", "deletes"},
		{"boothook", "#cloud-boothook\n#!/bin/sh\ndeluser bcmtest\n", 3, 1, "", "deletes"},
		{"shell script part", "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/x-shellscript\n\n#!/bin/bash\nusermod -L bcmtest\n--b--\n", 2, 1, "", "locks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := problems(t, tt.data)
			if len(ps) != 1 {
				t.Fatalf("%d problems %v, want 1", len(ps), ps)
			}
			p := ps[0]
			if p.Line != tt.line || p.Column != tt.col || p.Path != tt.path || !strings.Contains(p.Rule, tt.rule) ||
				!strings.HasSuffix(p.Rule, "the harness logs in to every VM as bcmtest over SSH and would be locked out; leave that user alone") {
				t.Errorf("got %s (line %d col %d path %q)\nwant line %d col %d path %q rule containing %q",
					p, p.Line, p.Column, p.Path, tt.line, tt.col, tt.path, tt.rule)
			}
		})
	}
}

func TestHarnessUserLockoutNotFlagged(t *testing.T) {
	for _, data := range []string{
		"#cloud-config\nusers: [default, {name: bcmtest, lock_passwd: true}]\n",
		"#cloud-config\nruncmd:\n  - userdel bob\n  - usermod -aG lxd bcmtest\n  - passwd -S bcmtest\n  - echo userdel bcmtest\n  - deluser bob bcmtest\n  - deluser --group bcmtest\n  - '# userdel bcmtest'\n  - [echo, userdel, bcmtest]\n",
		"#!/usr/bin/python3\nuserdel bcmtest\n",
		"#!/bin/sh\n# userdel bcmtest\necho 'userdel bcmtest'\n",
	} {
		if ps := problems(t, data); len(ps) != 0 {
			t.Errorf("%q: %v", data, ps)
		}
	}
}

// A command repeated by aliases is one problem, at the anchored scalar.
func TestHarnessUserLockoutThroughAliases(t *testing.T) {
	ps := problems(t, "#cloud-config\nx: &c userdel bcmtest\nruncmd: [*c, *c, [sh, -c, *c]]\nbootcmd: [*c]\n")
	if len(ps) != 1 || ps[0].Line != 2 || ps[0].Column != 4 || ps[0].Path != "bootcmd.0" {
		t.Fatalf("got %v, want one problem at the anchored scalar, 2:4, found first in bootcmd (it runs first)", ps)
	}
}

// cloud-init sees no #cloud-config header behind a byte-order mark and
// ignores the whole file (hetznercloud/cli#511 is one user who lost a day to
// it). Rejecting it with the fix beats accepting a file cloud-init will not
// run.
func TestByteOrderMarkRejected(t *testing.T) {
	const rule = "starts with a UTF-8 byte order mark; cloud-init would not see the header, save the file without a BOM"
	for _, data := range []string{
		"\xef\xbb\xbf#cloud-config\npackages: [jq]\n",
		"\xef\xbb\xbf#!/bin/sh\necho hi\n",
		"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/cloud-config\n\n\xef\xbb\xbf#cloud-config\n--b--\n",
	} {
		ps := problems(t, data)
		if len(ps) != 1 || ps[0].Rule != rule || ps[0].Line != 1 || ps[0].Column != 1 {
			t.Errorf("%q: %v, want the BOM rule at 1:1", data, ps)
		}
	}
}
