package image

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// stagedTools is fakeTools' mmdebstrap printing the lines of each stage.
func stagedTools(t *testing.T) {
	t.Helper()
	bin := t.TempDir()
	mm := `#!/bin/sh
for a in "$@"; do case "$a" in *rootfs.tar) out="$a";; --verbose) verbose=1;; esac; done
[ -n "$verbose" ] || { echo "E: without --verbose mmdebstrap prints no dpkg lines" >&2; exit 1; }
echo "I: running apt-get update..."
echo "I: installing remaining packages inside the chroot..."
echo "Unpacking zfs-dkms (2.3.2-2) ..."
echo "Setting up zfs-dkms (2.3.2-2) ..."
echo "Building initial module zfs/2.3.2 for 6.12.38+deb13-amd64"
echo "Setting up tor (0.4.8.16-1) ..."
echo "W: a warning"
echo "I: running --customize-hook in shell: sh -c 'x'"
echo "I: creating tarball..."
d=$(mktemp -d); mkdir -p "$d/boot"
echo kernel > "$d/boot/vmlinuz-6.12.38+deb13-amd64"; echo initrd > "$d/boot/initrd.img-6.12.38+deb13-amd64"
tar -cf "$out" -C "$d" .
`
	installTools(t, bin, mm)
}

func TestABuildSaysItsNamedStagesAndRecordsTheirTimes(t *testing.T) {
	stagedTools(t)
	var out bytes.Buffer
	s := Store{Dir: filepath.Join(t.TempDir(), "images"), Progress: &out}
	r := RecipeFor(Trixie)
	r.Packages = []string{"test"}
	img, err := s.Get(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	log := out.String()
	prev := -1
	for _, st := range []string{StageBootstrap, StagePackages, StageZFS, StageCustomize, StagePacking} {
		i := strings.Index(log, "image "+r.Key()+": stage "+st+" (")
		if i < 0 || i < prev {
			t.Fatalf("no line for stage %q after the one before:\n%s", st, log)
		}
		prev = i
	}
	if !strings.Contains(log, "; bootstrap took ") || !strings.Contains(log, "building the trixie (Debian 13) image") {
		t.Errorf("the stage lines do not say the stage before's time or the release:\n%s", log)
	}
	var names []string
	for _, st := range img.Manifest.Stages {
		names = append(names, st.Stage)
	}
	if got := strings.Join(names, ","); got != "bootstrap,packages,ZFS module build,customising,packing" {
		t.Errorf("manifest stages = %s", got)
	}
	if !strings.Contains(log, "built in ") || !strings.Contains(log, "ZFS module build ") {
		t.Errorf("the last line does not list the stage times:\n%s", log)
	}
}

// reporter is a StageReporter that keeps what the store writes.
type reporter struct {
	mu     sync.Mutex
	stages []string
	out    bytes.Buffer
}

func (r *reporter) ImageStage(s Stage) {
	r.mu.Lock()
	r.stages = append(r.stages, s.String())
	r.mu.Unlock()
}
func (r *reporter) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.Write(b)
}

func TestAReporterGetsTheStagesAndOnlyWarningsAsLines(t *testing.T) {
	stagedTools(t)
	rep := &reporter{}
	s := Store{Dir: filepath.Join(t.TempDir(), "images"), Progress: rep}
	if _, err := s.Get(context.Background(), testRecipe()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rep.stages, "|"); !strings.Contains(got, "ZFS module build: compiling zfs.ko with DKMS|packages: ") {
		t.Errorf("reported stages: %s", got)
	}
	log := rep.out.String()
	if !strings.Contains(log, "] W: a warning") || strings.Contains(log, "Unpacking zfs-dkms") {
		t.Errorf("with a reporter, the lines are mmdebstrap's warnings only:\n%s", log)
	}
}
