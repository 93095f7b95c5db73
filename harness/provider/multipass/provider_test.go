package multipass

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
)

func TestInfo(t *testing.T) {
	f := newFake(t).on(response{Sub: "info", Stdout: infoJSON})
	p := f.provider()
	p.records.create(record{Name: "CLUS1-00", Group: "CLUS1", Owner: 7})
	info, err := p.Info(context.Background(), "CLUS1-00")
	if err != nil {
		t.Fatal(err)
	}
	want := provider.Info{Name: "CLUS1-00", Group: "CLUS1", Provider: "multipass", State: provider.StateRunning,
		PrivateIP: "10.109.154.23", Addresses: []string{"10.109.154.23", "10.77.0.10", "172.17.0.1"}, Owner: 7}
	if !reflect.DeepEqual(info, want) {
		t.Errorf("Info:\n got %+v\nwant %+v", info, want)
	}
	if argvs := f.argvs(); !reflect.DeepEqual(argvs, [][]string{{"info", "CLUS1-00", "--format", "json"}}) {
		t.Errorf("argv: %q", argvs)
	}
	// Not ours: no group, no owner; stopped: no addresses.
	info, err = p.Info(context.Background(), "CLUS1-01")
	if err != nil || info.Group != "" || info.Owner != 0 || info.State != provider.StateStopped || info.PrivateIP != "" || len(info.Addresses) != 0 {
		t.Errorf("stopped Info: %+v %v", info, err)
	}
}

func TestInfoNotFound(t *testing.T) {
	f := newFake(t).on(response{Sub: "info", Stderr: "info failed: instance \"NOPE\" does not exist\n", Exit: 2})
	_, err := f.provider().Info(context.Background(), "NOPE")
	if !errors.Is(err, provider.ErrNotFound) || err.Error() != `reading info of NOPE with multipass: instance "NOPE" does not exist (exit 2)` {
		t.Errorf("error: %v", err)
	}
	// An answer that does not mention the instance is also "not found".
	f2 := newFake(t).on(response{Sub: "info", Stdout: `{"errors": [], "info": {}}`})
	if _, err := f2.provider().Info(context.Background(), "NOPE"); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("empty answer: %v", err)
	}
	// Garbage is reported with what was being done.
	f3 := newFake(t).on(response{Sub: "info", Stdout: "Name: NOPE\n"})
	if _, err := f3.provider().Info(context.Background(), "NOPE"); err == nil || !strings.HasPrefix(err.Error(), "reading info of NOPE with multipass: parsing") {
		t.Errorf("garbage answer: %v", err)
	}
}

func TestListFiltersByExactGroup(t *testing.T) {
	const list = `{"list": [
        {"ipv4": ["10.109.154.23", "10.77.0.10"], "name": "CLUS1-00", "release": "Ubuntu 24.04 LTS", "state": "Running"},
        {"ipv4": [], "name": "CLUS1-01", "release": "Not Available", "state": "Stopped"},
        {"ipv4": ["10.109.154.50"], "name": "CLUS10-00", "release": "Ubuntu 24.04 LTS", "state": "Running", "zone": {"available": true, "name": "zone1"}},
        {"ipv4": ["10.109.154.99"], "name": "primary", "release": "Ubuntu 24.04 LTS", "state": "Running"}
    ]}`
	f := newFake(t).on(response{Sub: "list", Stdout: list})
	p := f.provider()
	for _, r := range []record{{Name: "CLUS1-00", Group: "CLUS1"}, {Name: "CLUS1-01", Group: "CLUS1"}, {Name: "CLUS10-00", Group: "CLUS10"}, {Name: "GHOST", Group: "CLUS1", Owner: 9}} {
		if err := p.records.create(r); err != nil {
			t.Fatal(err)
		}
	}
	names := func(infos []provider.Info) []string {
		var n []string
		for _, i := range infos {
			n = append(n, i.Name)
		}
		return n
	}

	got, err := p.List(context.Background(), "CLUS1")
	if err != nil {
		t.Fatal(err)
	}
	if n := names(got); !reflect.DeepEqual(n, []string{"CLUS1-00", "CLUS1-01", "GHOST"}) {
		t.Errorf("List(CLUS1) = %q", n)
	}
	if got[0].PrivateIP != "10.109.154.23" || got[0].State != provider.StateRunning || got[0].Group != "CLUS1" {
		t.Errorf("CLUS1-00: %+v", got[0])
	}
	if got[1].State != provider.StateStopped || got[1].PrivateIP != "" {
		t.Errorf("CLUS1-01: %+v", got[1])
	}
	if got[2].State != provider.StateUnknown || got[2].Owner != 9 {
		t.Errorf("GHOST (record without instance): %+v", got[2])
	}

	got, _ = p.List(context.Background(), "CLUS10")
	if n := names(got); !reflect.DeepEqual(n, []string{"CLUS10-00"}) {
		t.Errorf("List(CLUS10) = %q", n)
	}
	got, _ = p.List(context.Background(), "CLUS")
	if len(got) != 0 {
		t.Errorf("List(CLUS) = %q, want none", names(got))
	}
	got, _ = p.List(context.Background(), "")
	if n := names(got); !reflect.DeepEqual(n, []string{"CLUS1-00", "CLUS1-01", "CLUS10-00", "GHOST"}) {
		t.Errorf("List(\"\") = %q (must never include the user's own VMs)", n)
	}
	for _, a := range f.argvs() {
		if !reflect.DeepEqual(a, []string{"list", "--format", "json"}) {
			t.Errorf("argv %q", a)
		}
	}
}

