package workload

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// hookRunningMmdebstrap stands in for mmdebstrap on PATH: it runs every
// --customize-hook the way mmdebstrap does (`sh -c HOOK exec ROOT`) on an
// empty root and writes that root as the target tarball, so what is under
// test is the hooks' shell text, not Debian.
func hookRunningMmdebstrap(t *testing.T) {
	t.Helper()
	bin := t.TempDir()
	script := `#!/bin/sh
root=$(mktemp -d)
mkdir -p "$root/sbin" "$root/etc"
for a in "$@"; do
  case "$a" in
    --customize-hook=*) h=${a#--customize-hook=}
      sh -c "$h" exec "$root" || { echo "E: customize hook failed: $h" >&2; exit 1; } ;;
    *rootfs.tar) out="$a" ;;
  esac
done
tar -cf "$out" -C "$root" .
`
	if err := os.WriteFile(filepath.Join(bin, "mmdebstrap"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
}

// TestBuildWorksInACacheDirWithSpacesAndQuotes: BCMTEST_CACHE_DIR="/ci cache"
// (or a quote in the path) must not split or break the build's shell hooks.
func TestBuildWorksInACacheDirWithSpacesAndQuotes(t *testing.T) {
	hookRunningMmdebstrap(t)
	for _, name := range []string{"ci cache", `it's "here" $HOME`} {
		s := ImageStore{Dir: filepath.Join(t.TempDir(), name, "images")}
		r := DefaultImageRecipe()
		img, err := s.Get(context.Background(), r)
		if err != nil {
			t.Fatalf("cache dir %q: %v", name, err)
		}
		f, err := os.Open(img.Path)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(zr)
		init := ""
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Name == "rootfs/sbin/init" {
				b, _ := io.ReadAll(tr)
				init = string(b)
			}
		}
		f.Close()
		if init != r.Init {
			t.Errorf("cache dir %q: rootfs/sbin/init is %q, want the recipe's init", name, init)
		}
	}
}
