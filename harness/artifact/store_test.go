package artifact

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

func hasDone(dir string) error {
	_, err := os.Stat(filepath.Join(dir, "done"))
	return err
}

func TestConcurrentGetsBuildOnce(t *testing.T) {
	s := Store{Dir: t.TempDir(), Kind: "thing"}
	var builds atomic.Int32
	build := func(ctx context.Context, tmp string) error {
		builds.Add(1)
		return os.WriteFile(filepath.Join(tmp, "done"), []byte("x"), 0o644)
	}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Get(context.Background(), "k1", hasDone, build); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := builds.Load(); n != 1 {
		t.Fatalf("built %d times, want 1", n)
	}
	es, err := s.List(hasDone)
	if err != nil || len(es) != 1 || es[0].Key != "k1" {
		t.Fatalf("List = %v, %v", es, err)
	}
}

func TestAFailedBuildLeavesNoEntryAndNoTemp(t *testing.T) {
	s := Store{Dir: t.TempDir(), Kind: "thing"}
	boom := errors.New("boom")
	_, err := s.Get(context.Background(), "k1", hasDone, func(ctx context.Context, tmp string) error {
		os.WriteFile(filepath.Join(tmp, "half"), nil, 0o644)
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(s.Dir, "k1*"))
	for _, l := range left {
		if filepath.Ext(l) != ".lock" {
			t.Errorf("left behind: %s", l)
		}
	}
}

func TestAnIncompleteBuildIsNotPublished(t *testing.T) {
	s := Store{Dir: t.TempDir(), Kind: "thing"}
	_, err := s.Get(context.Background(), "k1", hasDone, func(ctx context.Context, tmp string) error { return nil })
	if err == nil {
		t.Fatal("an entry without its marker was published")
	}
	if _, err := os.Stat(s.Path("k1")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("entry dir exists: %v", err)
	}
}

func TestStaleTempsAreRemovedAndBadKeysRefused(t *testing.T) {
	s := Store{Dir: t.TempDir(), Kind: "thing"}
	stale := filepath.Join(s.Dir, "k1.tmp-999999")
	os.MkdirAll(stale, 0o700)
	if _, err := s.Get(context.Background(), "k1", hasDone, func(ctx context.Context, tmp string) error {
		return os.WriteFile(filepath.Join(tmp, "done"), nil, 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale temp survived: %v", err)
	}
	for _, k := range []string{"", "..", "a/b", "x.tmp-1"} {
		if _, err := s.Get(context.Background(), k, hasDone, nil); err == nil {
			t.Errorf("key %q accepted", k)
		}
	}
}
