package qemu

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

// fakeArchive stands in for the apt cache: an HTTP proxy that serves the
// recipe's InRelease files by their absolute URLs and counts the asks.
type fakeArchive struct {
	mu    sync.Mutex
	files map[string][]byte
	asks  int
	srv   *httptest.Server
}

func newFakeArchive(t *testing.T, r image.Recipe) *fakeArchive {
	t.Helper()
	a := &fakeArchive{files: map[string][]byte{}}
	for _, f := range r.ReleaseFiles() {
		b, err := os.ReadFile(filepath.Join("image", "testdata", "archive", f.ListName))
		if err != nil {
			t.Fatal(err)
		}
		a.files[f.URL] = b
	}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.asks++
		b, ok := a.files[req.URL.String()]
		if !ok {
			http.NotFound(w, req)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *fakeArchive) port() int { return a.srv.Listener.Addr().(*net.TCPAddr).Port }

func (a *fakeArchive) count() int { a.mu.Lock(); defer a.mu.Unlock(); return a.asks }

// publish changes one file of the archive, as a security update does.
func (a *fakeArchive) publish(t *testing.T, url, old, new string) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if !strings.Contains(string(a.files[url]), old) {
		t.Fatalf("%s has no %q", url, old)
	}
	a.files[url] = []byte(strings.Replace(string(a.files[url]), old, new, 1))
}

