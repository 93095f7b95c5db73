package cloudinit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/BitcoinCacheMachine/bcmtest/fixtures"
)

var (
	qemu      = Target{Provider: "qemu"}
	multipass = Target{Provider: "multipass"}
)

func providerLint(t *testing.T, data string, target Target) []Problem {
	t.Helper()
	ps, err := ProviderLint(context.Background(), "vm.yaml", []byte(data), target)
	if err != nil {
		t.Fatalf("ProviderLint: %v", err)
	}
	return ps
}

// BCM's own file swaps Debian's LXD for the snap: on the qemu provider the
// removal takes away the image's LXD and the snap install cannot work.
func TestProviderLintBCMOriginal(t *testing.T) {
	data := fixtures.MustRead(fixtures.BCMOriginal)
	if err := Validate(fixtures.BCMOriginal, data); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	ps, err := ProviderLint(context.Background(), fixtures.BCMOriginal, data, qemu)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`bcm-original.yaml:8:5: runcmd.0: "apt-get remove -y lxd lxd-client" removes the image's LXD: the qemu provider's Debian 12 image comes with LXD 5.0 from Debian's lxd and lxd-client packages, which the harness uses to form the cluster; drop this command`,
		`bcm-original.yaml:9:5: runcmd.1: "snap install lxd --candidate": the qemu provider's Debian 12 image has no snapd and its VMs are offline (no snap store); the image already has LXD 5.0 from Debian: drop snap install lxd and use the image's lxd`,
	}
	if got := errorStrings(ps); !slices.Equal(got, want) {
		t.Errorf("qemu:\n got %q\nwant %q", got, want)
	}
	ps, err = ProviderLint(context.Background(), fixtures.BCMOriginal, data, multipass)
	if err != nil || len(ps) != 0 {
		t.Errorf("multipass = %v, %v; want nothing: Ubuntu has snapd", ps, err)
	}
}

func errorStrings(ps []Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Error())
	}
	return out
}

// The project's fixtures are what each provider runs; only the Ubuntu one
// needs snap.
func TestProviderLintFixtures(t *testing.T) {
	for _, name := range fixtures.Names() {
		data := fixtures.MustRead(name)
		if err := Validate(name, data); err != nil {
			t.Errorf("Validate(%s): %v", name, err)
		}
		ps, err := ProviderLint(context.Background(), name, data, qemu)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var paths []string
		for _, p := range ps {
			paths = append(paths, p.Path)
		}
		want := map[string][]string{fixtures.BCMUbuntu: {"snap"}, fixtures.BCMOriginal: {"runcmd.0", "runcmd.1"}}[name]
		if !slices.Equal(paths, want) {
			t.Errorf("%s on qemu: %v, want warnings at %q", name, ps, want)
		}
		if ps := providerLint(t, string(data), multipass); len(ps) != 0 {
			t.Errorf("%s on multipass: %v", name, ps)
		}
	}
}

