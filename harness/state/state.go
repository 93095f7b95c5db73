// Package state holds the harness's on-disk bookkeeping: where the state and
// cache directories are, and file locks shared between concurrent runs.
// Everything a run creates is recorded here first, so a crashed or killed run
// can be found and swept by the next one.
package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Dirs are the roots the harness writes to. Zero values are filled by Default.
type Dirs struct {
	// State holds per-VM records, overlays, seeds and keys, in
	// subdirectories the harness creates 0700.
	State string
	// Cache holds built images and the apt cache; it survives between runs.
	Cache string
}

// Default returns the directories from BCMTEST_STATE_DIR / BCMTEST_CACHE_DIR,
// or XDG-style defaults under the user's home and cache directories. Each
// is created 0700 if missing; an existing one (BCMTEST_STATE_DIR=/tmp) is
// used as it is, since what the harness keeps in it lives in subdirectories
// it creates 0700.
func Default() (Dirs, error) {
	d := Dirs{State: os.Getenv("BCMTEST_STATE_DIR"), Cache: os.Getenv("BCMTEST_CACHE_DIR")}
	for _, v := range []struct{ name, value string }{{"BCMTEST_STATE_DIR", d.State}, {"BCMTEST_CACHE_DIR", d.Cache}} {
		// A relative root would move with the working directory, and a run
		// started elsewhere would not find (or sweep) what this one left.
		if v.value != "" && !filepath.IsAbs(v.value) {
			return d, fmt.Errorf("%s=%q: must be an absolute path", v.name, v.value)
		}
	}
	if d.State == "" {
		base := os.Getenv("XDG_STATE_HOME")
		if !filepath.IsAbs(base) { // the XDG spec says to ignore a relative one
			home, err := os.UserHomeDir()
			if err != nil {
				return d, fmt.Errorf("finding the state directory: %w", err)
			}
			base = filepath.Join(home, ".local", "state")
		}
		d.State = filepath.Join(base, "bcmtest")
	}
	if d.Cache == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return d, fmt.Errorf("finding the cache directory: %w", err)
		}
		d.Cache = filepath.Join(base, "bcmtest")
	}
	for _, p := range []string{d.State, d.Cache} {
		if err := MkdirPrivate(p); err != nil {
			return d, err
		}
	}
	return d, nil
}

// MkdirPrivate creates dir and any missing parents with mode 0700, since
// state holds private keys and join material. Directories that already
// exist are left as they are: tightening one the harness did not create
// (BCMTEST_STATE_DIR=/tmp) would break it for everyone else.
func MkdirPrivate(dir string) error {
	st, err := os.Stat(dir)
	if err == nil {
		if !st.IsDir() {
			return fmt.Errorf("creating directory %s: a file of that name exists", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("creating directory %s: %w", dir, err)
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := MkdirPrivate(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o700); errors.Is(err, fs.ErrExist) {
		return MkdirPrivate(dir) // made by a concurrent run; check it is a directory
	} else if err != nil {
		return fmt.Errorf("creating directory %s: %w", dir, err)
	}
	// Exactly 0700 whatever the umask, on the directory this call made.
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("setting mode 0700 on %s: %w", dir, err)
	}
	return nil
}

// Lock is an exclusive advisory lock on a file; the kernel drops it when the
// holder dies, so a killed run never leaves a lock behind.
//
// The lock file exists while someone holds or waits for it: the holder
// removes it as it unlocks (still holding it), and a locker that finds its
// file was removed under it starts again on the current one. Nothing else
// may remove a lock file: whoever then created a new one could lock it
// while the old holder still held the old one.
type Lock struct {
	f    *os.File
	path string
}

// ErrLocked is returned by TryLock when another process holds the lock.
var ErrLocked = errors.New("locked by another process")

// LockedError is TryLock's error when the lock is held; it matches
// ErrLocked with errors.Is.
type LockedError struct {
	Path string
	// PID is the holder, this process's own pid when it holds the lock
	// itself, or 0 when unknown (between the holder's flock and its write).
	PID int
}

func (e *LockedError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("%s: locked by process %d", e.Path, e.PID)
	}
	return fmt.Sprintf("%s: %v", e.Path, ErrLocked)
}

func (e *LockedError) Unwrap() error { return ErrLocked }

// held maps the locks this process holds by path, so that TryLock can tell
// a caller that its own process is the holder.
var held = struct {
	sync.Mutex
	m map[string]*Lock
}{m: map[string]*Lock{}}

func lockKey(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return filepath.Clean(path)
}

func openLock(path string) (*os.File, error) {
	if err := MkdirPrivate(filepath.Dir(path)); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock %s: %w", path, err)
	}
	return f, nil
}

