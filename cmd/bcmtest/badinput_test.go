package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/BitcoinCacheMachine/bcmtest/cloudinit"
	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/leaks"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/fakeprovider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/providers"
	"github.com/BitcoinCacheMachine/bcmtest/suites/e2e"
)

// badInput is one command line that must be refused before any VM starts.
type badInput struct {
	name string
	args []string
	env  map[string]string
	// setup prepares the row's own state directory (a cluster record).
	setup func(t *testing.T, stateDir string)
	code  int
	// field is the flag, argument or variable the message must name, and
	// rule the rule it must state.
	field, rule string
}

// noLaunch wraps the real provider so that a row that got past validation
// by mistake fails loudly instead of booting a VM.
type noLaunch struct {
	provider.Provider
	mu       sync.Mutex
	launched []string
}

var errNoLaunch = errors.New("the bad-input test refuses to launch VMs")

// Unwrap lets what asks the provider (its release) see the real one.
func (n *noLaunch) Unwrap() provider.Provider { return n.Provider }

func (n *noLaunch) Launch(ctx context.Context, in provider.LaunchInput) (provider.Info, error) {
	n.mu.Lock()
	n.launched = append(n.launched, in.Name)
	n.mu.Unlock()
	return provider.Info{}, errNoLaunch
}

// refuseLaunches routes every provider the command line opens through
// noLaunch for the rest of the test and returns what they were asked to
// launch.
func refuseLaunches(t *testing.T) func() []string {
	var mu sync.Mutex
	var opened []*noLaunch
	orig := newProvider
	newProvider = func(ctx context.Context, o providers.Options) (provider.Provider, error) {
		p, err := orig(ctx, o)
		if err != nil {
			return nil, err
		}
		g := &noLaunch{Provider: p}
		mu.Lock()
		opened = append(opened, g)
		mu.Unlock()
		return g, nil
	}
	t.Cleanup(func() { newProvider = orig })
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		var all []string
		for _, g := range opened {
			g.mu.Lock()
			all = append(all, g.launched...)
			g.mu.Unlock()
		}
		return all
	}
}

