package state

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Records are JSON files a later run reads to find what an earlier one
// made; a reader must never see half of one, and they name VMs and owners,
// so they are private.

// SaveJSON writes v to path as indented JSON, atomically: a private (0600)
// temporary file in the same directory, synced, then renamed over path. A
// crash leaves the old record or the new one, never a mix.
func SaveJSON(path string, v any) error {
	tmp, err := writeTemp(path, v)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("saving %s: %w", path, err)
	}
	return nil
}

// CreateJSON writes v to path unless a file is there already, in which
// case the error matches fs.ErrExist. The record is hard-linked into place
// from a temporary file, so it appears whole or not at all and two
// creators of one path cannot both win.
func CreateJSON(path string, v any) error {
	tmp, err := writeTemp(path, v)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	return nil
}

// LoadJSON reads path into v. A missing file is an error matching
// fs.ErrNotExist, so callers can tell "no record" from a bad one.
func LoadJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err // a *fs.PathError, which names path
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	return nil
}

// writeTemp writes v to a new file beside path (CreateTemp makes it 0600), named .BASE.tmp-*:
// hidden, so listings of records skip it.
func writeTemp(path string, v any) (string, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return "", fmt.Errorf("saving %s: %w", path, err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return "", fmt.Errorf("saving %s: %w", path, err)
	}
	_, werr := f.Write(append(b, '\n'))
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("saving %s: %w", path, werr)
	}
	return f.Name(), nil
}
