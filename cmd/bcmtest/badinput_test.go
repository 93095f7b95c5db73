package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BitcoinCacheMachine/bcmtest/cloudinit"
	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/leaks"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/fakeprovider"
	"github.com/BitcoinCacheMachine/bcmtest/suites/e2e"
)

// TestBadInputIsRejectedBeforeAnyVMStarts is the bad-input table: every row
// must fail with an error naming the field and the rule, and afterwards the
// host must show no VM started (no qemu process or VM directory under the
// test's own state directory, no launch on the fake provider).
func TestBadInputIsRejectedBeforeAnyVMStarts(t *testing.T) {
	stateDir := t.TempDir()
	t.Setenv("BCMTEST_STATE_DIR", stateDir)
	t.Setenv("BCMTEST_CACHE_DIR", t.TempDir())
	t.Setenv("BCMTEST_PROVIDER", "qemu")

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
	good := write("good.yml", "#cloud-config\npackages: [jq]\n")
	emptyPath := t.TempDir() // for PATH without qemu
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
	cli := func(args ...string) func() error {
		return func() error {
			var out, errb bytes.Buffer
			return run(context.Background(), args, &out, &errb)
		}
	}
	rows := []struct {
		name  string
		call  func() error
		want  []string // the field and the rule
		usage bool     // a CLI row must exit 2
	}{
		{"name with underscore", cli("up", "CLUS_1"), []string{"cluster name", "only letters, digits and hyphens"}, true},
		{"name with leading digit", cli("up", "1CLUS"), []string{"cluster name", "must not start with a digit"}, true},
		{"name too long", cli("up", strings.Repeat("c", 61)), []string{"cluster name", "at most 60 characters"}, true},
		{"empty name", cli("up", ""), []string{"cluster name", "must not be empty"}, true},
		{"node name as cluster name", cli("up", "CLUS1-00"), []string{"cluster name", "-NN"}, true},
		{"negative members", cli("up", "CLUS1", "-1"), []string{"MEMBERS", "0 or more"}, true},
		{"non-numeric members", cli("up", "CLUS1", "three"), []string{"MEMBERS", "whole number"}, true},
		{"huge members", cli("up", "CLUS1", "1000", "--provider", "qemu"), []string{"members 1000", "at most 99"}, true},
		{"memory unit", cli("up", "CLUS1", "--memory", "2X", "--provider", "qemu"), []string{"memory \"2X\"", "unknown unit"}, true},
		{"memory zero", cli("up", "CLUS1", "--memory", "0", "--provider", "qemu"), []string{"memory \"0\"", "greater than zero"}, true},
		{"memory negative", cli("up", "CLUS1", "--memory", "-1G", "--provider", "qemu"), []string{"memory \"-1G\"", "positive number"}, true},
		{"memory beyond host", cli("up", "CLUS1", "--memory", "64T", "--provider", "qemu"), []string{"memory \"64T\"", "exceeds this host"}, true},
		{"disk too small", cli("up", "CLUS1", "--disk", "5G", "--provider", "qemu"), []string{"disk \"5G\"", "at least 10G"}, true},
		{"pool size unit", cli("up", "CLUS1", "--pool-size", "5Q", "--provider", "qemu"), []string{"pool size \"5Q\"", "unknown unit"}, true},
		{"cloud-init missing", cli("up", "CLUS1", "--cloud-init", filepath.Join(files, "nope.yml")), []string{"nope.yml", "does not exist"}, true},
		{"cloud-init directory", cli("up", "CLUS1", "--cloud-init", files), []string{files, "directory"}, true},
		{"cloud-init binary", cli("up", "CLUS1", "--cloud-init", binary), []string{"binary.yml", "binary"}, true},
		{"cloud-init without header", cli("up", "CLUS1", "--cloud-init", noHeader), []string{"no-header.yml", "#cloud-config"}, true},
		{"cloud-init YAML syntax", cli("up", "CLUS1", "--cloud-init", yamlErr), []string{"yaml-error.yml:4:2", "did not find expected key"}, true},
		{"cloud-init wrong type", cli("up", "CLUS1", "--cloud-init", wrongType), []string{"wrong-type.yml:2:11", "packages: must be a list"}, true},
		{"lint unknown key", cli("cloudinit", "lint", unknownKey), []string{"unknown-key.yml:2:1", "pakages", "did you mean packages"}, true},
		{"unknown provider", cli("up", "CLUS1", "--provider", "vbox"), []string{"provider \"vbox\"", "must be auto, qemu or multipass"}, true},
		{"unknown flag", cli("up", "CLUS1", "--cpu", "2"), []string{"up", "flag provided but not defined: -cpu"}, true},
		{"sizes negative", cli("matrix", "--sizes", "0,-1"), []string{"--sizes", "member count"}, true},
		{"sizes duplicate", cli("matrix", "--sizes", "1,1"), []string{"--sizes", "listed twice"}, true},
		{"sizes unparsable", cli("matrix", "--sizes", "one"), []string{"--sizes", "not a member count"}, true},
		{"exec on unknown node", cli("exec", "NOPE-00", "--provider", "qemu", "--", "true"), []string{"NOPE-00", "not in any cluster"}, true},
		{"spec pool name", spec(func(s *cluster.Spec) { s.PoolName = "Pool!" }), []string{"pool name \"Pool!\"", "lowercase"}, false},
		{"spec cpus", spec(func(s *cluster.Spec) { s.CPUs = -1 }), []string{"cpus -1", "at least 1"}, false},
		{"spec empty cloud-init", spec(func(s *cluster.Spec) { s.CloudInit = nil }), []string{"cloud-init", "empty"}, false},
		{"spec existing cluster", spec(func(s *cluster.Spec) { s.Name = "TAKEN" }), []string{"TAKEN", "already exists", "bcmtest down TAKEN"}, false},
		{"loader directory", func() error { _, err := cloudinit.Load(files); return err }, []string{files, "directory"}, false},
		{"artifacts not writable", func() error { return e2e.CheckArtifactsDir(filepath.Join(good, "sub")) }, []string{"artifacts dir", "writable directory"}, false},
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
			if r.usage && exitCode(err) != exitUsage {
				t.Errorf("exit code %d, want %d: %v", exitCode(err), exitUsage, err)
			}
		})
	}
	t.Run("qemu missing", func(t *testing.T) {
		t.Setenv("PATH", emptyPath)
		err := run(context.Background(), []string{"up", "CLUS1", "--provider", "qemu"}, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "qemu-system-x86") || exitCode(err) != exitEnv {
			t.Errorf("exit %d: %v", exitCode(err), err)
		}
	})
	t.Run("multipass missing when forced", func(t *testing.T) {
		t.Setenv("BCMTEST_MULTIPASS", filepath.Join(emptyPath, "multipass"))
		err := run(context.Background(), []string{"up", "CLUS1", "--provider", "multipass"}, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "multipass") || exitCode(err) != exitEnv {
			t.Errorf("exit %d: %v", exitCode(err), err)
		}
	})

	// No VM started: ask the host, not the harness.
	vms := filepath.Join(stateDir, "qemu", "vms")
	if left := leaks.Processes(stateDir); len(left) > 0 {
		t.Errorf("processes started: %v", left)
	}
	if left := leaks.Files(vms, 1, "*"); len(left) > 0 {
		t.Errorf("VM directories created: %v", left)
	}
	for _, c := range fake.Calls {
		if strings.HasPrefix(c, "launch") {
			t.Errorf("the fake provider launched a VM: %v", fake.Calls)
		}
	}
}
