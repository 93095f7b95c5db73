package cloudinit

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/BitcoinCacheMachine/bcmtest/fixtures"
)

var yamlBreak = regexp.MustCompile("\r\n|\r|\n|\u0085|\u2028|\u2029")

// FuzzLint feeds arbitrary bytes to Lint, Validate and ProviderLint. None may
// panic or hang, they must agree on whether the file is valid, and every
// problem must name the file at a position inside it.
func FuzzLint(f *testing.F) {
	for _, name := range fixtures.Names() {
		f.Add(fixtures.MustRead(name))
	}
	for _, s := range []string{
		smoke,
		"#cloud-config\nruncmd: &a [*a]\n",
		"#cloud-config\nx: &s jq\npackages: *s\nruncmd: [*s, [sh, -c, *s]]\n",
		"#cloud-config\nvendor_data: {enabled: false}\n",
		"#cloud-config\nruncmd:\n  - [sh, -c, 'id bcmtest && userdel bcmtest']\n  - sudo -u root usermod --lock bcmtest\n",
		"#cloud-config\napt:\n  sources:\n    x: {source: 'deb [signed-by=$KEY_FILE] https://example.com/x bookworm main'}\n    y: {source: ppa:a/b}\n",
		"#cloud-config\npackages:\n  - jq\n  - [curl, 7.88.1-10]\n  - lxd=5.0\n",
		"#cloud-config\nfinal_message: Done: now\n",
		"#cloud-config\nruncmd:\n  - [ls, -l\nhostname: x\n",
		"#cloud-config\n" + strings.Repeat("[", 200) + strings.Repeat("]", 200) + "\n",
		"\xef\xbb\xbf#cloud-config\n",
		"#!/bin/sh\nsnap install lxd 2>&1 | tee $(userdel bcmtest) # 'x\n",
		"#cloud-boothook\n#!/bin/sh\napt-get purge -y lxd\n",
		"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/cloud-config\n\n#cloud-config\nsnap: {}\n--b\nContent-Type: text/x-shellscript\n\n#!/bin/sh\nsnap install lxd\n--b--\n",
	} {
		f.Add([]byte(s))
	}
	f.Add(aliasFanout(2 << 10))
	f.Add(billionLaughs())
	f.Add(flatList(4 << 10))

	known := func(name string) bool { return len(name)%2 == 0 }
	f.Fuzz(func(t *testing.T, data []byte) {
		// yaml.v3, like PyYAML, also breaks lines at a lone \r, NEL, LS and PS.
		lines := 1 + max(bytes.Count(data, []byte("\n")), len(yamlBreak.FindAllIndex(data, -1)))
		inside := func(what string, p *Problem) {
			if !strings.HasPrefix(p.File, "vm.yaml") || p.Line < 0 || p.Column < 0 || p.Line > lines {
				t.Fatalf("%s: problem %q at line %d col %d, outside the %d-line file", what, p.Error(), p.Line, p.Column, lines)
			}
		}
		warnings, err := Lint("vm.yaml", data)
		if len(warnings) > maxListed+1 {
			t.Fatalf("Lint returned %d warnings", len(warnings))
		}
		verr := Validate("vm.yaml", data)
		if (err == nil) != (verr == nil) {
			t.Fatalf("Lint error %v, Validate error %v", err, verr)
		}
		if err != nil {
			var ps Problems
			var p *Problem
			switch {
			case errors.As(err, &ps):
				for _, p := range ps {
					inside("Validate", p)
				}
				if n := strings.Count(err.Error(), "\n") + 1; n > maxListed+1 {
					t.Fatalf("the error has %d lines", n)
				}
			case errors.As(err, &p):
				inside("Validate", p)
			default:
				t.Fatalf("Validate error %v is not a Problem", err)
			}
		}
		for _, target := range []Target{{Provider: "qemu"}, {Provider: "multipass", KnownPackage: known}, {Provider: "qemu", KnownPackage: known}} {
			ps, perr := ProviderLint(context.Background(), "vm.yaml", data, target)
			if (perr == nil) != (err == nil) {
				t.Fatalf("ProviderLint(%s) error %v, Lint error %v", target.Provider, perr, err)
			}
			for i := range ps {
				inside("ProviderLint", &ps[i])
			}
		}
	})
}