func TestListDaemonDown(t *testing.T) {
	f := newFake(t).on(response{Sub: "list", Stderr: "list failed: cannot connect to the multipass socket\n", Exit: 3})
	_, err := f.provider().List(context.Background(), "CLUS1")
	if !errors.Is(err, ErrDaemonUnreachable) || err.Error() != `listing VMs of group "CLUS1" with multipass: cannot connect to the multipass socket (exit 3)` {
		t.Errorf("error: %v", err)
	}
}

func TestExec(t *testing.T) {
	f := newFake(t).on(
		response{Sub: "exec", Contains: "echo", Stdout: "out\n", Stderr: "warn\n"},
		response{Sub: "exec", Contains: "grep", Stderr: "grep: /x: No such file or directory\n", Exit: 2},
		response{Sub: "exec", Contains: "false", Exit: 255},
		response{Sub: "exec", Contains: "cat", Stdout: "piped"},
	)
	p := f.provider()
	ctx := context.Background()

	res, err := p.Exec(ctx, "CLUS1-00", provider.ExecInput{Argv: []string{"echo", "a b", "--flag", "$HOME"}})
	if err != nil || string(res.Stdout) != "out\n" || string(res.Stderr) != "warn\n" || res.ExitCode != 0 {
		t.Errorf("echo: %+v %v", res, err)
	}
	res, err = p.Exec(ctx, "CLUS1-00", provider.ExecInput{Argv: []string{"grep", "x", "/x"}})
	if err != nil || res.ExitCode != 2 {
		t.Errorf("remote exit 2 is a result, not an error: %+v %v", res, err)
	}
	res, err = p.Exec(ctx, "CLUS1-00", provider.ExecInput{Argv: []string{"false"}})
	if err != nil || res.ExitCode != 255 {
		t.Errorf("remote exit 255 without multipass's message: %+v %v", res, err)
	}
	_, err = p.Exec(ctx, "CLUS1-00", provider.ExecInput{Argv: []string{"cat"}, Stdin: strings.NewReader("to stdin")})
	if err != nil {
		t.Fatal(err)
	}

	calls := f.calls()
	want := [][]string{
		{"exec", "CLUS1-00", "--", "sudo", "-n", "--", "echo", "a b", "--flag", "$HOME"},
		{"exec", "CLUS1-00", "--", "sudo", "-n", "--", "grep", "x", "/x"},
		{"exec", "CLUS1-00", "--", "sudo", "-n", "--", "false"},
		{"exec", "CLUS1-00", "--", "sudo", "-n", "--", "cat"},
	}
	for i, c := range calls {
		if !reflect.DeepEqual(c.Argv, want[i]) {
			t.Errorf("call %d: %q, want %q", i, c.Argv, want[i])
		}
	}
	if calls[3].Stdin != "to stdin" {
		t.Errorf("stdin seen: %q", calls[3].Stdin)
	}
}

