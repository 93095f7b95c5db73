// Package state holds the harness's on-disk bookkeeping: where the state and
// cache directories are, and file locks shared between concurrent runs.
// Everything a run creates is recorded here first, so a crashed or killed run
// can be found and swept by the next one.
package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Dirs are the roots the harness writes to. Zero values are filled by Default.
type Dirs struct {
	// State holds per-VM records, overlays, seeds and keys (mode 0700).
	State string
	// Cache holds built images and the apt cache; it survives between runs.
	Cache string
}

// Default returns the directories from BCMTEST_STATE_DIR / BCMTEST_CACHE_DIR,
// or XDG-style defaults under the user's home and cache directories.
func Default() (Dirs, error) {
	d := Dirs{State: os.Getenv("BCMTEST_STATE_DIR"), Cache: os.Getenv("BCMTEST_CACHE_DIR")}
	if d.State == "" {
		base := os.Getenv("XDG_STATE_HOME")
		if base == "" {
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

// MkdirPrivate creates dir (and parents) with mode 0700 and tightens an
// existing one, since state holds private keys and join material.
func MkdirPrivate(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating directory %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("setting mode 0700 on %s: %w", dir, err)
	}
	return nil
}

// Lock is an exclusive advisory lock on a file; the kernel drops it when the
// holder dies, so a killed run never leaves a lock behind.
type Lock struct{ f *os.File }

// ErrLocked is returned by TryLock when another process holds the lock.
var ErrLocked = errors.New("locked by another process")

func openLock(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating lock directory for %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock %s: %w", path, err)
	}
	return f, nil
}

// LockFile blocks until it holds the lock at path.
func LockFile(path string) (*Lock, error) {
	f, err := openLock(path)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// TryLock takes the lock at path or returns ErrLocked at once.
func TryLock(path string) (*Lock, error) {
	f, err := openLock(path)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// Unlock releases the lock; safe to call on nil.
func (l *Lock) Unlock() {
	if l == nil || l.f == nil {
		return
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
