package state

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

type rec struct {
	Name string `json:"name"`
	N    int    `json:"n"`
}

func TestSaveJSONReplacesAtomicallyWithAPrivateFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "vm.json")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := SaveJSON(p, rec{"a", 1}); err != nil {
		t.Fatal(err)
	}
	var got rec
	if err := LoadJSON(p, &got); err != nil || got != (rec{"a", 1}) {
		t.Fatalf("LoadJSON = %+v, %v", got, err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, %v; want 0600 even over a 0644 file", fi.Mode().Perm(), err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if err := SaveJSON(filepath.Join(dir, "missing", "x.json"), rec{}); err == nil {
		t.Error("saving into a missing directory succeeded")
	}
}

func TestCreateJSONHasOneWinner(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "n.json")
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = CreateJSON(p, rec{"n", i}) }()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, fs.ErrExist):
			t.Errorf("loser's error %v does not match fs.ErrExist", err)
		}
	}
	if won != 1 {
		t.Errorf("%d creators won", won)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestLoadJSONTellsMissingFromBad(t *testing.T) {
	dir := t.TempDir()
	var r rec
	if err := LoadJSON(filepath.Join(dir, "none.json"), &r); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{"), 0o600)
	if err := LoadJSON(bad, &r); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("bad: %v", err)
	}
}
