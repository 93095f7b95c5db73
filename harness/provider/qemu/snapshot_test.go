package qemu

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

// realQEMUImg is the host's qemu-img, looked up before a test puts a
// wrapper first on PATH.
func realQEMUImg(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("qemu-img")
	if err != nil {
		t.Skip("qemu-img not installed (make deps)")
	}
	return p
}

// fakeSnapshotEntry publishes a complete snapshot entry for sh in the
// cache of d, as makeSnapshot would: a real qcow2 disk layer, a stand-in
// migration stream and the manifest.
func fakeSnapshotEntry(t *testing.T, d state.Dirs, sh Shape) Snapshot {
	t.Helper()
	qemuImg := realQEMUImg(t)
	dir := filepath.Join(snapshotsDir(d), sh.Key())
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(qemuImg, "create", "-q", "-f", "qcow2", filepath.Join(dir, "disk.qcow2"), "1G").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v: %s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "state"), []byte("stream"), 0o444); err != nil {
		t.Fatal(err)
	}
	m := SnapshotManifest{Key: sh.Key(), Shape: sh, RootGiB: 1, Created: time.Now().UTC()}
	b, _ := json.Marshal(m)
	if err := os.WriteFile(filepath.Join(dir, snapshotManifestName), b, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := openSnapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// twoStateDirs are two state directories sharing one cache, as two users'
// or two CI jobs' runs with one BCMTEST_CACHE_DIR.
func twoStateDirs(t *testing.T) (a, b state.Dirs) {
	t.Helper()
	root := t.TempDir()
	cache := filepath.Join(root, "cache")
	return state.Dirs{State: filepath.Join(root, "state-a"), Cache: cache}, state.Dirs{State: filepath.Join(root, "state-b"), Cache: cache}
}

func providerIn(t *testing.T, d state.Dirs) *Provider {
	t.Helper()
	p := testProvider(t)
	p.cfg.Dirs = d
	p.root = filepath.Join(d.State, "qemu")
	p.vmsDir = vmsDir(d)
	if err := state.MkdirPrivate(p.vmsDir); err != nil {
		t.Fatal(err)
	}
	return p
}

func recordIn(t *testing.T, p *Provider, name string) *record {
	t.Helper()
	r := &record{Name: name, Group: "CLUS1", Dir: filepath.Join(p.vmsDir, name), CPUs: 1, MemoryMiB: 128, DiskGiB: 2,
		PrivateIP: "10.77.0.10", SegmentPort: 21000, MACs: macs("CLUS1", name), Accel: "tcg", Created: time.Now().UTC()}
	if err := state.MkdirPrivate(r.Dir); err != nil {
		t.Fatal(err)
	}
	if err := r.save(); err != nil {
		t.Fatal(err)
	}
	return r
}

func testShape() Shape {
	return Shape{Image: "bookworm-test", CPUs: 1, MemoryMiB: 128, Accel: "tcg", Devices: deviceSet}
}

// TestPruneFromAnotherStateDirKeepsASnapshotAVMIsLayeredOn: a VM of state
// dir A is layered on a snapshot in the shared cache; a prune run from
// state dir B must not remove it (power-off then start would fail on a
// missing backing file). Once the VM is gone, B's prune removes it.
func TestPruneFromAnotherStateDirKeepsASnapshotAVMIsLayeredOn(t *testing.T) {
	a, b := twoStateDirs(t)
	fakeQEMUScript(t, "exit 1") // the restore's qemu fails at once; the layering stays
	pa := providerIn(t, a)
	snap := fakeSnapshotEntry(t, a, testShape())
	rec := recordIn(t, pa, "CLUS1-00")
	if err := pa.restoreFrom(context.Background(), rec, image.Image{Kernel: "/k", Initrd: "/i"}, snap, 0); err == nil {
		t.Fatal("the restore succeeded with a qemu that exits at once")
	}
	if got, _ := loadRecord(rec.Dir); got == nil || got.Snapshot != snap.Manifest.Key {
		t.Fatalf("the record in A does not name the snapshot its overlay is layered on: %+v", got)
	}
	removed, err := PruneSnapshots(b, 0, "another-image")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(snap.Disk); err != nil || len(removed) != 0 {
		t.Fatalf("a prune from state dir B removed %v, the disk layer a VM of A is on: %v", removed, err)
	}
	infos, err := Snapshots(b)
	if err != nil || len(infos) != 1 || len(infos[0].InUse) != 1 {
		t.Errorf("Snapshots from B = %+v, %v; want the one snapshot, in use by A's VM", infos, err)
	}
	if err := os.RemoveAll(rec.Dir); err != nil { // the VM is deleted
		t.Fatal(err)
	}
	removed, err = PruneSnapshots(b, 0, "another-image")
	if err != nil || len(removed) != 1 {
		t.Errorf("after the VM is gone a prune from B removed %v (%v), want the snapshot", removed, err)
	}
}

// TestPruneDuringARestoreKeepsTheSnapshotItLayersOn: a prune that runs
// while a restore creates its overlay must see the snapshot in use.
func TestPruneDuringARestoreKeepsTheSnapshotItLayersOn(t *testing.T) {
	qemuImg := realQEMUImg(t)
	a, _ := twoStateDirs(t)
	pa := providerIn(t, a)
	snap := fakeSnapshotEntry(t, a, testShape())
	rec := recordIn(t, pa, "CLUS1-00")
	fakeQEMUScript(t, "exit 1")
	// qemu-img pauses as it creates the overlay until the test says go.
	bin := t.TempDir()
	creating, goOn := filepath.Join(bin, "creating"), filepath.Join(bin, "go")
	wrapper := "#!/bin/sh\ncase \"$*\" in *overlay.qcow2*) : > '" + creating + "'; while [ ! -e '" + goOn + "' ]; do sleep 0.02; done ;; esac\nexec '" + qemuImg + "' \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "qemu-img"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	done := make(chan error, 1)
	go func() {
		done <- pa.restoreFrom(context.Background(), rec, image.Image{Kernel: "/k", Initrd: "/i"}, snap, 0)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(creating); err == nil {
			break
		}
		if time.Now().After(deadline) {
			os.WriteFile(goOn, nil, 0o600)
			t.Fatalf("the restore never created its overlay: %v", <-done)
		}
		time.Sleep(20 * time.Millisecond)
	}
	removed, err := PruneSnapshots(a, 0, "another-image")
	os.WriteFile(goOn, nil, 0o600)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(snap.Disk); err != nil || len(removed) != 0 {
		t.Fatalf("a prune during the restore removed %v, the disk layer the overlay is being made on: %v", removed, err)
	}
}

// TestASnapshotWhoseUserCannotBeReadIsKept: a user marker pointing at a
// record this process cannot read (another user's state dir, a record
// being rewritten) keeps the snapshot; only a VM shown gone frees it.
func TestASnapshotWhoseUserCannotBeReadIsKept(t *testing.T) {
	a, b := twoStateDirs(t)
	pa := providerIn(t, a)
	snap := fakeSnapshotEntry(t, a, testShape())
	rec := recordIn(t, pa, "CLUS1-00")
	if err := pa.claimSnapshot(context.Background(), rec, snap); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rec.path("vm.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	removed, err := PruneSnapshots(b, 0, "another-image")
	if err != nil || len(removed) != 0 {
		t.Fatalf("prune removed %v (%v) although its user's record is unreadable, not gone", removed, err)
	}
}

// TestPruneKeepsTheSnapshotsOfEveryCurrentImage: a run on one release
// prunes the snapshot cache; the other release's current image keeps its
// snapshots, and only an image that is no release's current one loses them.
func TestPruneKeepsTheSnapshotsOfEveryCurrentImage(t *testing.T) {
	a, _ := twoStateDirs(t)
	shapes := map[string]Shape{}
	for _, img := range []string{"bookworm-current", "trixie-current", "bookworm-old"} {
		sh := testShape()
		sh.Image = img
		shapes[img] = sh
		fakeSnapshotEntry(t, a, sh)
	}
	removed, err := PruneSnapshots(a, 1, "bookworm-current", "trixie-current")
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != shapes["bookworm-old"].Key() {
		t.Errorf("removed %v, want only the old image's snapshot", removed)
	}
	for _, img := range []string{"bookworm-current", "trixie-current"} {
		if _, err := os.Stat(filepath.Join(snapshotsDir(a), shapes[img].Key(), "disk.qcow2")); err != nil {
			t.Errorf("the snapshot of current image %s was removed: %v", img, err)
		}
	}
}
