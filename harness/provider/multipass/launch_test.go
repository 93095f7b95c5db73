package multipass

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
)

const userData = "#cloud-config\npackages: [jq]\n"

func launchInput() provider.LaunchInput {
	return provider.LaunchInput{Name: "CLUS1-02", Group: "CLUS1", CPUs: 2, MemoryMiB: 2048, DiskGiB: 20, UserData: []byte(userData)}
}

func runningInfo(name, ip string) string {
	return `{"errors": [], "info": {"` + name + `": {"cpu_count": "2", "ipv4": ["` + ip + `", "10.77.0.10"], "state": "Running"}}}`
}

// cloudInitDone answers CheckCloudInit's commands for a clean cloud-init.
var cloudInitDone = []response{
	{Sub: "exec", Contains: "result.json", Stdout: `{"v1": {"datasource": "DataSourceNoCloud", "init": {"errors": []}, "modules-final": {"errors": []}}}`},
}

func TestLaunch(t *testing.T) {
	f := newFake(t).on(response{Sub: "launch", Stdout: "Launched: CLUS1-02\n"}).on(cloudInitDone...).
		on(response{Sub: "info", Stdout: runningInfo("CLUS1-02", "10.109.154.30")})
	p := f.provider()
	info, err := p.Launch(context.Background(), launchInput())
	if err != nil {
		t.Fatal(err)
	}
	want := provider.Info{Name: "CLUS1-02", Group: "CLUS1", Provider: "multipass", State: provider.StateRunning,
		PrivateIP: "10.109.154.30", Addresses: []string{"10.109.154.30", "10.77.0.10"}, Owner: os.Getpid()}
	if !reflect.DeepEqual(info, want) {
		t.Errorf("Launch info:\n got %+v\nwant %+v", info, want)
	}

	calls := f.calls()
	if len(calls) != 3 {
		t.Fatalf("want launch, one cloud-init wait and info; got %v", f.argvs())
	}
	launch := calls[0]
	udPath := launch.Argv[10]
	// The default launch timeout covers the boot and cloud-init intervals.
	iv := wait.DefaultIntervals()
	wantTimeout := strconv.Itoa(int((iv.Boot + iv.CloudInit).Seconds()))
	wantArgv := []string{"launch", "--name", "CLUS1-02", "--cpus", "2", "--memory", "2048M", "--disk", "20G",
		"--cloud-init", udPath, "--timeout", wantTimeout, "24.04"}
	if !reflect.DeepEqual(launch.Argv, wantArgv) {
		t.Errorf("launch argv:\n got %q\nwant %q", launch.Argv, wantArgv)
	}
	if filepath.Dir(udPath) != p.cfg.TempDir {
		t.Errorf("user-data at %s, want it in %s", udPath, p.cfg.TempDir)
	}
	if launch.UserData != userData || launch.UserDataMode != 0o600 {
		t.Errorf("user-data seen by multipass: %q mode %o", launch.UserData, launch.UserDataMode)
	}
	if _, err := os.Stat(udPath); !os.IsNotExist(err) {
		t.Errorf("user-data file left behind: %v", err)
	}
	for i, want := range [][]string{
		{"exec", "CLUS1-02", "--", "sudo", "-n", "--", "sh", "-c", "while [ ! -e /run/cloud-init/result.json ]; do sleep 0.2; done; cat /run/cloud-init/status.json"},
		{"info", "CLUS1-02", "--format", "json"},
	} {
		if !reflect.DeepEqual(calls[i+1].Argv, want) {
			t.Errorf("call %d: got %q, want %q", i+1, calls[i+1].Argv, want)
		}
	}

	rec, err := p.records.load("CLUS1-02")
	if err != nil || rec.Group != "CLUS1" || rec.Owner != os.Getpid() || rec.Image != "24.04" {
		t.Errorf("record: %+v, %v", rec, err)
	}
	fi, err := os.Stat(p.cfg.StateDir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode: %v %v", fi.Mode(), err)
	}
}

func TestLaunchGroupDefaultsToName(t *testing.T) {
	f := newFake(t).on(response{Sub: "launch"}).on(cloudInitDone...).on(response{Sub: "info", Stdout: runningInfo("SOLO", "10.1.2.3")})
	in := launchInput()
	in.Name, in.Group = "SOLO", ""
	info, err := f.provider().Launch(context.Background(), in)
	if err != nil || info.Group != "SOLO" {
		t.Errorf("Launch: %+v, %v", info, err)
	}
}