// archiveImage is an image entry whose root is an ext4 filesystem holding
// the apt lists its build would have left: the fake archive's files.
func archiveImage(t *testing.T, d state.Dirs, a *fakeArchive) image.Image {
	t.Helper()
	for _, tool := range []string{"mkfs.ext4", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	img := testImage(t, d)
	img.Manifest.Recipe = image.RecipeFor(image.Bookworm)
	tree := t.TempDir()
	lists := filepath.Join(tree, "var", "lib", "apt", "lists")
	if err := os.MkdirAll(lists, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range img.Manifest.Recipe.ReleaseFiles() {
		if err := os.WriteFile(filepath.Join(lists, f.ListName), a.files[f.URL], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(img.Root)
	if out, err := exec.Command("mkfs.ext4", "-q", "-d", tree, img.Root, "64M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	return img
}

func upgradeRuns(f *fakeQEMU) int {
	n := 0
	for _, c := range f.calls() {
		if strings.Contains(c, "-name bcmtest-upgrade ") {
			n++
		}
	}
	return n
}

const securityInRelease = "http://deb.debian.org/debian-security/dists/bookworm-security/InRelease"

// A snapshot is as current as the archive: unchanged, the image's own
// snapshot (no upgrade boot); after an update, one new snapshot whose
// template upgraded itself, made once; with the archive unreachable, the
// newest snapshot of the shape.
func TestANewArchiveStateMakesOneUpgradedSnapshot(t *testing.T) {
	d := shortDirs(t)
	fake := installFakeQEMU(t, "7.2.22", "pc-q35-7.2")
	fake.set("upgrade", "ok")
	archive := newFakeArchive(t, image.RecipeFor(image.Bookworm))
	img := archiveImage(t, d, archive)
	ctx := context.Background()
	var log strings.Builder
	snapshotOfARun := func(what string, fresh time.Duration) Snapshot {
		t.Helper()
		p := fakeRunProvider(t, d)
		p.cfg.Intervals.ArchiveFresh = fresh
		p.cfg.Log = &log
		s, err := p.snapshot(ctx, img, testShape(), archive.port())
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return s
	}

	s1 := snapshotOfARun("archive as built", time.Hour)
	if s1.Manifest.Shape.Archive != "" || s1.Upgraded != "" || strings.Contains(s1.Manifest.Key, "-a") || upgradeRuns(fake) != 0 {
		t.Fatalf("with the archive as the image was built, snapshot %s (archive %q), %d upgrade boots", s1.Manifest.Key, s1.Manifest.Shape.Archive, upgradeRuns(fake))
	}
	asks := archive.count()
	if asks != 3 {
		t.Errorf("%d asks of the apt cache, want 3 (one per InRelease)", asks)
	}

	archive.publish(t, securityInRelease, "ffdfc0b919fa70ee96eca136614b977b4aa3041920e03f1b7f755abe564d373f  2579986",
		"0fdfc0b919fa70ee96eca136614b977b4aa3041920e03f1b7f755abe564d373f  2580012")
	if s := snapshotOfARun("within archive-fresh of the reading", time.Hour); s.Dir != s1.Dir || archive.count() != asks {
		t.Errorf("within archive-fresh: snapshot %s and %d asks, want %s and no new ask", s.Manifest.Key, archive.count()-asks, s1.Manifest.Key)
	}

	s2 := snapshotOfARun("after a security update", 0)
	if s2.Dir == s1.Dir || s2.Manifest.Shape.Archive == "" || !strings.HasSuffix(s2.Manifest.Key, "-a"+s2.Manifest.Shape.Archive) {
		t.Fatalf("after a security update: snapshot %s (archive %q), want a new one of the new state", s2.Manifest.Key, s2.Manifest.Shape.Archive)
	}
	if n := upgradeRuns(fake); n != 1 {
		t.Fatalf("%d upgrade boots, want 1", n)
	}
	if u := s2.Manifest.Upgrade; u == nil || u.Packages != 2 || len(u.Names) != 2 || u.Names[0] != "tor 0.4.7.16-1 -> 0.4.7.17-1" {
		t.Errorf("the upgrade boot's record: %+v", s2.Manifest.Upgrade)
	}
	out, err := exec.Command("qemu-img", "info", "--output=json", "--backing-chain", s2.Disk).Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"backing-filename": "`+upgradedDiskName+`"`) || !strings.Contains(string(out), img.Root) {
		t.Errorf("the template's disk is not layered on the upgrade boot's, on the image's root: %s", out)
	}
	if !strings.Contains(log.String(), "upgrading the template to archive state "+s2.Manifest.Shape.Archive+" first") || !strings.Contains(log.String(), "upgrade boot upgraded 2 packages") {
		t.Errorf("the log does not say the template upgraded:\n%s", log.String())
	}

	if s := snapshotOfARun("the same new state again", 0); s.Dir != s2.Dir || upgradeRuns(fake) != 1 {
		t.Errorf("the same state again: snapshot %s and %d upgrade boots, want %s and 1", s.Manifest.Key, upgradeRuns(fake), s2.Manifest.Key)
	}

	archive.srv.Close()
	log.Reset()
	if s := snapshotOfARun("with the archive unreachable", 0); s.Dir != s2.Dir {
		t.Errorf("with the archive unreachable: snapshot %s, want the newest, %s", s.Manifest.Key, s2.Manifest.Key)
	}
	if !strings.Contains(log.String(), "using the newest snapshot of this shape") || !strings.Contains(log.String(), "through the apt cache: proxyconnect") {
		t.Errorf("the log does not say the archive was unreachable and the newest snapshot used:\n%s", log.String())
	}
}

// An upgrade boot that fails, or powers off without saying it finished,
// makes no snapshot, and the error says what it was doing.
func TestAFailedUpgradeBootMakesNoSnapshot(t *testing.T) {
	for _, c := range []struct{ fake, want string }{
		{"fail", "FAILED (exit 100) while apt-get update"},
		{"silent", "the upgrade boot powered off without finishing"},
	} {
		t.Run(c.fake, func(t *testing.T) {
			d := shortDirs(t)
			fake := installFakeQEMU(t, "7.2.22", "pc-q35-7.2")
			fake.set("upgrade", c.fake)
			archive := newFakeArchive(t, image.RecipeFor(image.Bookworm))
			img := archiveImage(t, d, archive)
			archive.publish(t, securityInRelease, "ffdfc0b919fa70ee96eca136614b977b4aa3041920e03f1b7f755abe564d373f",
				"0fdfc0b919fa70ee96eca136614b977b4aa3041920e03f1b7f755abe564d373f")
			p := fakeRunProvider(t, d)
			_, err := p.snapshot(context.Background(), img, testShape(), archive.port())
			if err == nil || !strings.Contains(err.Error(), "upgrading the template to archive state") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want the upgrade's failure: %s", err, c.want)
			}
			if snaps, _ := Snapshots(d); len(snaps) != 0 {
				t.Errorf("a snapshot was left: %s", snaps[0].Key)
			}
			if len(templateRuns(fake)) != 0 {
				t.Errorf("the template booted after a failed upgrade")
			}
		})
	}
}
