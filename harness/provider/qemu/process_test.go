package qemu

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

// fakeQEMUScript puts a qemu-system-x86_64 on PATH that records its pid
// and then runs body (with its arguments as "$@").
func fakeQEMUScript(t *testing.T, body string) (pids string) {
	t.Helper()
	bin := t.TempDir()
	pids = filepath.Join(bin, "pids")
	// It answers the version and machine-type probes as qemu 7.2 does.
	probes := `case "$*" in
--version) echo "QEMU emulator version 7.2.22"; exit 0 ;;
"-machine help") echo "q35                  Standard PC (Q35 + ICH9, 2009) (alias of pc-q35-7.2)"; exit 0 ;;
esac
`
	script := "#!/bin/sh\n" + probes + "echo $$ >> '" + pids + "'\n" + body + "\n"
	if err := os.WriteFile(filepath.Join(bin, qemuBinary), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	return pids
}

func startedPIDs(t *testing.T, file string) []int {
	t.Helper()
	b, _ := os.ReadFile(file)
	var out []int
	for _, f := range strings.Fields(string(b)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

func testRecord(t *testing.T) *record {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "CLUS1-00")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	r := &record{Name: "CLUS1-00", Group: "CLUS1", Dir: dir, CPUs: 1, MemoryMiB: 128, DiskGiB: 8, PrivateIP: "10.77.0.10",
		SegmentPort: 21000, MACs: macs("CLUS1", "CLUS1-00"), Accel: "tcg"}
	if err := r.save(); err != nil {
		t.Fatal(err)
	}
	return r
}

func testProvider(t *testing.T) *Provider {
	t.Helper()
	iv := wait.Intervals{}.WithDefaults()
	// Generous enough for a real switch or qemu stand-in to start on a
	// host busy with VMs (500 ms failed a run once), short enough that the
	// give-up tests stay quick.
	iv.ProcessStart = wait.Interval{Timeout: 3 * time.Second, Poll: 20 * time.Millisecond}
	iv.ProcessExit = wait.Interval{Timeout: 2 * time.Second, Poll: 20 * time.Millisecond}
	return &Provider{cfg: Config{Intervals: iv, Log: testLog{t}}, snapshotFailed: map[string]error{}, imageArchive: map[string]string{}}
}

type testLog struct{ t *testing.T }

func (l testLog) Write(b []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// gone says whether pid is neither running nor a zombie waiting for this
// process to reap it.
func gone(pid int) (bool, string) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true, ""
	}
	return false, string(b)
}

// openFiles lists this process's descriptors open on files under dir.
func openFiles(t *testing.T, dir string) []string {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(target, dir) {
			out = append(out, fd.Name()+" -> "+target)
		}
	}
	return out
}

// startQEMUWithin runs startQEMU and fails the test if it has not returned
// within limit (instead of hanging the test binary).
func startQEMUWithin(t *testing.T, p *Provider, rec *record, limit time.Duration, pids string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.startQEMU(context.Background(), rec, image.Image{Kernel: "/k", Initrd: "/i"}, 0, "") }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		for _, pid := range startedPIDs(t, pids) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		<-done
		t.Fatalf("startQEMU still waiting after %s with qemu running and no pidfile", limit)
		return nil
	}
}

// TestStartQEMUReapsQEMUAndClosesItsLogWhenTheRecordCannotBeSaved: the
// record's save after qemu started fails; startQEMU must kill qemu, reap it
// (no zombie) and close qemu.log.
func TestStartQEMUReapsQEMUAndClosesItsLogWhenTheRecordCannotBeSaved(t *testing.T) {
	pids := fakeQEMUScript(t, "exec sleep 300")
	p := testProvider(t)
	rec := testRecord(t)
	// vm.json becomes a non-empty directory: the save's rename onto it fails.
	os.Remove(rec.path("vm.json"))
	if err := os.MkdirAll(rec.path("vm.json/x"), 0o700); err != nil {
		t.Fatal(err)
	}
	err := startQEMUWithin(t, p, rec, 20*time.Second, pids)
	if err == nil || !strings.Contains(err.Error(), "saving state of CLUS1-00") {
		t.Fatalf("startQEMU = %v, want the save's error", err)
	}
	// The process startQEMU started, not the script's own record of its
	// pid: the save fails at once and the kill can come before the script
	// has run a line (seen on a host busy with VMs).
	if rec.PID == 0 {
		t.Fatal("startQEMU failed before it started qemu, want the save after the start to fail")
	}
	if ok, stat := gone(rec.PID); !ok {
		t.Errorf("qemu (pid %d) left behind: %s", rec.PID, stat)
	}
	if started := startedPIDs(t, pids); len(started) > 1 {
		t.Errorf("qemu started %d times, want once", len(started))
	}
	if open := openFiles(t, rec.Dir); len(open) > 0 {
		t.Errorf("descriptors left open: %v", open)
	}
}

// TestStartQEMUGivesUpOnAPidfileThatNeverComes: a qemu that runs but never
// writes its pidfile must not hold startQEMU forever (its context has no
// deadline here); qemu is killed, reaped and its log closed.
func TestStartQEMUGivesUpOnAPidfileThatNeverComes(t *testing.T) {
	pids := fakeQEMUScript(t, "exec sleep 300")
	p := testProvider(t)
	rec := testRecord(t)
	start := time.Now()
	err := startQEMUWithin(t, p, rec, 20*time.Second, pids)
	if err == nil || !strings.Contains(err.Error(), "pidfile") {
		t.Fatalf("startQEMU = %v, want a timeout naming the pidfile", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s with a %s process-start timeout", d, p.cfg.Intervals.ProcessStart.Timeout)
	}
	for _, pid := range startedPIDs(t, pids) {
		if ok, stat := gone(pid); !ok {
			t.Errorf("qemu (pid %d) left behind: %s", pid, stat)
		}
	}
	if open := openFiles(t, rec.Dir); len(open) > 0 {
		t.Errorf("descriptors left open: %v", open)
	}
}
