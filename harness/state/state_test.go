package state

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

func mode(t *testing.T, p string) fs.FileMode {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode() & (fs.ModePerm | fs.ModeSticky)
}

func TestDefaultRejectsRelativeRoots(t *testing.T) {
	abs := t.TempDir()
	for _, c := range []struct{ state, cache, want string }{
		{"rel/state", abs, `BCMTEST_STATE_DIR="rel/state": must be an absolute path`},
		{abs, "./cache", `BCMTEST_CACHE_DIR="./cache": must be an absolute path`},
	} {
		t.Setenv("BCMTEST_STATE_DIR", c.state)
		t.Setenv("BCMTEST_CACHE_DIR", c.cache)
		if _, err := Default(); err == nil || err.Error() != c.want {
			t.Errorf("state %q cache %q: want %q, got %v", c.state, c.cache, c.want, err)
		}
	}
}

func TestDefaultUsesAnExistingRootAsItIs(t *testing.T) {
	shared := filepath.Join(t.TempDir(), "tmp")
	if err := os.Mkdir(shared, 0o700); err != nil {
		t.Fatal(err)
	}
	// Like /tmp: world-writable and sticky.
	if err := os.Chmod(shared, 0o777|fs.ModeSticky); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(t.TempDir(), "new", "cache")
	t.Setenv("BCMTEST_STATE_DIR", shared)
	t.Setenv("BCMTEST_CACHE_DIR", cache)
	d, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if d.State != shared || d.Cache != cache {
		t.Errorf("dirs = %+v", d)
	}
	if m := mode(t, shared); m != 0o777|fs.ModeSticky {
		t.Errorf("existing state root changed to %v", m)
	}
	for _, p := range []string{cache, filepath.Dir(cache)} {
		if m := mode(t, p); m != 0o700 {
			t.Errorf("created %s with %v, want 0700", p, m)
		}
	}
}

func TestMkdirPrivateCreatesMissingDirsPrivateAndLeavesOthersAlone(t *testing.T) {
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	top := filepath.Join(root, "a")
	if err := os.Mkdir(top, 0o750); err != nil {
		t.Fatal(err)
	}
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	deep := filepath.Join(top, "b", "c")
	if err := MkdirPrivate(deep); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]fs.FileMode{root: 0o755, top: 0o750, filepath.Join(top, "b"): 0o700, deep: 0o700} {
		if m := mode(t, p); m != want {
			t.Errorf("%s: mode %v, want %v", p, m, want)
		}
	}
	// Again, on what now exists: nothing changes.
	if err := MkdirPrivate(top); err != nil || mode(t, top) != 0o750 {
		t.Errorf("second call: %v, mode %v", err, mode(t, top))
	}
	file := filepath.Join(root, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := MkdirPrivate(filepath.Join(file)); err == nil || !strings.Contains(err.Error(), "a file of that name exists") {
		t.Errorf("directory over a file: %v", err)
	}
}

func TestTryLockNamesTheHolderInThisProcess(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.lock")
	l, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	_, err = TryLock(p)
	var le *LockedError
	if !errors.As(err, &le) || le.PID != os.Getpid() || !errors.Is(err, ErrLocked) {
		t.Fatalf("second TryLock: %v", err)
	}
}

// A child process (this test binary) holds the lock named by this variable
// until its stdin closes.
const holdEnv = "BCMTEST_STATE_TEST_HOLD"

func TestMain(m *testing.M) {
	if p := os.Getenv(holdEnv); p != "" {
		l, err := TryLock(p)
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println("locked")
		os.Stdin.Read(make([]byte, 1))
		l.Unlock()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestTryLockNamesAHolderProcess(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.lock")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), holdEnv+"="+p)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "locked\n" {
		t.Fatalf("holder: %q", line)
	}
	_, err = TryLock(p)
	var le *LockedError
	if !errors.As(err, &le) || le.PID != cmd.Process.Pid {
		t.Fatalf("want the holder's pid %d, got %v", cmd.Process.Pid, err)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("locked by process %d", cmd.Process.Pid)) {
		t.Errorf("message %q", err)
	}
	if cmdline := ProcessCommand(cmd.Process.Pid); !strings.Contains(cmdline, filepath.Base(os.Args[0])) {
		t.Errorf("ProcessCommand = %q", cmdline)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	l, err := TryLock(p)
	if err != nil {
		t.Fatalf("after the holder exited: %v", err)
	}
	l.Unlock()
}

// blockedOn reports whether /proc/locks shows a process waiting for a flock
// on the file with this inode.
func blockedOn(ino uint64) bool {
	b, _ := os.ReadFile("/proc/locks")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "->") && strings.Contains(l, fmt.Sprintf(":%d ", ino)) {
			return true
		}
	}
	return false
}

func TestUnlockRemovesTheFileAndAWaiterLocksTheNewOne(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.lock")
	first, err := LockFile(p)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	ino := st.Sys().(*syscall.Stat_t).Ino
	got := make(chan *Lock, 1)
	go func() {
		l, err := LockFile(p)
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	for !blockedOn(ino) {
		select {
		case l := <-got:
			t.Fatalf("second LockFile returned while the first held the lock: %v", l)
		default:
			runtime.Gosched()
		}
	}
	first.Unlock()
	second := <-got
	defer second.Unlock()
	if st, err := os.Stat(p); err != nil {
		t.Fatalf("the waiter holds a lock with no file at %s: %v", p, err)
	} else if st.Sys().(*syscall.Stat_t).Ino == ino {
		t.Log("the file system reused the inode number")
	}
	// The waiter must hold the file now at the path, not the removed one:
	// a flock on the current file (bypassing this process's bookkeeping)
	// must fail.
	if l, err := acquire(p, syscall.LOCK_EX|syscall.LOCK_NB); !errors.Is(err, ErrLocked) {
		l.Unlock()
		t.Fatalf("a second holder got the lock: %v", err)
	}
	second.Unlock()
	if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("lock file left after Unlock: %v", err)
	}
}