func TestProviderLintQEMU(t *testing.T) {
	known := func(name string) bool { return name == "jq" || name == "curl" || name == "lxd" }
	tests := []struct {
		name, data string
		want       []string // "line:col path" of each warning
		rule       string   // in every warning's rule
	}{
		{"snap module", "#cloud-config\nsnap:\n  commands: [[install, lxd]]\n", []string{"2:1 snap"}, "drop the snap module"},
		{"snap in bootcmd, argv form", "#cloud-config\nbootcmd:\n  - [snap, install, microk8s]\n", []string{"3:6 bootcmd.0"}, "install the Debian package instead, or use the multipass provider"},
		{"snap under sudo in a string", "#cloud-config\nruncmd:\n  - echo hi\n  - sudo snap install lxd\n", []string{"4:5 runcmd.1"}, "drop snap install lxd and use the image's lxd"},
		{"snap inside sh -c", "#cloud-config\nruncmd:\n  - [sh, -c, 'snap list lxd >/dev/null 2>&1 || snap install lxd']\n", []string{"3:14 runcmd.0", "3:14 runcmd.0"}, "no snapd"},
		{"apt purge of a pattern", "#cloud-config\nruncmd:\n  - apt purge -y 'lxd*'\n", []string{"3:5 runcmd.0"}, "removes the image's LXD"},
		{"apt-get remove of lxd-client, argv", "#cloud-config\nruncmd:\n  - [apt-get, -o, 'Dpkg::Options::=--force-confold', autoremove, lxd-client]\n", []string{"3:6 runcmd.0"}, "removes the image's LXD"},
		{"install with a trailing minus", "#cloud-config\nruncmd:\n  - apt-get install -y zfsutils-linux lxd-\n", []string{"3:5 runcmd.0"}, "removes the image's LXD"},
		{"dpkg --purge", "#cloud-config\nbootcmd:\n  - dpkg --purge lxd\n", []string{"3:5 bootcmd.0"}, "removes the image's LXD"},
		{"add-apt-repository", "#cloud-config\nruncmd:\n  - add-apt-repository -y ppa:ubuntu-lxc/lxd-stable\n", []string{"3:5 runcmd.0"}, "PPAs are built for Ubuntu"},
		{"PPA in apt sources", "#cloud-config\napt:\n  sources:\n    lxd.list:\n      source: ppa:ubuntu-lxc/lxd-stable\n", []string{"5:15 apt.sources.lxd.list.source"}, `"ppa:ubuntu-lxc/lxd-stable": PPAs are built for Ubuntu`},
		{"launchpad deb line", "#cloud-config\napt:\n  sources:\n    x: {source: 'deb http://ppa.launchpad.net/x/y/ubuntu jammy main'}\n", []string{"4:17 apt.sources.x.source"}, "PPAs are built for Ubuntu"},
		{"source outside the archive", "#cloud-config\napt:\n  sources:\n    tor:\n      source: deb [signed-by=$KEY_FILE] https://deb.torproject.org/torproject.org bookworm main\n", []string{"5:15 apt.sources.tor.source"}, "is outside the Debian archive"},
		{"old apt_sources list", "#cloud-config\napt_sources:\n  - {source: 'ppa:foo/bar'}\n  - source: deb http://example.com/debian bookworm main\n", []string{"3:14 apt_sources.0.source", "4:13 apt_sources.1.source"}, "qemu provider's offline Debian 12 VMs"},
		{"unknown packages", "#cloud-config\npackages:\n  - jq\n  - [curl, 7.88.1-10]\n  - lxd-installer=1.0\n  - [ubuntu-advantage-tools, '30']\n  - lxd:amd64\n", []string{"5:5 packages.2", "6:6 packages.3.0"}, "is not in the VM image's apt lists"},
		{"shell script", "#!/bin/bash\nset -e\nsnap install lxd\n", []string{"3:1 "}, "no snapd"},
		{"boothook", "#cloud-boothook\n#!/bin/sh\napt-get -y purge lxd\n", []string{"3:1 "}, "removes the image's LXD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := providerLint(t, tt.data, Target{Provider: "qemu", KnownPackage: known})
			var got []string
			for _, p := range ps {
				got = append(got, strings.TrimSpace(fmt.Sprintf("%d:%d %s", p.Line, p.Column, p.Path)))
				if !strings.Contains(p.Rule, tt.rule) || p.File != "vm.yaml" {
					t.Errorf("%s: rule does not contain %q", p.Error(), tt.rule)
				}
			}
			want := make([]string, len(tt.want))
			for i, w := range tt.want {
				want[i] = strings.TrimSpace(w)
			}
			if !slices.Equal(got, want) {
				t.Errorf("got %q, want %q\n%q", got, want, errorStrings(ps))
			}
			// Ubuntu under multipass has snapd, PPAs and the network; the
			// image's apt lists still decide the package names.
			var mp []string
			for _, p := range providerLint(t, tt.data, Target{Provider: "multipass", KnownPackage: known}) {
				mp = append(mp, p.Path)
			}
			if tt.name == "unknown packages" {
				if !slices.Equal(mp, []string{"packages.2", "packages.3.0"}) {
					t.Errorf("multipass: %q, want only the packages", mp)
				}
			} else if len(mp) != 0 {
				t.Errorf("multipass: %q, want nothing", mp)
			}
		})
	}
}

