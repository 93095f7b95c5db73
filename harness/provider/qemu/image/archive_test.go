package image

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// archiveFiles reads the recorded InRelease files of bookworm's sources
// (cut to their index lines and signature) keyed by URL.
func archiveFiles(t *testing.T, r Recipe) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for _, f := range r.ReleaseFiles() {
		b, err := os.ReadFile(filepath.Join("testdata", "archive", f.ListName))
		if err != nil {
			t.Fatal(err)
		}
		files[f.URL] = b
	}
	return files
}

// edit returns files with one file's text changed by repl.
func edit(t *testing.T, files map[string][]byte, url, old, new string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for k, v := range files {
		out[k] = v
	}
	if !strings.Contains(string(out[url]), old) {
		t.Fatalf("%s has no %q", url, old)
	}
	out[url] = []byte(strings.Replace(string(out[url]), old, new, 1))
	return out
}

func TestReleaseFilesAreTheSourcesInReleaseUnderAptsNames(t *testing.T) {
	got := RecipeFor(Bookworm).ReleaseFiles()
	want := []ReleaseFile{
		{"http://deb.debian.org/debian/dists/bookworm/InRelease", "deb.debian.org_debian_dists_bookworm_InRelease"},
		{"http://deb.debian.org/debian/dists/bookworm-updates/InRelease", "deb.debian.org_debian_dists_bookworm-updates_InRelease"},
		{"http://deb.debian.org/debian-security/dists/bookworm-security/InRelease", "deb.debian.org_debian-security_dists_bookworm-security_InRelease"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("file %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

// The snapshot key takes the archive key: it must change when an index a
// node would upgrade from changes, and only then.
func TestArchiveKeyChangesWithAPackageIndexAndNotOtherwise(t *testing.T) {
	r := RecipeFor(Bookworm)
	files := archiveFiles(t, r)
	base, err := r.ArchiveKey(files)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := r.ArchiveKey(archiveFiles(t, r))
	if base != again || len(base) != 12 {
		t.Fatalf("key %q, then %q for the same files", base, again)
	}
	sec := "http://deb.debian.org/debian-security/dists/bookworm-security/InRelease"
	upd := "http://deb.debian.org/debian/dists/bookworm-updates/InRelease"
	main := "http://deb.debian.org/debian/dists/bookworm/InRelease"
	changes := []struct {
		what     string
		files    map[string][]byte
		newState bool
	}{
		{"a security update (main/binary-amd64/Packages)", edit(t, files, sec,
			"ffdfc0b919fa70ee96eca136614b977b4aa3041920e03f1b7f755abe564d373f  2579986 main/binary-amd64/Packages",
			"0fdfc0b919fa70ee96eca136614b977b4aa3041920e03f1b7f755abe564d373f  2580012 main/binary-amd64/Packages"), true},
		{"an update in contrib's arch-all index (-updates)", edit(t, files, upd,
			"0040f94d11d0039505328a90b2ff48968db873e9e7967307631bf40ef5679275       32 contrib/binary-all/Packages.xz",
			"1040f94d11d0039505328a90b2ff48968db873e9e7967307631bf40ef5679275      412 contrib/binary-all/Packages.xz"), true},
		{"a point release (the suite's main/binary-amd64/Packages.xz)", edit(t, files, main,
			"9e0b5aabb2465b3d2e7a7fe27f9913846277833f7a2826e7767acccff5b588c5  8790396",
			"8e0b5aabb2465b3d2e7a7fe27f9913846277833f7a2826e7767acccff5b588c5  8790400"), true},
		{"only the spacing of an index line", edit(t, files, main,
			"9e0b5aabb2465b3d2e7a7fe27f9913846277833f7a2826e7767acccff5b588c5  8790396",
			"9e0b5aabb2465b3d2e7a7fe27f9913846277833f7a2826e7767acccff5b588c5 8790396"), false},
		{"a re-signature (Date and Valid-Until)", edit(t, edit(t, files, sec, "Date: Wed, 02 Dec 2026 23:13:43 UTC", "Date: Fri, 04 Dec 2026 23:13:43 UTC"),
			sec, "Valid-Until: Wed, 09 Dec 2026 23:13:43 UTC", "Valid-Until: Fri, 11 Dec 2026 23:13:43 UTC"), false},
		{"the signature itself", edit(t, files, sec, "=w398", "=x398"), false},
		{"the translations", edit(t, files, sec, "0877b7815aef5e995f6a3ffa072bd561cf7382d59e6b6111c427a360156eb778", "1877b7815aef5e995f6a3ffa072bd561cf7382d59e6b6111c427a360156eb778"), false},
		{"a Contents file", edit(t, files, sec, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855        0 main/Contents-amd64",
			"f3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855       10 main/Contents-amd64"), false},
		{"a component the image does not use (non-free)", edit(t, files, sec, "8dd1f256a970e5193e48c0f98ac2ddc0d37ea22c8ffb5ddfe793703a43f4488e", "9dd1f256a970e5193e48c0f98ac2ddc0d37ea22c8ffb5ddfe793703a43f4488e"), false},
	}
	for _, c := range changes {
		got, err := r.ArchiveKey(c.files)
		if err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		if (got != base) != c.newState {
			t.Errorf("%s: key %s against %s; a new state: want %v", c.what, got, base, c.newState)
		}
	}
}

func TestArchiveKeyRefusesWhatIsNotTheSourcesInRelease(t *testing.T) {
	r := RecipeFor(Bookworm)
	files := archiveFiles(t, r)
	sec := "http://deb.debian.org/debian-security/dists/bookworm-security/InRelease"
	missing := map[string][]byte{}
	for k, v := range files {
		if k != sec {
			missing[k] = v
		}
	}
	if _, err := r.ArchiveKey(missing); err == nil || !strings.Contains(err.Error(), sec) {
		t.Errorf("a missing file: %v", err)
	}
	page := map[string][]byte{}
	for k, v := range files {
		page[k] = v
	}
	page[sec] = []byte("<html>proxy error</html>\n")
	if _, err := r.ArchiveKey(page); err == nil || !strings.Contains(err.Error(), "lists no package index of main or contrib") {
		t.Errorf("an error page: %v", err)
	}
}

// The image's state is read from its root without mounting it.
func TestImageArchiveKeyReadsTheListsFromTheRoot(t *testing.T) {
	for _, tool := range []string{"mkfs.ext4", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	r := RecipeFor(Bookworm)
	tree := t.TempDir()
	lists := filepath.Join(tree, "var", "lib", "apt", "lists")
	if err := os.MkdirAll(lists, 0o755); err != nil {
		t.Fatal(err)
	}
	files := archiveFiles(t, r)
	for _, f := range r.ReleaseFiles() {
		if err := os.WriteFile(filepath.Join(lists, f.ListName), files[f.URL], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Join(t.TempDir(), "root.img")
	if out, err := exec.Command("mkfs.ext4", "-q", "-d", tree, root, "16M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	img := Image{Key: "bookworm-test", Root: root, Manifest: Manifest{Recipe: r}}
	got, err := img.ArchiveKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want, _ := r.ArchiveKey(files)
	if got != want {
		t.Errorf("image's key %s, files' %s", got, want)
	}

	if err := os.Remove(filepath.Join(lists, r.ReleaseFiles()[2].ListName)); err != nil {
		t.Fatal(err)
	}
	root2 := filepath.Join(t.TempDir(), "root.img")
	if out, err := exec.Command("mkfs.ext4", "-q", "-d", tree, root2, "16M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	img.Root = root2
	_, err = img.ArchiveKey(t.Context())
	if err == nil || !strings.Contains(err.Error(), r.ReleaseFiles()[2].ListName) || !strings.Contains(err.Error(), "bookworm-test") {
		t.Errorf("a root without -security's InRelease: %v", err)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Errorf("want debugfs's own words, got an exit error: %v", err)
	}
}
