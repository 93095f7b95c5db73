// Package artifact is the one on-disk store for things the harness builds
// once and reuses: the VM image, the booted snapshots made from it, and
// whatever else is keyed by a recipe. An entry is a directory published by
// rename after it is complete, so a reader never sees half of one; one lock
// per key makes concurrent runs (other processes too) build it once.
package artifact

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

// Store is a directory of entries named by key.
type Store struct {
	// Dir holds the entries, their locks and unfinished builds.
	Dir string
	// Kind names the entries in progress lines ("image", "snapshot").
	Kind string
	// Progress receives one line per step; nil discards them.
	Progress io.Writer
}

// Entry is a complete entry.
type Entry struct {
	Key string
	Dir string
	// Modified is when the entry was published.
	Modified time.Time
}

// Complete reports whether an entry's directory holds everything a reader
// needs; Get treats an entry that fails it as absent.
type Complete func(dir string) error

// Build fills tmp, an empty private directory, with a new entry.
type Build func(ctx context.Context, tmp string) error

// Path is where the entry for key lives once complete.
func (s Store) Path(key string) string { return filepath.Join(s.Dir, key) }

// Lookup returns the entry for key if it is complete.
func (s Store) Lookup(key string, complete Complete) (Entry, error) {
	dir := s.Path(key)
	fi, err := os.Stat(dir)
	if err != nil {
		return Entry{}, err
	}
	if err := complete(dir); err != nil {
		return Entry{}, err
	}
	return Entry{Key: key, Dir: dir, Modified: fi.ModTime()}, nil
}

// Get returns the entry for key, building it when absent. Only one caller
// builds; others wait for the lock (until ctx ends) and reuse the result. An
// interrupted or failed build leaves no entry and no temporary directory.
func (s Store) Get(ctx context.Context, key string, complete Complete, build Build) (Entry, error) {
	if e, err := s.Lookup(key, complete); err == nil {
		return e, nil
	}
	if err := validKey(key); err != nil {
		return Entry{}, err
	}
	if err := state.MkdirPrivate(s.Dir); err != nil {
		return Entry{}, err
	}
	lockPath := filepath.Join(s.Dir, key+".lock")
	lock, err := state.TryLock(lockPath)
	if errors.Is(err, state.ErrLocked) {
		s.printf("%s %s: another run is making it; waiting for that run\n", s.Kind, key)
		lock, err = LockContext(ctx, lockPath)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("locking %s %s: %w", s.Kind, key, err)
	}
	defer lock.Unlock()
	if e, err := s.Lookup(key, complete); err == nil {
		return e, nil // made by the run we waited for
	}
	s.removeStaleTemps(key)
	tmp := filepath.Join(s.Dir, key+".tmp-"+strconv.Itoa(os.Getpid()))
	os.RemoveAll(tmp)
	if err := state.MkdirPrivate(tmp); err != nil {
		return Entry{}, err
	}
	published := false
	defer func() {
		if !published {
			os.RemoveAll(tmp)
		}
	}()
	if err := build(ctx, tmp); err != nil {
		return Entry{}, err
	}
	if err := complete(tmp); err != nil {
		return Entry{}, fmt.Errorf("%s %s is incomplete after its build: %w", s.Kind, key, err)
	}
	final := s.Path(key)
	os.RemoveAll(final) // an incomplete entry
	if err := os.Rename(tmp, final); err != nil {
		return Entry{}, fmt.Errorf("publishing %s %s: %w", s.Kind, key, err)
	}
	published = true
	return s.Lookup(key, complete)
}

// List returns every complete entry, newest first.
func (s Store) List(complete Complete) ([]Entry, error) {
	des, err := os.ReadDir(s.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %ss in %s: %w", s.Kind, s.Dir, err)
	}
	var out []Entry
	for _, de := range des {
		if !de.IsDir() || strings.Contains(de.Name(), ".tmp-") {
			continue
		}
		if e, err := s.Lookup(de.Name(), complete); err == nil {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Modified.After(out[j].Modified) })
	return out, nil
}

// Remove deletes key's entry under its lock, so an entry being made or
// waited for is never removed from under its maker.
func (s Store) Remove(key string) error {
	if err := validKey(key); err != nil {
		return err
	}
	lock, err := state.TryLock(filepath.Join(s.Dir, key+".lock"))
	if err != nil {
		return fmt.Errorf("removing %s %s: %w", s.Kind, key, err)
	}
	defer lock.Unlock()
	if err := os.RemoveAll(s.Path(key)); err != nil {
		return fmt.Errorf("removing %s %s: %w", s.Kind, key, err)
	}
	return nil
}

// validKey keeps a key one plain path element.
func validKey(key string) error {
	if key == "" || key == "." || key == ".." || strings.ContainsAny(key, "/\x00") || strings.Contains(key, ".tmp-") {
		return fmt.Errorf("artifact key %q: must be one non-empty path element without \"/\" or \".tmp-\"", key)
	}
	return nil
}

func (s Store) printf(format string, args ...any) {
	if s.Progress != nil {
		fmt.Fprintf(s.Progress, format, args...)
	}
}

// removeStaleTemps deletes unfinished builds of key left by killed runs.
// Called under the key's lock, so no live build owns them.
func (s Store) removeStaleTemps(key string) {
	matches, _ := filepath.Glob(filepath.Join(s.Dir, key+".tmp-*"))
	for _, m := range matches {
		s.printf("%s %s: removing unfinished build %s\n", s.Kind, key, filepath.Base(m))
		os.RemoveAll(m)
	}
}

// LockContext waits for a file lock but gives up when ctx ends.
func LockContext(ctx context.Context, path string) (*state.Lock, error) {
	type res struct {
		l   *state.Lock
		err error
	}
	ch := make(chan res, 1)
	go func() { l, err := state.LockFile(path); ch <- res{l, err} }()
	select {
	case r := <-ch:
		return r.l, r.err
	case <-ctx.Done():
		go func() { r := <-ch; r.l.Unlock() }()
		return nil, ctx.Err()
	}
}