func TestExecMultipassFailures(t *testing.T) {
	for _, tc := range []struct {
		code   int
		stderr string
		is     error
		msg    string
	}{
		{2, "exec failed: instance \"CLUS1-00\" does not exist\n", provider.ErrNotFound, `running "hostname" on CLUS1-00 with multipass: instance "CLUS1-00" does not exist (exit 2)`},
		{3, "exec failed: cannot connect to the multipass socket\n", ErrDaemonUnreachable, `running "hostname" on CLUS1-00 with multipass: cannot connect to the multipass socket (exit 3)`},
		{255, "exec failed: [ssh client] channel creation failed\n", ErrExecFailed, `running "hostname" on CLUS1-00 with multipass: [ssh client] channel creation failed (exit 255)`},
	} {
		f := newFake(t).on(response{Sub: "exec", Stderr: tc.stderr, Exit: tc.code})
		res, err := f.provider().Exec(context.Background(), "CLUS1-00", provider.ExecInput{Argv: []string{"hostname"}})
		if !errors.Is(err, tc.is) || err.Error() != tc.msg {
			t.Errorf("exit %d: %v", tc.code, err)
		}
		if res.ExitCode != tc.code {
			t.Errorf("exit %d: result %+v", tc.code, res)
		}
	}
}

func TestExecRejectsBadInput(t *testing.T) {
	f := newFake(t)
	p := f.provider()
	if _, err := p.Exec(context.Background(), "--all", provider.ExecInput{Argv: []string{"true"}}); err == nil {
		t.Error("name --all: want an error")
	}
	if _, err := p.Exec(context.Background(), "CLUS1-00", provider.ExecInput{}); err == nil {
		t.Error("empty argv: want an error")
	}
	if argvs := f.argvs(); len(argvs) != 0 {
		t.Errorf("bad input reached multipass: %q", argvs)
	}
}

func TestExecContextCancelled(t *testing.T) {
	f := newFake(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.provider().Exec(ctx, "CLUS1-00", provider.ExecInput{Argv: []string{"true"}})
	if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), `running "true" on CLUS1-00 with multipass: `) {
		t.Errorf("error: %v", err)
	}
}

