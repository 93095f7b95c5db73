package image

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// hookRunningTools puts stand-ins for mmdebstrap and mkfs.ext4 first on
// PATH; this mmdebstrap runs each --customize-hook the way mmdebstrap does
// (`sh -c HOOK exec ROOT`) and fails when a hook fails.
func hookRunningTools(t *testing.T) {
	t.Helper()
	bin := t.TempDir()
	mm := `#!/bin/sh
d=$(mktemp -d); mkdir -p "$d/boot"
echo kernel > "$d/boot/vmlinuz-6.1.0-test"; echo initrd > "$d/boot/initrd.img-6.1.0-test"
for a in "$@"; do
  case "$a" in
    --customize-hook=*) h=${a#--customize-hook=}
      sh -c "$h" exec "$d" || { echo "E: customize hook failed: $h" >&2; exit 1; } ;;
    *rootfs.tar) out="$a" ;;
  esac
done
tar -cf "$out" -C "$d" .
`
	installTools(t, bin, mm)
}

// TestBuildWorksInACacheDirWithSpacesAndQuotes: BCMTEST_CACHE_DIR="/ci cache"
// (or a quote in the path) must not split the customize hook's command.
func TestBuildWorksInACacheDirWithSpacesAndQuotes(t *testing.T) {
	hookRunningTools(t)
	for _, name := range []string{"ci cache", `it's "here" $HOME`} {
		s := Store{Dir: filepath.Join(t.TempDir(), name, "images")}
		r := testRecipe()
		marker := filepath.Join(t.TempDir(), "customized")
		r.Customize = `set -eu; test -d "$1/boot"; : > ` + "'" + marker + "'"
		if _, err := s.Get(context.Background(), r); err != nil {
			t.Fatalf("cache dir %q: %v", name, err)
		}
		if _, err := os.Stat(marker); err != nil {
			t.Errorf("cache dir %q: the customize script did not run on the root: %v", name, err)
		}
	}
}