func TestLaunchAlreadyExists(t *testing.T) {
	f := newFake(t).on(response{Sub: "launch", Stderr: "launch failed: instance \"CLUS1-02\" already exists\n", Exit: 2})
	p := f.provider()
	_, err := p.Launch(context.Background(), launchInput())
	if err == nil || err.Error() != `launching CLUS1-02 with multipass: instance "CLUS1-02" already exists (exit 2)` {
		t.Fatalf("error: %v", err)
	}
	if !errors.Is(err, ErrAlreadyExists) || !errors.Is(err, ErrCommandFailed) || errors.Is(err, provider.ErrNotFound) {
		t.Errorf("errors.Is mismatch for %v", err)
	}
	// The instance is someone else's: no delete, and our record is gone.
	if argvs := f.argvs(); len(argvs) != 1 {
		t.Errorf("want only the launch; got %q", argvs)
	}
	if _, err := p.records.load("CLUS1-02"); !os.IsNotExist(err) {
		t.Errorf("record left behind: %v", err)
	}
}

func TestLaunchRecordedInstanceExists(t *testing.T) {
	f := newFake(t).on(response{Sub: "info", Stdout: runningInfo("CLUS1-02", "10.1.2.3")})
	p := f.provider()
	p.records.create(record{Name: "CLUS1-02", Group: "CLUS1", Owner: os.Getpid()})
	_, err := p.Launch(context.Background(), launchInput())
	if !errors.Is(err, ErrAlreadyExists) || !strings.Contains(err.Error(), `launching CLUS1-02 with multipass: instance "CLUS1-02" already exists (group CLUS1)`) {
		t.Fatalf("error: %v", err)
	}
	if argvs := f.argvs(); len(argvs) != 1 || argvs[0][0] != "info" {
		t.Errorf("want only info; got %q", argvs)
	}
	if rec, err := p.records.load("CLUS1-02"); err != nil || rec.Group != "CLUS1" {
		t.Errorf("existing record changed: %+v %v", rec, err)
	}
}

func TestLaunchReplacesStaleRecord(t *testing.T) {
	f := newFake(t).
		on(response{Sub: "info", Stderr: "info failed: instance \"CLUS1-02\" does not exist\n", Exit: 2, Once: true}).
		on(response{Sub: "launch"}).on(cloudInitDone...).
		on(response{Sub: "info", Stdout: runningInfo("CLUS1-02", "10.1.2.3")})
	p := f.provider()
	p.records.create(record{Name: "CLUS1-02", Group: "OLD", Owner: 0}) // launcher gone
	if _, err := p.Launch(context.Background(), launchInput()); err != nil {
		t.Fatal(err)
	}
	if rec, _ := p.records.load("CLUS1-02"); rec.Group != "CLUS1" || rec.Owner != os.Getpid() {
		t.Errorf("stale record not replaced: %+v", rec)
	}
}

func TestLaunchCloudInitFailure(t *testing.T) {
	f := newFake(t).on(response{Sub: "launch"},
		response{Sub: "exec", Contains: "result.json", Stdout: `{"v1": {"modules-config": {"errors": ["('apt_configure', KeyError('sources'))"]}}}`},
		response{Sub: "exec", Contains: "cloud-init-output.log", Stdout: "E: Unable to locate package\n"},
		response{Sub: "info", Stdout: runningInfo("CLUS1-02", "10.1.2.3")})
	p := f.provider()
	info, err := p.Launch(context.Background(), launchInput())
	var ce *provider.CloudInitError
	if !errors.As(err, &ce) {
		t.Fatalf("want a *CloudInitError, got %v", err)
	}
	if ce.VM != "CLUS1-02" || ce.Status != "error" || !reflect.DeepEqual(ce.FailedModules, []string{"apt_configure"}) || ce.OutputTail != "E: Unable to locate package\n" {
		t.Errorf("CloudInitError: %+v", ce)
	}
	if info.Name != "CLUS1-02" || info.PrivateIP != "10.1.2.3" {
		t.Errorf("info of the failed VM: %+v", info)
	}
	for _, a := range f.argvs() {
		if a[0] == "delete" {
			t.Errorf("the VM must be left for the caller; got %q", a)
		}
	}
	if _, err := p.records.load("CLUS1-02"); err != nil {
		t.Errorf("record must stay for the caller's Delete: %v", err)
	}
}

