package multipass

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

// record is what the harness knows about a VM that multipass does not: its
// group and which process launched it. It is written before `multipass
// launch` runs, so a killed run leaves something the next one can sweep.
type record struct {
	Name    string    `json:"name"`
	Group   string    `json:"group"`
	Image   string    `json:"image"`
	Owner   int       `json:"owner"`
	Created time.Time `json:"created"`
}

// store keeps one <name>.json per VM directly in dir.
type store struct{ dir string }

func (s store) path(name string) string { return filepath.Join(s.dir, name+".json") }

// create writes r unless a record for r.Name exists (fs.ErrExist then).
// The record appears whole or not at all, and two launches cannot both
// claim a name.
func (s store) create(r record) error {
	if err := state.CreateJSON(s.path(r.Name), r); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("record of %s: %w", r.Name, fs.ErrExist)
		}
		return fmt.Errorf("saving record of %s: %w", r.Name, err)
	}
	return nil
}

// load reads the record of name; fs.ErrNotExist when there is none.
func (s store) load(name string) (record, error) {
	var r record
	err := state.LoadJSON(s.path(name), &r)
	return r, err
}

// all reads every record, keyed by VM name.
func (s store) all() (map[string]record, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("listing VM records in %s: %w", s.dir, err)
	}
	out := map[string]record{}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".json") {
			continue
		}
		name := strings.TrimSuffix(n, ".json")
		r, err := s.load(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted while we listed
		}
		if err != nil {
			return nil, err
		}
		r.Name = name // the file name is what create claimed
		out[name] = r
	}
	return out, nil
}

// remove deletes the record of name; a missing record is not an error.
func (s store) remove(name string) error {
	if err := os.Remove(s.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing record of %s: %w", name, err)
	}
	return nil
}
