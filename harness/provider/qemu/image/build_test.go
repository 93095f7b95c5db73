package image

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeTools puts stand-ins for mmdebstrap and mkfs.ext4 first on PATH: the
// build's bookkeeping (lock, temp name, rename, cleanup) is what is under
// test here, not Debian. mmdebstrap counts its runs and sleeps delay.
func fakeTools(t *testing.T, delay string) (counter string) {
	t.Helper()
	bin := t.TempDir()
	counter = filepath.Join(bin, "runs")
	mm := `#!/bin/sh
echo run >> "` + counter + `"
for a in "$@"; do case "$a" in *rootfs.tar) out="$a";; esac; done
echo "I: pretending to bootstrap"
sleep ` + delay + `
d=$(mktemp -d); mkdir -p "$d/boot"
echo kernel > "$d/boot/vmlinuz-6.1.0-test"; echo initrd > "$d/boot/initrd.img-6.1.0-test"
tar -cf "$out" -C "$d" .
`
	installTools(t, bin, mm)
	return counter
}

// installTools writes mmdebstrap (the given script) and a mkfs.ext4 that
// leaves a placeholder image into bin, first on PATH.
func installTools(t *testing.T, bin, mmdebstrap string) {
	t.Helper()
	mkfs := `#!/bin/sh
for a in "$@"; do prev="$img"; img="$a"; done
echo ext4 > "$prev"
`
	for name, body := range map[string]string{"mmdebstrap": mmdebstrap, "mkfs.ext4": mkfs} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
}

func testRecipe() Recipe {
	r := DefaultRecipe()
	r.Packages = []string{"test"}
	return r
}

func runs(t *testing.T, counter string) int {
	b, _ := os.ReadFile(counter)
	return strings.Count(string(b), "run")
}

func TestConcurrentGetsBuildOnceAndShareTheImage(t *testing.T) {
	counter := fakeTools(t, "1")
	s := Store{Dir: filepath.Join(t.TempDir(), "images")}
	var wg sync.WaitGroup
	imgs := make([]Image, 3)
	errs := make([]error, 3)
	for i := range imgs {
		wg.Add(1)
		go func() { defer wg.Done(); imgs[i], errs[i] = s.Get(context.Background(), testRecipe()) }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Get %d: %v", i, err)
		}
		if imgs[i].Dir != imgs[0].Dir || imgs[i].Manifest.KernelVersion != "6.1.0-test" {
			t.Errorf("Get %d returned %+v", i, imgs[i])
		}
	}
	if n := runs(t, counter); n != 1 {
		t.Errorf("mmdebstrap ran %d times, want 1", n)
	}
	// A warm lookup touches no tool and is fast.
	start := time.Now()
	if _, err := s.Get(context.Background(), testRecipe()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("warm lookup took %s", d)
	}
	if n := runs(t, counter); n != 1 {
		t.Errorf("warm lookup rebuilt")
	}
}

func TestAnInterruptedBuildLeavesNothingThatLooksComplete(t *testing.T) {
	fakeTools(t, "30")
	s := Store{Dir: filepath.Join(t.TempDir(), "images")}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := s.Get(ctx, testRecipe()); err == nil {
		t.Fatal("a cancelled build succeeded")
	}
	if _, err := s.Lookup(testRecipe()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lookup after a cancelled build: %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(s.Dir, "*.tmp-*"))
	if len(left) != 0 {
		t.Errorf("temporary build left: %v", left)
	}
}

func TestAKilledBuildsTempDirIsRemovedByTheNextBuild(t *testing.T) {
	fakeTools(t, "0")
	s := Store{Dir: filepath.Join(t.TempDir(), "images")}
	stale := filepath.Join(s.Dir, testRecipe().Key()+".tmp-99999999")
	if err := os.MkdirAll(filepath.Join(stale, "rootfs"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup(testRecipe()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a temp dir looked complete: %v", err)
	}
	if _, err := s.Get(context.Background(), testRecipe()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temp dir survived: %v", err)
	}
}

func TestRecipeKeyChangesWithTheRecipe(t *testing.T) {
	a, b := DefaultRecipe(), DefaultRecipe()
	if a.Key() != b.Key() {
		t.Fatal("key not stable")
	}
	b.Packages = append(b.Packages, "jq")
	if a.Key() == b.Key() {
		t.Error("adding a package kept the key")
	}
}

func TestPackageNamesComeFromTheTreesAptLists(t *testing.T) {
	tree := t.TempDir()
	lists := filepath.Join(tree, "var", "lib", "apt", "lists")
	if err := os.MkdirAll(lists, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(lists, "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages"),
		[]byte("Package: tor\nVersion: 1\n\nPackage: jq\nDescription: Package: not-a-name\n"), 0o644)
	os.WriteFile(filepath.Join(lists, "deb.debian.org_debian_dists_bookworm_InRelease"), []byte("Package: ignored\n"), 0o644)
	dir := t.TempDir()
	if err := writePackageNames(tree, filepath.Join(dir, packagesName)); err != nil {
		t.Fatal(err)
	}
	known, err := Image{Dir: dir}.KnownPackages()
	if err != nil {
		t.Fatal(err)
	}
	if !known["tor"] || !known["jq"] || known["ignored"] || known["not-a-name"] || len(known) != 2 {
		t.Fatalf("known packages = %v, want exactly jq and tor", known)
	}
}
