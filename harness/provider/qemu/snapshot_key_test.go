package qemu

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

// shortDirs is a state and cache dir under a short temporary path: QMP
// sockets live in VM directories, and a unix socket path has 108 bytes.
func shortDirs(t *testing.T) state.Dirs {
	t.Helper()
	root, err := os.MkdirTemp("", "bq")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	return state.Dirs{State: filepath.Join(root, "s"), Cache: filepath.Join(root, "c")}
}

// testImage is an image entry with a sparse raw root for overlays.
func testImage(t *testing.T, d state.Dirs) image.Image {
	t.Helper()
	dir := filepath.Join(d.Cache, "images", "bookworm-test")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	img := image.Image{Key: "bookworm-test", Dir: dir, Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd.img"),
		Root: filepath.Join(dir, "root.img"), KernelArgs: "root=LABEL=root"}
	for _, f := range []string{img.Kernel, img.Initrd} {
		os.WriteFile(f, []byte("x"), 0o444)
	}
	f, err := os.Create(img.Root)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(1 << 30)
	f.Close()
	return img
}

// fakeRunProvider is a provider in d whose waits suit the fake qemu.
func fakeRunProvider(t *testing.T, d state.Dirs) *Provider {
	t.Helper()
	realQEMUImg(t)
	p := providerIn(t, d)
	p.cfg.Recipe.RootSizeGiB = 1
	p.cfg.Intervals.Boot = 30 * time.Second
	p.cfg.Intervals.ProcessStart = wait.Interval{Timeout: 20 * time.Second, Poll: 20 * time.Millisecond}
	return p
}

// stopAfter stops rec's qemu when the test ends.
func stopAfter(t *testing.T, p *Provider, rec *record) {
	t.Cleanup(func() {
		if r, err := loadRecord(rec.Dir); err == nil {
			p.stopProcess(context.Background(), r, 0)
		}
	})
}

func templateRuns(f *fakeQEMU) []string {
	var out []string
	for _, c := range f.calls() {
		if strings.Contains(c, "-name bcmtest-template ") {
			out = append(out, c)
		}
	}
	return out
}

// TestTheSnapshotFollowsQEMUsVersionAndMachineType: a migration stream
// loads only into the QEMU and machine type that saved it, so after an
// upgrade of QEMU, or a new default q35 machine type, the next run makes a
// new snapshot instead of failing every restore; and qemu runs the
// concrete machine type (pc-q35-X.Y), not the alias that moves.
func TestTheSnapshotFollowsQEMUsVersionAndMachineType(t *testing.T) {
	d := shortDirs(t)
	fake := installFakeQEMU(t, "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)", "pc-q35-7.2")
	img := testImage(t, d)
	ctx := context.Background()
	snapshotOfANewRun := func(what string) Snapshot {
		t.Helper()
		s, err := fakeRunProvider(t, d).snapshot(ctx, img, testShape(), 0)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return s
	}
	s1 := snapshotOfANewRun("first run")
	if s := snapshotOfANewRun("same QEMU"); s.Dir != s1.Dir {
		t.Errorf("the same QEMU made a second snapshot %s beside %s", s.Dir, s1.Dir)
	}
	fake.set("version", "8.0.4 (Debian 1:8.0.4+dfsg-1)")
	s2 := snapshotOfANewRun("after a QEMU upgrade")
	if s2.Dir == s1.Dir {
		t.Errorf("QEMU 8.0.4 was handed the snapshot QEMU 7.2.22 saved (%s)", s1.Dir)
	}
	fake.set("machine", "pc-q35-8.0")
	s3 := snapshotOfANewRun("after q35 moved to pc-q35-8.0")
	if s3.Dir == s2.Dir {
		t.Errorf("machine type pc-q35-8.0 was handed the snapshot of pc-q35-7.2 (%s)", s2.Dir)
	}
	runs := templateRuns(fake)
	if len(runs) != 3 {
		t.Fatalf("%d templates booted, want 3 (one per QEMU and machine type)", len(runs))
	}
	if !strings.Contains(runs[2], "-machine pc-q35-8.0 ") {
		t.Errorf("the template ran with another machine type than pc-q35-8.0: %s", runs[2])
	}
}

// TestASnapshotThatFailedToRestoreIsMarkedAndRemadeOnce: a snapshot whose
// stream does not load is not handed out again; the next launch remakes
// it, once: if the remade one fails too, nodes boot cold without a third.
func TestASnapshotThatFailedToRestoreIsMarkedAndRemadeOnce(t *testing.T) {
	d := shortDirs(t)
	fake := installFakeQEMU(t, "7.2.22", "pc-q35-7.2")
	img := testImage(t, d)
	ctx := context.Background()
	p := fakeRunProvider(t, d)
	s1, err := p.snapshot(ctx, img, testShape(), 0)
	if err != nil {
		t.Fatal(err)
	}
	launch := func(name, want string) {
		t.Helper()
		rec := recordIn(t, p, name)
		stopAfter(t, p, rec)
		how, err := p.boot(ctx, rec, img, "tcg", 0)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !strings.HasPrefix(how, want) {
			t.Fatalf("%s: %s, want %s", name, how, want)
		}
	}
	fake.set("load", "fail")
	launch("CLUS1-00", "cold boot")
	fake.set("load", "ok")
	s2, err := p.snapshot(ctx, img, testShape(), 0)
	if err != nil {
		t.Fatalf("after a failed restore: %v", err)
	}
	if s2.Dir == s1.Dir {
		t.Fatalf("the snapshot that failed to restore (%s) was handed out again", s1.Dir)
	}
	launch("CLUS1-01", "restored from snapshot")
	fake.set("load", "fail")
	launch("CLUS1-02", "cold boot")
	if s, err := p.snapshot(ctx, img, testShape(), 0); err == nil {
		t.Errorf("a remade snapshot that failed to restore too was handed out (%s)", s.Dir)
	}
	if runs := templateRuns(fake); len(runs) != 2 {
		t.Errorf("%d templates booted, want 2 (the snapshot and its one remake)", len(runs))
	}
}