func TestProviderLintNotFlagged(t *testing.T) {
	for _, data := range []string{
		"#cloud-config\npackages: [lxd, lxd-client]\nruncmd:\n  - lxd init --auto\n  - [lxc, launch, images:debian/12, c1]\n  - echo snap install lxd\n  - apt-get install -y jq\n  - apt-get remove -y nano\n",
		"#cloud-config\napt:\n  sources:\n    backports: {source: 'deb http://deb.debian.org/debian bookworm-backports main'}\n    mirror: {source: 'deb $MIRROR $RELEASE-updates main'}\n    keyonly: {keyid: ABCD}\n",
		"#!/usr/bin/python3\nimport os\nos.system('snap install lxd')\n",
		"#cloud-config\n# snap install lxd\nruncmd: ['# snap install lxd']\n",
	} {
		if ps := providerLint(t, data, qemu); len(ps) != 0 {
			t.Errorf("%q: %q", data, errorStrings(ps))
		}
	}
}

// A MIME archive's parts are linted by their type, and named like
// Validate names them.
func TestProviderLintMultipart(t *testing.T) {
	data := "Content-Type: multipart/mixed; boundary=b\n\n" +
		"--b\nContent-Type: text/cloud-config\n\n#cloud-config\nsnap: {commands: [[install, lxd]]}\n" +
		"--b\nContent-Type: text/x-shellscript\n\n#!/bin/sh\necho hi\nsnap install lxd\n" +
		"--b--\n"
	got := errorStrings(providerLint(t, data, qemu))
	if len(got) != 2 || !strings.HasPrefix(got[0], "vm.yaml (MIME part 1):2:1: snap: ") || !strings.HasPrefix(got[1], "vm.yaml (MIME part 2):3:1: \"snap install lxd\": ") {
		t.Errorf("got %q", got)
	}
}

// An alias repeats a command without repeating the warning or the work.
func TestProviderLintAliases(t *testing.T) {
	var b strings.Builder
	b.WriteString("#cloud-config\nx: &c [snap, install, lxd]\ny: &s snap install lxd\nruncmd: [")
	for range 5000 {
		b.WriteString("*c, *s, [sh, -c, *s], ")
	}
	b.WriteString("]\npackages: [&p nope, *p, *p]\n")
	ps := providerLint(t, b.String(), Target{Provider: "qemu", KnownPackage: func(string) bool { return false }})
	if got := errorStrings(ps); len(got) != 3 || !strings.HasPrefix(got[0], "vm.yaml:2:8: runcmd.0: ") || !strings.HasPrefix(got[1], "vm.yaml:3:4: runcmd.1: ") || !strings.HasPrefix(got[2], "vm.yaml:5:12: packages.0: ") {
		t.Errorf("got %q", got)
	}
}

func TestProviderLintErrors(t *testing.T) {
	if _, err := ProviderLint(context.Background(), "vm.yaml", []byte("#cloud-config\n"), Target{Provider: "lxd"}); err == nil ||
		err.Error() != `vm.yaml: unknown provider "lxd" for the provider lint (want qemu or multipass)` {
		t.Errorf("unknown provider: %v", err)
	}
	_, err := ProviderLint(context.Background(), "vm.yaml", []byte("#cloud-config\npackages: jq\n"), qemu)
	var p *Problem
	if !errors.As(err, &p) || p.Path != "packages" {
		t.Errorf("invalid file: %v, want Validate's problem", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ProviderLint(ctx, "vm.yaml", fixtures.MustRead(fixtures.BCMOriginal), qemu); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	// Cancelled after the parse, during the lint's own walk.
	var b strings.Builder
	b.WriteString("#cloud-config\nruncmd:\n")
	for range 50000 {
		b.WriteString("- snap install x\n")
	}
	data := []byte(b.String())
	l := &providerLinter{target: qemu, poll: poll{ctx: newCancelAfter(int64(len(data)/512 + 10))}}
	l.file("vm.yaml", data)
	if !errors.Is(l.err, context.Canceled) || len(l.problems) >= 50000 {
		t.Errorf("the walk ended with %v after %d of 50000 warnings, want it cancelled part way", l.err, len(l.problems))
	}
}