func TestLaunchTimeout(t *testing.T) {
	f := newFake(t).on(response{Sub: "launch", Stderr: "Timed out waiting for instance launch.\n", Exit: 5},
		response{Sub: "exec", Contains: "cloud-init-output.log", Stdout: "still installing\n"})
	p := f.provider()
	_, err := p.Launch(context.Background(), launchInput())
	var ce *provider.CloudInitError
	if !errors.As(err, &ce) || !errors.Is(err, ErrTimeout) {
		t.Fatalf("want a CloudInitError caused by a timeout, got %v", err)
	}
	if ce.OutputTail != "still installing\n" || !strings.Contains(err.Error(), "launching CLUS1-02 with multipass: Timed out waiting for instance launch. (exit 5)") {
		t.Errorf("error: %v", err)
	}
	if _, err := p.records.load("CLUS1-02"); err != nil {
		t.Errorf("record must stay: %v", err)
	}
}

func TestLaunchFailureCleansUp(t *testing.T) {
	f := newFake(t).on(response{Sub: "launch", Stderr: "launch failed: Remote \"\" is unknown or unreachable.\n", Exit: 2},
		response{Sub: "delete", Stderr: "delete failed: instance \"CLUS1-02\" does not exist\n", Exit: 2})
	p := f.provider()
	_, err := p.Launch(context.Background(), launchInput())
	if err == nil || err.Error() != `launching CLUS1-02 with multipass: Remote "" is unknown or unreachable. (exit 2)` || !errors.Is(err, ErrCommandFailed) {
		t.Fatalf("error: %v", err)
	}
	argvs := f.argvs()
	if len(argvs) != 2 || !reflect.DeepEqual(argvs[1], []string{"delete", "--purge", "CLUS1-02"}) {
		t.Errorf("want launch then delete --purge; got %q", argvs)
	}
	if _, err := p.records.load("CLUS1-02"); !os.IsNotExist(err) {
		t.Errorf("record left behind: %v", err)
	}
}

func TestLaunchDaemonDown(t *testing.T) {
	f := newFake(t).on(response{Stderr: "launch failed: cannot connect to the multipass socket\n", Exit: 3})
	_, err := f.provider().Launch(context.Background(), launchInput())
	if !errors.Is(err, ErrDaemonUnreachable) || !strings.HasPrefix(err.Error(), "launching CLUS1-02 with multipass: cannot connect to the multipass socket (exit 3)") ||
		!strings.Contains(err.Error(), "cleanup also failed: deleting CLUS1-02 with multipass") {
		t.Errorf("error: %v", err)
	}
}

func TestLaunchValidates(t *testing.T) {
	f := newFake(t)
	p := f.provider()
	for _, mod := range []func(*provider.LaunchInput){
		func(in *provider.LaunchInput) { in.Name = "-rf" },
		func(in *provider.LaunchInput) { in.Group = "bad group" },
		func(in *provider.LaunchInput) { in.CPUs = 0 },
		func(in *provider.LaunchInput) { in.MemoryMiB = 100 },
		func(in *provider.LaunchInput) { in.DiskGiB = 2 },
		func(in *provider.LaunchInput) { in.UserData = nil },
	} {
		in := launchInput()
		mod(&in)
		if _, err := p.Launch(context.Background(), in); err == nil {
			t.Errorf("Launch(%+v): want an error", in)
		}
	}
	if argvs := f.argvs(); len(argvs) != 0 {
		t.Errorf("invalid input must not reach multipass; got %q", argvs)
	}
}

func TestTimeoutSeconds(t *testing.T) {
	if got := timeoutSeconds(context.Background(), 20*time.Minute); got != 1200 {
		t.Errorf("no deadline: %d", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if got := timeoutSeconds(ctx, 20*time.Minute); got < 55 || got > 58 {
		t.Errorf("1m deadline: %d", got)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	if got := timeoutSeconds(ctx2, 20*time.Minute); got != 1 {
		t.Errorf("1s deadline: %d", got)
	}
}