// TestBadInputIsRejectedBeforeAnyVMStarts is the bad-input table. Every row
// runs the whole command line as a user types it, each with its own state
// and cache directories; it must exit with the documented code, print a
// message naming the field and the rule, and leave the host without a VM:
// no qemu process or VM directory under the row's state directory, no
// multipass record, no launch asked of any provider.
func TestBadInputIsRejectedBeforeAnyVMStarts(t *testing.T) {
	files := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(files, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	noHeader := write("no-header.yml", "packages: [jq]\n")
	yamlErr := write("yaml-error.yml", "#cloud-config\npackages:\n  - jq\n - tor\n")
	wrongType := write("wrong-type.yml", "#cloud-config\npackages: jq\n")
	binary := write("binary.yml", "#cloud-config\n\x00\x01\x02")
	unknownKey := write("unknown-key.yml", "#cloud-config\npakages: [jq]\n")
	plainFile := write("plain-file", "not a directory\n")
	missing := filepath.Join(files, "nope.yml")
	original := fixture(t, "bcm-original.yaml") // needs snap, which the qemu provider's VMs lack
	emptyPath := t.TempDir()                    // a PATH without qemu or multipass
	taken := func(t *testing.T, stateDir string) { writeClusterRecord(t, stateDir, "TAKEN", 0, "TAKEN-00") }
	launched := refuseLaunches(t)

	rows := []badInput{
		// The command itself.
		{name: "no command", args: []string{}, code: exitUsage, field: "command", rule: "no command given"},
		{name: "unknown command", args: []string{"frobnicate"}, code: exitUsage, field: `"frobnicate"`, rule: "unknown command"},
		{name: "unknown flag before any command", args: []string{"--bogus"}, code: exitUsage, field: "--bogus", rule: "unknown flag"},
		{name: "version with an argument", args: []string{"version", "x"}, code: exitUsage, field: "version", rule: "takes no arguments"},
		{name: "help on an unknown topic", args: []string{"help", "frob"}, code: exitUsage, field: `"frob"`, rule: "unknown help topic"},
		{name: "help on an unknown subcommand", args: []string{"image", "help", "frob"}, code: exitUsage, field: `"frob"`, rule: "unknown help topic"},
		{name: "completion for an unknown shell", args: []string{"completion", "tcsh"}, code: exitUsage, field: `SHELL "tcsh"`, rule: "must be bash, zsh, fish or powershell"},

		// up: the arguments.
		{name: "up without NAME", args: []string{"up"}, code: exitUsage, field: "NAME [MEMBERS]", rule: "got 0 arguments"},
		{name: "up with three arguments", args: []string{"up", "A", "1", "2"}, code: exitUsage, field: "NAME [MEMBERS]", rule: "got 3 arguments"},
		{name: "name with underscore", args: []string{"up", "CLUS_1"}, code: exitUsage, field: "cluster name", rule: "only letters, digits and hyphens"},
		{name: "name with leading digit", args: []string{"up", "1CLUS"}, code: exitUsage, field: "cluster name", rule: "must not start with a digit"},
		{name: "name too long", args: []string{"up", strings.Repeat("c", 61)}, code: exitUsage, field: "cluster name", rule: "at most 60 characters"},
		{name: "empty name", args: []string{"up", ""}, code: exitUsage, field: "cluster name", rule: "must not be empty"},
		{name: "node name as cluster name", args: []string{"up", "CLUS1-00"}, code: exitUsage, field: "cluster name", rule: "must not end in -NN"},
		{name: "name ending in a hyphen", args: []string{"up", "CLUS-"}, code: exitUsage, field: "cluster name", rule: "must not end with a hyphen"},
		{name: "negative members", args: []string{"up", "CLUS1", "-1"}, code: exitUsage, field: "MEMBERS -1", rule: "must be 0 or more"},
		{name: "non-numeric members", args: []string{"up", "CLUS1", "three"}, code: exitUsage, field: `MEMBERS "three"`, rule: "whole number"},
		{name: "fractional members", args: []string{"up", "CLUS1", "1.5"}, code: exitUsage, field: `MEMBERS "1.5"`, rule: "whole number"},
		{name: "huge members", args: []string{"up", "CLUS1", "1000"}, code: exitUsage, field: "MEMBERS 1000", rule: "at most 99"},

		// up: the flags.
		{name: "cpus zero", args: []string{"up", "CLUS1", "--cpus", "0"}, code: exitUsage, field: "--cpus 0", rule: "must be at least 1"},
		{name: "cpus negative", args: []string{"up", "CLUS1", "--cpus", "-1"}, code: exitUsage, field: "--cpus -1", rule: "must be at least 1"},
		{name: "cpus not a number", args: []string{"up", "CLUS1", "--cpus", "two"}, code: exitUsage, field: `--cpus "two"`, rule: "must be a whole number"},
		{name: "cpus without a value", args: []string{"up", "CLUS1", "--cpus"}, code: exitUsage, field: "--cpus", rule: "needs a value"},
		{name: "memory empty", args: []string{"up", "CLUS1", "--memory", ""}, code: exitUsage, field: "--memory", rule: "must not be empty"},
		{name: "memory unit", args: []string{"up", "CLUS1", "--memory", "2X"}, code: exitUsage, field: `--memory "2X"`, rule: "unknown unit"},
		{name: "memory zero", args: []string{"up", "CLUS1", "--memory", "0"}, code: exitUsage, field: `--memory "0"`, rule: "greater than zero"},
		{name: "memory negative", args: []string{"up", "CLUS1", "--memory", "-1G"}, code: exitUsage, field: `--memory "-1G"`, rule: "positive number"},
		{name: "memory overflow", args: []string{"up", "CLUS1", "--memory", "99999999999999999999T"}, code: exitUsage, field: `--memory "99999999999999999999T"`, rule: "too large"},
		{name: "memory below LXD's need", args: []string{"up", "CLUS1", "--memory", "512M"}, code: exitUsage, field: "--memory", rule: "at least 1024 MiB"},
		{name: "memory beyond host", args: []string{"up", "CLUS1", "--memory", "64T"}, code: exitUsage, field: "--memory", rule: "exceeds this host"},
		{name: "disk empty", args: []string{"up", "CLUS1", "--disk", ""}, code: exitUsage, field: "--disk", rule: "must not be empty"},
		{name: "disk unit", args: []string{"up", "CLUS1", "--disk", "30Q"}, code: exitUsage, field: `--disk "30Q"`, rule: "unknown unit"},
		{name: "disk too small", args: []string{"up", "CLUS1", "--disk", "5G"}, code: exitUsage, field: "--disk", rule: "at least 10G"},
		{name: "disk too small for the default pool", args: []string{"up", "CLUS1", "--disk", "12G"}, code: exitUsage, field: `--pool-size "5G"`, rule: "must leave 8G of the 12G disk"},
		{name: "pool size empty", args: []string{"up", "CLUS1", "--pool-size", ""}, code: exitUsage, field: "--pool-size", rule: "must not be empty"},
		{name: "pool size unit", args: []string{"up", "CLUS1", "--pool-size", "5Q"}, code: exitUsage, field: `--pool-size "5Q"`, rule: "unknown unit"},
		{name: "pool size too small", args: []string{"up", "CLUS1", "--pool-size", "512M"}, code: exitUsage, field: "--pool-size", rule: "at least 1G"},
		{name: "pool size leaves no system room", args: []string{"up", "CLUS1", "--pool-size", "25G"}, code: exitUsage, field: "--pool-size", rule: "must leave 8G"},
		{name: "keep-on-failure not a bool", args: []string{"up", "CLUS1", "--keep-on-failure=maybe"}, code: exitUsage, field: `--keep-on-failure "maybe"`, rule: "must be true or false"},
		{name: "unknown flag", args: []string{"up", "CLUS1", "--cpu", "2"}, code: exitUsage, field: "--cpu", rule: "unknown flag"},
		{name: "unknown shorthand", args: []string{"up", "CLUS1", "-z"}, code: exitUsage, field: "-z", rule: "unknown shorthand flag"},
		{name: "cloud-init empty", args: []string{"up", "CLUS1", "--cloud-init", ""}, code: exitUsage, field: "--cloud-init", rule: "must not be empty"},
		{name: "cloud-init missing", args: []string{"up", "CLUS1", "--cloud-init", missing}, code: exitUsage, field: "--cloud-init", rule: "does not exist"},
		{name: "cloud-init directory", args: []string{"up", "CLUS1", "--cloud-init", files}, code: exitUsage, field: "--cloud-init", rule: "is a directory"},
		{name: "cloud-init binary", args: []string{"up", "CLUS1", "--cloud-init", binary}, code: exitUsage, field: "--cloud-init", rule: "binary"},
		{name: "cloud-init without header", args: []string{"up", "CLUS1", "--cloud-init", noHeader}, code: exitUsage, field: "--cloud-init", rule: "#cloud-config"},
		{name: "cloud-init YAML syntax", args: []string{"up", "CLUS1", "--cloud-init", yamlErr}, code: exitUsage, field: "yaml-error.yml:4:2", rule: "did not find expected key"},
		{name: "cloud-init wrong type", args: []string{"up", "CLUS1", "--cloud-init", wrongType}, code: exitUsage, field: "wrong-type.yml:2:11", rule: "packages: must be a list"},
		{name: "cloud-init needing snap on qemu", args: []string{"up", "CLUS9", "--cloud-init", original}, code: exitUsage, field: "--cloud-init", rule: "pass --force to boot anyway"},
		{name: "unknown provider", args: []string{"up", "CLUS1", "--provider", "vbox"}, code: exitUsage, field: "--provider", rule: `provider "vbox": must be auto, qemu or multipass`},
		{name: "unknown provider from the environment", args: []string{"up", "CLUS1"}, env: map[string]string{"BCMTEST_PROVIDER": "vbox"}, code: exitUsage, field: "BCMTEST_PROVIDER", rule: `provider "vbox": must be auto, qemu or multipass`},
		{name: "unknown accel from the environment", args: []string{"up", "CLUS1", "--provider", "qemu"}, env: map[string]string{"BCMTEST_ACCEL": "fast"}, code: exitUsage, field: `BCMTEST_ACCEL "fast"`, rule: "must be auto, kvm or tcg"},
		{name: "existing cluster", args: []string{"up", "TAKEN", "--provider", "qemu"}, setup: taken, code: exitFailed, field: "TAKEN", rule: "the cluster already exists"},
		{name: "reuse of a cluster that does not exist", args: []string{"up", "NOPE", "--reuse", "--provider", "qemu"}, code: exitUsage, field: "--reuse", rule: "reusing NOPE"},
		{name: "qemu missing", args: []string{"up", "CLUS1", "--provider", "qemu"}, env: map[string]string{"PATH": emptyPath}, code: exitEnv, field: "qemu-system-x86", rule: "install with `make deps`"},
		{name: "multipass missing when forced", args: []string{"up", "CLUS1", "--provider", "multipass"}, env: map[string]string{"BCMTEST_MULTIPASS": filepath.Join(emptyPath, "multipass")}, code: exitEnv, field: "BCMTEST_MULTIPASS", rule: "sudo snap install multipass"},

		// grow and shrink (the rows that need a kept cluster are in TestGrowShrinkRefuseBadMembers).
		{name: "grow without NAME", args: []string{"grow"}, code: exitUsage, field: "NAME [N]", rule: "got 0 arguments"},
		{name: "grow bad name", args: []string{"grow", "CLUS_1"}, code: exitUsage, field: "cluster name", rule: "only letters, digits and hyphens"},
		{name: "grow by zero", args: []string{"grow", "CLUS1", "0"}, code: exitUsage, field: "N 0", rule: "must be 1 or more"},
		{name: "grow by a negative count", args: []string{"grow", "CLUS1", "-1"}, code: exitUsage, field: "N -1", rule: "must be 1 or more"},
		{name: "grow by a word", args: []string{"grow", "CLUS1", "two"}, code: exitUsage, field: `N "two"`, rule: "must be a whole number"},
		{name: "grow an unknown cluster", args: []string{"grow", "NOPE", "--provider", "qemu"}, code: exitUsage, field: "NAME", rule: "cluster NOPE: not found"},
		{name: "shrink without MEMBER", args: []string{"shrink", "CLUS1"}, code: exitUsage, field: "NAME MEMBER", rule: "got 1 argument"},
		{name: "shrink bad name", args: []string{"shrink", "9x", "9x-01"}, code: exitUsage, field: "cluster name", rule: "must not start with a digit"},
		{name: "shrink bad member name", args: []string{"shrink", "CLUS1", "../x"}, code: exitUsage, field: "MEMBER", rule: "must start with a letter"},
		{name: "shrink another cluster's member", args: []string{"shrink", "CLUS1", "CLUS2-01"}, code: exitUsage, field: "MEMBER CLUS2-01", rule: "must be a node of CLUS1"},
		{name: "shrink an unknown cluster", args: []string{"shrink", "NOPE", "NOPE-01", "--provider", "qemu"}, code: exitUsage, field: "NAME", rule: "cluster NOPE: not found"},

		// down and list.
		{name: "down without NAME", args: []string{"down"}, code: exitUsage, field: "NAME or --stale", rule: "give exactly one"},
		{name: "down with NAME and --stale", args: []string{"down", "CLUS1", "--stale"}, code: exitUsage, field: "NAME or --stale", rule: "give exactly one"},
		{name: "down with two names", args: []string{"down", "A", "B"}, code: exitUsage, field: "NAME or --stale", rule: "give exactly one"},
		{name: "down bad name", args: []string{"down", "CLUS_1"}, code: exitUsage, field: "cluster name", rule: "only letters, digits and hyphens"},
		{name: "down stale not a bool", args: []string{"down", "--stale=often"}, code: exitUsage, field: `--stale "often"`, rule: "must be true or false"},
		{name: "list unknown output", args: []string{"list", "--output", "yaml"}, code: exitUsage, field: `--output "yaml"`, rule: "must be table or json"},
		{name: "list bad name", args: []string{"list", "CLUS_1"}, code: exitUsage, field: "cluster name", rule: "only letters, digits and hyphens"},
		{name: "list with a bad provider variable", args: []string{"list"}, env: map[string]string{"BCMTEST_PROVIDER": "vbox"}, code: exitUsage, field: "BCMTEST_PROVIDER", rule: "must be auto, qemu or multipass"},

		// exec, ssh and logs.
		{name: "exec without a command", args: []string{"exec", "CLUS1-00"}, code: exitUsage, field: "NODE -- CMD", rule: "want"},
		{name: "exec without anything", args: []string{"exec"}, code: exitUsage, field: "NODE -- CMD", rule: "want"},
		{name: "exec with an empty command", args: []string{"exec", "CLUS1-00", "--"}, code: exitUsage, field: "NODE -- CMD", rule: "want"},
		{name: "exec bad node name", args: []string{"exec", "../x", "--", "true"}, code: exitUsage, field: "NODE", rule: "must start with a letter"},
		{name: "exec on unknown node", args: []string{"exec", "NOPE-00", "--provider", "qemu", "--", "true"}, code: exitUsage, field: "NOPE-00", rule: "not in any cluster"},
		{name: "ssh without a node", args: []string{"ssh"}, code: exitUsage, field: "NODE", rule: "got 0 arguments"},
		{name: "ssh with two nodes", args: []string{"ssh", "A-00", "B-00"}, code: exitUsage, field: "NODE", rule: "got 2 arguments"},
		{name: "ssh bad node name", args: []string{"ssh", "../x"}, code: exitUsage, field: "NODE", rule: "must start with a letter"},
		{name: "ssh on unknown node", args: []string{"ssh", "NOPE-00", "--provider", "qemu"}, code: exitUsage, field: "NOPE-00", rule: "not in any cluster"},
		{name: "logs bad name", args: []string{"logs", "9x"}, code: exitUsage, field: "cluster name", rule: "must not start with a digit"},
		{name: "logs without a name", args: []string{"logs"}, code: exitUsage, field: "NAME", rule: "got 0 arguments"},
		{name: "logs out under a file", args: []string{"logs", "CLUS1", "--out", filepath.Join(plainFile, "sub")}, code: exitUsage, field: "--out", rule: "not a directory"},

		// --image and BCMTEST_IMAGE, on every command that launches VMs or judges a file by the image.
		{name: "up unknown image", args: []string{"up", "CLUS1", "--image", "sid"}, code: exitUsage, field: "--image", rule: `image "sid": must be bookworm or trixie`},
		{name: "up unknown image from the environment", args: []string{"up", "CLUS1"}, env: map[string]string{"BCMTEST_IMAGE": "bullseye"}, code: exitUsage, field: "BCMTEST_IMAGE", rule: `image "bullseye": must be bookworm or trixie`},
		{name: "up image of the wrong case", args: []string{"up", "CLUS1", "--image", "Trixie"}, code: exitUsage, field: "--image", rule: "must be bookworm or trixie"},
		{name: "up --reuse unknown image from the environment", args: []string{"up", "TAKEN", "--reuse"}, setup: taken, env: map[string]string{"BCMTEST_IMAGE": "sid"}, code: exitUsage, field: "BCMTEST_IMAGE", rule: "must be bookworm or trixie"},
		{name: "image build unknown image", args: []string{"image", "build", "--image", "sid"}, code: exitUsage, field: "--image", rule: "must be bookworm or trixie"},
		{name: "image build unknown image from the environment", args: []string{"image", "build"}, env: map[string]string{"BCMTEST_IMAGE": "sid"}, code: exitUsage, field: "BCMTEST_IMAGE", rule: "must be bookworm or trixie"},
		{name: "image key unknown image", args: []string{"image", "key", "--image", "sid"}, code: exitUsage, field: "--image", rule: "must be bookworm or trixie"},
		{name: "image key empty image from the flag", args: []string{"image", "key", "--image"}, code: exitUsage, field: "--image", rule: "needs a value"},
		{name: "cloudinit lint unknown image", args: []string{"cloudinit", "lint", "--image", "sid", wrongType}, code: exitUsage, field: "--image", rule: "must be bookworm or trixie"},
		{name: "cloudinit check unknown image", args: []string{"cloudinit", "check", "--image", "sid", unknownKey}, code: exitUsage, field: "--image", rule: "must be bookworm or trixie"},
		{name: "cloudinit check unknown image from the environment", args: []string{"cloudinit", "check", unknownKey}, env: map[string]string{"BCMTEST_IMAGE": "sid"}, code: exitUsage, field: "BCMTEST_IMAGE", rule: "must be bookworm or trixie"},
		{name: "cloudinit diff unknown image", args: []string{"cloudinit", "diff", "--image", "sid", unknownKey, unknownKey}, code: exitUsage, field: "--image", rule: "must be bookworm or trixie"},
		{name: "cloudinit check zero cpus", args: []string{"cloudinit", "check", "--cpus", "0", unknownKey}, code: exitUsage, field: "cloudinit check: --cpus 0", rule: "must be at least 1"},
		{name: "cloudinit check cpus not a number", args: []string{"cloudinit", "check", "--cpus", "one", unknownKey}, code: exitUsage, field: `--cpus "one"`, rule: "must be a whole number"},
		{name: "cloudinit check memory too small", args: []string{"cloudinit", "check", "--memory", "256M", unknownKey}, code: exitUsage, field: `cloudinit check: --memory "256M"`, rule: "must be at least 512M"},
		{name: "cloudinit check memory not a whole MiB", args: []string{"cloudinit", "check", "--memory", "1000000", unknownKey}, code: exitUsage, field: `--memory "1000000"`, rule: "whole number of MiB"},
		{name: "cloudinit check memory empty", args: []string{"cloudinit", "check", "--memory", "", unknownKey}, code: exitUsage, field: "--memory", rule: "must not be empty"},
		{name: "cloudinit diff negative cpus", args: []string{"cloudinit", "diff", "--cpus", "-2", unknownKey, unknownKey}, code: exitUsage, field: "cloudinit diff: --cpus -2", rule: "must be at least 1"},
		{name: "cloudinit diff memory without a number", args: []string{"cloudinit", "diff", "--memory", "G", unknownKey, unknownKey}, code: exitUsage, field: `--memory "G"`, rule: "must be a positive number"},
		{name: "matrix unknown image", args: []string{"matrix", "--sizes", "0", "--image", "sid"}, code: exitUsage, field: "--image", rule: "must be bookworm or trixie"},
		{name: "matrix unknown image from the environment", args: []string{"matrix", "--sizes", "0"}, env: map[string]string{"BCMTEST_IMAGE": "sid"}, code: exitUsage, field: "BCMTEST_IMAGE", rule: "must be bookworm or trixie"},

		// image and cloudinit.
		{name: "image without a subcommand", args: []string{"image"}, code: exitUsage, field: "build, key, list or prune", rule: "want a subcommand"},
		{name: "image unknown subcommand", args: []string{"image", "frob"}, code: exitUsage, field: `"frob"`, rule: "unknown subcommand"},
		{name: "image list with an argument", args: []string{"image", "list", "extra"}, code: exitUsage, field: "image list", rule: "takes no arguments"},
		{name: "image list unknown output", args: []string{"image", "list", "-o", "xml"}, code: exitUsage, field: `--output "xml"`, rule: "must be table or json"},
		{name: "image prune unknown flag", args: []string{"image", "prune", "--all"}, code: exitUsage, field: "--all", rule: "unknown flag"},
		{name: "cloudinit without a subcommand", args: []string{"cloudinit"}, code: exitUsage, field: "check, diff or lint", rule: "want a subcommand"},
		{name: "cloudinit unknown subcommand", args: []string{"cloudinit", "frob"}, code: exitUsage, field: `"frob"`, rule: "unknown subcommand"},
		{name: "lint without a file", args: []string{"cloudinit", "lint"}, code: exitUsage, field: "FILE", rule: "got 0 arguments"},
		{name: "lint with two files", args: []string{"cloudinit", "lint", noHeader, yamlErr}, code: exitUsage, field: "FILE", rule: "got 2 arguments"},
		{name: "lint empty file name", args: []string{"cloudinit", "lint", ""}, code: exitUsage, field: "FILE", rule: "must not be empty"},
		{name: "lint unknown key", args: []string{"cloudinit", "lint", unknownKey}, code: exitUsage, field: "unknown-key.yml:2:1", rule: "pakages: unknown top-level key"},
		{name: "lint without header", args: []string{"cloudinit", "lint", noHeader}, code: exitUsage, field: "no-header.yml", rule: "#cloud-config"},
		{name: "check a file needing snap", args: []string{"cloudinit", "check", original}, code: exitUsage, field: "snap", rule: "pass --force to boot anyway"},
		{name: "lint unknown provider", args: []string{"cloudinit", "lint", original, "--provider", "vbox"}, code: exitUsage, field: "--provider", rule: "must be auto, qemu or multipass"},
		{name: "check missing file", args: []string{"cloudinit", "check", missing}, code: exitUsage, field: "nope.yml", rule: "does not exist"},

		// matrix.
		{name: "sizes negative", args: []string{"matrix", "--sizes", "0,-1"}, code: exitUsage, field: "--sizes", rule: `"-1" is not a member count`},
		{name: "sizes duplicate", args: []string{"matrix", "--sizes", "1,1"}, code: exitUsage, field: "--sizes", rule: "listed twice"},
		{name: "sizes unparsable", args: []string{"matrix", "--sizes", "one"}, code: exitUsage, field: "--sizes", rule: `"one" is not a member count`},
		{name: "sizes too large", args: []string{"matrix", "--sizes", "100"}, code: exitUsage, field: "--sizes", rule: "more than 99 members"},
		{name: "sizes empty", args: []string{"matrix", "--sizes", ""}, code: exitUsage, field: "--sizes", rule: "give at least one member count"},
		{name: "repeat zero", args: []string{"matrix", "--repeat", "0"}, code: exitUsage, field: "--repeat 0", rule: "must be 1 or more"},
		{name: "matrix with an argument", args: []string{"matrix", "extra"}, code: exitUsage, field: `"extra"`, rule: "unexpected argument"},
		{name: "matrix suites missing", args: []string{"matrix", "--suites", filepath.Join(files, "no-suites")}, code: exitUsage, field: "--suites", rule: "run bcmtest matrix from the repository root"},
		{name: "matrix cloud-init missing", args: []string{"matrix", "--cloud-init", missing}, code: exitUsage, field: "--cloud-init", rule: "does not exist"},
		{name: "matrix unknown provider", args: []string{"matrix", "--provider", "vbox"}, code: exitUsage, field: "--provider", rule: "must be auto, qemu or multipass"},
		{name: "matrix bad provider variable", args: []string{"matrix"}, env: map[string]string{"BCMTEST_PROVIDER": "vbox"}, code: exitUsage, field: "BCMTEST_PROVIDER", rule: "must be auto, qemu or multipass"},
	}
	if len(rows) < 60 {
		t.Fatalf("the table has %d rows; it must keep at least 60", len(rows))
	}
	seen := map[string]bool{}
	for _, r := range rows {
		key := strings.Join(r.args, "\x00") + "\x01" + mapKey(r.env)
		if seen[key] {
			t.Errorf("row %q repeats another row's input", r.name)
		}
		seen[key] = true
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			stateDir, cacheDir := t.TempDir(), t.TempDir()
			t.Setenv("BCMTEST_STATE_DIR", stateDir)
			t.Setenv("BCMTEST_CACHE_DIR", cacheDir)
			t.Setenv("BCMTEST_PROVIDER", "qemu")
			t.Setenv("BCMTEST_MULTIPASS", filepath.Join(emptyPath, "multipass"))
			for k, v := range r.env {
				t.Setenv(k, v)
			}
			if r.setup != nil {
				r.setup(t, stateDir)
			}
			var stdout, stderr bytes.Buffer
			code := execute(context.Background(), r.args, &stdout, &stderr)
			msg := stderr.String()
			expectRefusal(t, r, code, msg)
			assertNoVM(t, stateDir)
		})
	}
	if l := launched(); len(l) > 0 {
		t.Errorf("rows asked a provider to launch VMs: %v", l)
	}
}