func TestCopyIn(t *testing.T) {
	f := newFake(t).on(response{Sub: "transfer"}, response{Sub: "exec"})
	p := f.provider()
	if err := p.CopyIn(context.Background(), "CLUS1-00", "/etc/lxd/preseed.yaml", []byte("config: {}\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	calls := f.calls()
	if len(calls) != 2 {
		t.Fatalf("want transfer then exec; got %q", f.argvs())
	}
	tr := calls[0].Argv
	if len(tr) != 3 || tr[0] != "transfer" || filepath.Dir(tr[1]) != p.cfg.TempDir || !strings.HasPrefix(tr[2], "CLUS1-00:/tmp/bcmtest-") {
		t.Fatalf("transfer argv: %q", tr)
	}
	if calls[0].Sent != "config: {}\n" {
		t.Errorf("content transferred: %q", calls[0].Sent)
	}
	if _, err := os.Stat(tr[1]); !os.IsNotExist(err) {
		t.Errorf("local temporary file left behind: %v", err)
	}
	staged := strings.TrimPrefix(tr[2], "CLUS1-00:")
	want := []string{"exec", "CLUS1-00", "--", "sudo", "-n", "--", "sh", "-c", installScript, "sh", staged, "/etc/lxd/preseed.yaml", "640"}
	if !reflect.DeepEqual(calls[1].Argv, want) {
		t.Errorf("install argv:\n got %q\nwant %q", calls[1].Argv, want)
	}
}

func TestCopyInFailures(t *testing.T) {
	f := newFake(t).on(response{Sub: "transfer", Stderr: "transfer failed: instance \"CLUS1-00\" does not exist\n", Exit: 2}, response{Sub: "exec"})
	err := f.provider().CopyIn(context.Background(), "CLUS1-00", "/etc/x", []byte("x"), 0o600)
	if !errors.Is(err, provider.ErrNotFound) || err.Error() != `copying into CLUS1-00:/etc/x with multipass: instance "CLUS1-00" does not exist (exit 2)` {
		t.Errorf("error: %v", err)
	}

	f = newFake(t).on(response{Sub: "transfer"}, response{Sub: "exec", Stderr: "mv: cannot move: Read-only file system\n", Exit: 1})
	err = f.provider().CopyIn(context.Background(), "CLUS1-00", "/etc/x", []byte("x"), 0o600)
	if err == nil || err.Error() != "copying into CLUS1-00:/etc/x with multipass: installing it as root: exit code 1: mv: cannot move: Read-only file system" {
		t.Errorf("error: %v", err)
	}
}

func TestCopyOut(t *testing.T) {
	f := newFake(t).on(response{Sub: "exec"}, response{Sub: "transfer", File: "secret token\n"})
	p := f.provider()
	got, err := p.CopyOut(context.Background(), "CLUS1-00", "/root/token")
	if err != nil || string(got) != "secret token\n" {
		t.Fatalf("CopyOut: %q %v", got, err)
	}
	argvs := f.argvs()
	if len(argvs) != 3 {
		t.Fatalf("want stage, transfer, cleanup; got %q", argvs)
	}
	staged := argvs[0][len(argvs[0])-1]
	if !strings.HasPrefix(staged, "/tmp/bcmtest-") {
		t.Fatalf("staged path %q", staged)
	}
	wantStage := []string{"exec", "CLUS1-00", "--", "sudo", "-n", "--", "sh", "-c", stageScript, "sh", "/root/token", staged}
	if !reflect.DeepEqual(argvs[0], wantStage) {
		t.Errorf("stage argv:\n got %q\nwant %q", argvs[0], wantStage)
	}
	tr := argvs[1]
	if len(tr) != 3 || tr[0] != "transfer" || tr[1] != "CLUS1-00:"+staged || !strings.HasPrefix(tr[2], p.cfg.TempDir+"/") {
		t.Errorf("transfer argv: %q", tr)
	}
	if _, err := os.Stat(filepath.Dir(tr[2])); !os.IsNotExist(err) {
		t.Errorf("local temporary directory left behind: %v", err)
	}
	if want := []string{"exec", "CLUS1-00", "--", "sudo", "-n", "--", "rm", "-f", "--", staged}; !reflect.DeepEqual(argvs[2], want) {
		t.Errorf("cleanup argv: %q", argvs[2])
	}
}

func TestCopyOutMissingFile(t *testing.T) {
	f := newFake(t).on(response{Sub: "exec", Contains: "install", Stderr: "install: cannot stat '/nope': No such file or directory\n", Exit: 1}, response{Sub: "exec"})
	_, err := f.provider().CopyOut(context.Background(), "CLUS1-00", "/nope")
	if err == nil || err.Error() != "copying CLUS1-00:/nope with multipass: staging it for transfer: exit code 1: install: cannot stat '/nope': No such file or directory" {
		t.Errorf("error: %v", err)
	}
	for _, a := range f.argvs() {
		if a[0] == "transfer" {
			t.Errorf("transfer after a failed stage: %q", a)
		}
	}
}

func TestStopStart(t *testing.T) {
	f := newFake(t).on(response{Sub: "stop"}, response{Sub: "start", Stderr: "start failed: instance \"CLUS1-00\" does not exist\n", Exit: 2})
	p := f.provider()
	if err := p.Stop(context.Background(), "CLUS1-00"); err != nil {
		t.Error(err)
	}
	err := p.Start(context.Background(), "CLUS1-00")
	if !errors.Is(err, provider.ErrNotFound) || err.Error() != `starting CLUS1-00 with multipass: instance "CLUS1-00" does not exist (exit 2)` {
		t.Errorf("Start: %v", err)
	}
	if argvs := f.argvs(); !reflect.DeepEqual(argvs, [][]string{{"stop", "CLUS1-00"}, {"start", "CLUS1-00"}}) {
		t.Errorf("argv: %q", argvs)
	}
}

func TestDelete(t *testing.T) {
	f := newFake(t).on(
		response{Sub: "delete", Contains: "CLUS1-00"},
		response{Sub: "delete", Contains: "GONE", Stderr: "delete failed: instance \"GONE\" does not exist\n", Exit: 2},
		response{Sub: "delete", Contains: "DOWN", Stderr: "delete failed: cannot connect to the multipass socket\n", Exit: 3},
	)
	p := f.provider()
	for _, n := range []string{"CLUS1-00", "GONE", "DOWN"} {
		p.records.create(record{Name: n, Group: "CLUS1"})
	}
	ctx := context.Background()
	if err := p.Delete(ctx, "CLUS1-00"); err != nil {
		t.Error(err)
	}
	if err := p.Delete(ctx, "GONE"); err != nil {
		t.Errorf("deleting a missing instance: %v", err)
	}
	err := p.Delete(ctx, "DOWN")
	if !errors.Is(err, ErrDaemonUnreachable) || err.Error() != "deleting DOWN with multipass: cannot connect to the multipass socket (exit 3)" {
		t.Errorf("Delete with the daemon down: %v", err)
	}
	want := [][]string{{"delete", "--purge", "CLUS1-00"}, {"delete", "--purge", "GONE"}, {"delete", "--purge", "DOWN"}}
	if argvs := f.argvs(); !reflect.DeepEqual(argvs, want) {
		t.Errorf("argv: %q (never the global purge)", argvs)
	}
	recs, _ := p.records.all()
	if _, ok := recs["DOWN"]; !ok || len(recs) != 1 {
		t.Errorf("records left: %v (only DOWN's, whose delete failed)", recs)
	}
}

// TestHasNoConsoleStub: multipass exposes no serial console, so the
// backend does not offer one (diagnostics check for the role).
func TestHasNoConsoleStub(t *testing.T) {
	var p any = newFake(t).provider()
	if _, ok := p.(interface {
		Console(context.Context, string) ([]byte, error)
	}); ok {
		t.Error("multipass offers a Console it cannot back")
	}
}

func TestDetect(t *testing.T) {
	ctx := context.Background()
	f := newFake(t).on(response{Sub: "version", Stdout: `{"multipass": "1.14.1", "multipassd": "1.14.1+mac"}`})
	if v, ok := Detect(ctx, f.bin()); v != "1.14.1+mac" || !ok {
		t.Errorf("daemon up: %q %v", v, ok)
	}
	if argvs := f.argvs(); !reflect.DeepEqual(argvs, [][]string{{"version", "--format", "json"}}) {
		t.Errorf("argv: %q", argvs)
	}
	f = newFake(t).on(response{Sub: "version", Stdout: `{"multipass": "1.14.1"}`})
	if v, ok := Detect(ctx, f.bin()); v != "1.14.1" || ok {
		t.Errorf("daemon down: %q %v", v, ok)
	}
	f = newFake(t).on(response{Sub: "version", Stderr: "boom", Exit: 2})
	if v, ok := Detect(ctx, f.bin()); v != "" || ok {
		t.Errorf("failing client: %q %v", v, ok)
	}
	if v, ok := Detect(ctx, filepath.Join(t.TempDir(), "multipass")); v != "" || ok {
		t.Errorf("missing binary: %q %v", v, ok)
	}
}

func TestNew(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("HOME", dir) // defaults must not touch the real home
	if _, err := New(Config{Binary: filepath.Join(dir, "absent"), StateDir: dir}); err == nil || !strings.Contains(err.Error(), "multipass") {
		t.Errorf("missing binary: %v", err)
	}
	f := newFake(t)
	if _, err := New(Config{Binary: f.bin(), StateDir: filepath.Join(dir, "s"), TempDir: filepath.Join(dir, "a:b")}); err == nil {
		t.Error("TempDir with ':': want an error")
	}
	p, err := New(Config{Binary: f.bin(), StateDir: filepath.Join(dir, "s")})
	if err != nil {
		t.Fatal(err)
	}
	if p.cfg.Image != "24.04" || p.cfg.LaunchTimeout != p.cfg.Intervals.Boot+p.cfg.Intervals.CloudInit || p.cfg.TempDir == "" || p.Name() != "multipass" || p.Close() != nil {
		t.Errorf("defaults: %+v", p.cfg)
	}
}

func TestDefaultTempDir(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	if got := defaultTempDir("/state"); got != "/state/tmp" {
		t.Errorf("without the snap: %s", got)
	}
	if err := os.MkdirAll(filepath.Join(home, "snap", "multipass"), 0o700); err != nil {
		t.Fatal(err)
	}
	if got, want := defaultTempDir("/state"), filepath.Join(home, "snap", "multipass", "common", "bcmtest"); got != want {
		t.Errorf("with the snap: %s, want %s", got, want)
	}
}
