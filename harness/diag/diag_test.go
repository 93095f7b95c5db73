package diag

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/fakeprovider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/sshx"
)

func TestCollectWritesPrivateDirsAndFiles(t *testing.T) {
	fp := fakeprovider.New()
	fp.Add(provider.Info{Name: "CLUS1-00", Group: "CLUS1"})
	fp.ExecFunc = func(name string, argv []string) provider.ExecResult {
		return provider.ExecResult{Stdout: []byte("output of " + strings.Join(argv, " ") + "\n")}
	}
	dir := filepath.Join(t.TempDir(), "artifacts", "run1")
	// Left by an earlier collection with a looser mode: replaced, not kept.
	old := filepath.Join(dir, "CLUS1-00", "zpool-status.txt")
	if err := os.MkdirAll(filepath.Dir(old), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(old, []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := Collect(t.Context(), CollectInput{Provider: fp, Nodes: []string{"CLUS1-00", "GONE-00"}, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(Items())+1 {
		t.Errorf("files = %v", files)
	}
	if b, _ := os.ReadFile(old); string(b) != "output of zpool status\n" {
		t.Errorf("zpool-status.txt = %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "GONE-00", "errors.txt")); !strings.Contains(string(b), "no such VM") {
		t.Errorf("errors.txt of an unreachable node = %q", b)
	}
	n := 0
	err = filepath.WalkDir(filepath.Dir(dir), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		st, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, st.Mode().Perm(), want)
		}
		if strings.Contains(d.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", p)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// artifacts, run1, two node dirs, the files.
	if want := 4 + len(Items()) + 1; n != want {
		t.Errorf("walked %d entries, want %d", n, want)
	}
}

// execFails fails every Exec with err and counts the tries.
type execFails struct {
	*fakeprovider.Provider
	err   error
	tries atomic.Int32
}

func (p *execFails) Exec(context.Context, string, provider.ExecInput) (provider.ExecResult, error) {
	p.tries.Add(1)
	return provider.ExecResult{}, p.err
}

func TestCollectStopsAtAnUnreachableNodeOnly(t *testing.T) {
	for _, tc := range []struct {
		err   error
		tries int32
	}{
		{fmt.Errorf("exec on CLUS1-00: connecting over SSH: %w", &sshx.DialError{Addr: "127.0.0.1:1", Err: errors.New("connection refused")}), 1},
		{fmt.Errorf("exec on CLUS1-00: %w", errors.New("session closed while connecting")), int32(len(Items()))},
	} {
		p := &execFails{Provider: fakeprovider.New(), err: tc.err}
		p.Add(provider.Info{Name: "CLUS1-00"})
		Collect(t.Context(), CollectInput{Provider: p, Nodes: []string{"CLUS1-00"}, Dir: t.TempDir()})
		if got := p.tries.Load(); got != tc.tries {
			t.Errorf("%v: %d commands tried, want %d", tc.err, got, tc.tries)
		}
	}
}