// current reports whether f is still the file at path: a holder that
// unlocked removed it, and whoever locked the removed file must start over.
func current(f *os.File, path string) (bool, error) {
	fst, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("locking %s: %w", path, err)
	}
	pst, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("locking %s: %w", path, err)
	}
	return os.SameFile(fst, pst), nil
}

// acquire opens path and flocks it with how (LOCK_EX, maybe LOCK_NB) until
// it holds the file currently at path.
func acquire(path string, how int) (*Lock, error) {
	for {
		f, err := openLock(path)
		if err != nil {
			return nil, err
		}
		if err := syscall.Flock(int(f.Fd()), how); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, &LockedError{Path: path, PID: holder(path)}
			}
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		ok, err := current(f, path)
		if err != nil {
			f.Close()
			return nil, err
		}
		if !ok {
			f.Close() // removed by its last holder; lock the new one
			continue
		}
		// Who holds it, for the message of whoever finds it locked.
		if f.Truncate(0) == nil {
			f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		}
		l := &Lock{f: f, path: path}
		held.Lock()
		held.m[lockKey(path)] = l
		held.Unlock()
		return l, nil
	}
}

// holder returns the pid of the process holding the lock at path, or 0.
func holder(path string) int {
	held.Lock()
	_, here := held.m[lockKey(path)]
	held.Unlock()
	if here {
		return os.Getpid()
	}
	b, err := os.ReadFile(path)
	if err != nil || !strings.HasSuffix(string(b), "\n") {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSuffix(string(b), "\n"))
	// Our own pid here is left from a lock this process already released.
	if err != nil || pid == os.Getpid() || !ProcessAlive(pid) {
		return 0
	}
	return pid
}

// LockFile blocks until it holds the lock at path.
func LockFile(path string) (*Lock, error) {
	return acquire(path, syscall.LOCK_EX)
}

// TryLock takes the lock at path or returns a *LockedError at once.
func TryLock(path string) (*Lock, error) {
	held.Lock()
	_, here := held.m[lockKey(path)]
	held.Unlock()
	if here {
		// flock would refuse too (another open file); say who holds it.
		return nil, &LockedError{Path: path, PID: os.Getpid()}
	}
	return acquire(path, syscall.LOCK_EX|syscall.LOCK_NB)
}

// Unlock removes the lock file and releases the lock; safe to call on nil
// and more than once.
func (l *Lock) Unlock() {
	if l == nil || l.f == nil {
		return
	}
	held.Lock()
	if held.m[lockKey(l.path)] == l {
		delete(held.m, lockKey(l.path))
	}
	held.Unlock()
	// Still holding it, so no one else holds the file at path, unless
	// something outside these rules replaced it.
	if ok, _ := current(l.f, l.path); ok {
		os.Remove(l.path)
	}
	syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
	l.f = nil
}

// ProcessAlive reports whether pid names a live process.
func ProcessAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// ProcessCommand returns pid's command line for messages ("" if unknown).
func ProcessCommand(pid int) string {
	if pid <= 0 {
		return ""
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return ""
	}
	cmd := strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")
	if len(cmd) > 200 {
		cmd = cmd[:200] + "..."
	}
	return cmd
}