// assertNoVM asks the host, not the harness, whether a VM started.
func assertNoVM(t *testing.T, stateDir string) {
	t.Helper()
	if left := leaks.Processes(stateDir); len(left) > 0 {
		t.Errorf("processes started: %v", left)
	}
	if left := leaks.Files(filepath.Join(stateDir, "qemu", "vms"), 1, "*"); len(left) > 0 {
		t.Errorf("VM directories created: %v", left)
	}
	if left := leaks.Files(filepath.Join(stateDir, "multipass"), 1, "*.json"); len(left) > 0 {
		t.Errorf("multipass records created: %v", left)
	}
}

func mapKey(m map[string]string) string {
	var b strings.Builder
	for _, k := range []string{"BCMTEST_PROVIDER", "BCMTEST_ACCEL", "BCMTEST_MULTIPASS", "PATH"} {
		b.WriteString(k + "=" + m[k] + ";")
	}
	return b.String()
}

// TestHarnessRejectsBadSpecs keeps the harness-level rules the command line
// relies on: they guard callers that build a Spec themselves (the suites).
func TestHarnessRejectsBadSpecs(t *testing.T) {
	stateDir := t.TempDir()
	files := t.TempDir()
	good := filepath.Join(files, "good.yml")
	if err := os.WriteFile(good, []byte("#cloud-config\npackages: [jq]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fake := fakeprovider.New()
	fake.Add(provider.Info{Name: "TAKEN-00", Group: "TAKEN"})
	spec := func(mut func(*cluster.Spec)) func() error {
		return func() error {
			s := cluster.Spec{Name: "CLUS1", Members: 1, CloudInit: []byte("#cloud-config\n"), Provider: fake, StateDir: stateDir}
			mut(&s)
			_, err := cluster.Up(context.Background(), s)
			return err
		}
	}
	rows := []struct {
		name string
		call func() error
		want []string
	}{
		{"spec pool name", spec(func(s *cluster.Spec) { s.PoolName = "Pool!" }), []string{"pool name \"Pool!\"", "lowercase"}},
		{"spec cpus", spec(func(s *cluster.Spec) { s.CPUs = -1 }), []string{"cpus -1", "at least 1"}},
		{"spec empty cloud-init", spec(func(s *cluster.Spec) { s.CloudInit = nil }), []string{"cloud-init", "empty"}},
		{"spec existing cluster", spec(func(s *cluster.Spec) { s.Name = "TAKEN" }), []string{"TAKEN", "already exists", "bcmtest down TAKEN"}},
		{"loader directory", func() error { _, err := cloudinit.Load(files); return err }, []string{files, "directory"}},
		{"artifacts not writable", func() error { return e2e.CheckArtifactsDir(filepath.Join(good, "sub")) }, []string{"artifacts dir", "writable directory"}},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			err := r.call()
			if err == nil {
				t.Fatalf("accepted")
			}
			for _, w := range r.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
	for _, c := range fake.Calls {
		if strings.HasPrefix(c, "launch") {
			t.Errorf("the fake provider launched a VM: %v", fake.Calls)
		}
	}
}

// expectRefusal checks a row's exit code and that stderr names its field
// and rule.
func expectRefusal(t *testing.T, r badInput, code int, msg string) {
	t.Helper()
	if code != r.code {
		t.Errorf("bcmtest %q exited %d, want %d; stderr:\n%s", r.args, code, r.code, msg)
	}
	for _, w := range []string{r.field, r.rule} {
		if !strings.Contains(msg, w) {
			t.Errorf("bcmtest %q: the message lacks %q:\n%s", r.args, w, msg)
		}
	}
}
