package workload

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type entry struct {
	hdr  tar.Header
	body string
}

func tarOf(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		h.Size = int64(len(e.body))
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := w.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			w.Write([]byte(e.body))
		}
	}
	w.Close()
	return buf.Bytes()
}

// rootTree is what mmdebstrap writes: "./"-relative names from "./".
func rootTree(t *testing.T) []byte {
	return tarOf(t,
		entry{hdr: tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755}},
		entry{hdr: tar.Header{Name: "./usr/", Typeflag: tar.TypeDir, Mode: 0o755}},
		entry{hdr: tar.Header{Name: "./usr/bin/", Typeflag: tar.TypeDir, Mode: 0o755}},
		entry{hdr: tar.Header{Name: "./usr/bin/ping", Mode: 0o4755, Uid: 0, Gid: 0, PAXRecords: map[string]string{"SCHILY.xattr.security.capability": "\x01\x00\x00\x02"}}, body: "ELF"},
		entry{hdr: tar.Header{Name: "./usr/bin/ping4", Typeflag: tar.TypeLink, Linkname: "./usr/bin/ping"}},
		entry{hdr: tar.Header{Name: "./bin", Typeflag: tar.TypeSymlink, Linkname: "usr/bin"}},
		entry{hdr: tar.Header{Name: "./etc/shadow", Mode: 0o640, Gid: 42}, body: "root:*:1::::::\n"},
	)
}

func TestRebaseMovesNamesAndHardLinksKeepsSymlinksOwnersAndXattrs(t *testing.T) {
	var out bytes.Buffer
	w := tar.NewWriter(&out)
	if err := Rebase(tar.NewReader(bytes.NewReader(rootTree(t))), w, "rootfs"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	got := map[string]*tar.Header{}
	bodies := map[string]string{}
	r := tar.NewReader(&out)
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		got[h.Name], bodies[h.Name] = h, string(b)
	}
	for _, name := range []string{"rootfs/", "rootfs/usr/", "rootfs/usr/bin/", "rootfs/usr/bin/ping", "rootfs/usr/bin/ping4", "rootfs/bin", "rootfs/etc/shadow"} {
		if got[name] == nil {
			t.Errorf("no entry %s in %v", name, keys(got))
		}
	}
	if h := got["rootfs/usr/bin/ping4"]; h != nil && h.Linkname != "rootfs/usr/bin/ping" {
		t.Errorf("hard link target = %q, want rootfs/usr/bin/ping", h.Linkname)
	}
	if h := got["rootfs/bin"]; h != nil && h.Linkname != "usr/bin" {
		t.Errorf("symlink target = %q, want usr/bin unchanged", h.Linkname)
	}
	if h := got["rootfs/usr/bin/ping"]; h != nil {
		if h.Mode != 0o4755 || h.PAXRecords["SCHILY.xattr.security.capability"] != "\x01\x00\x00\x02" {
			t.Errorf("ping lost its mode or capability: mode %o, pax %v", h.Mode, h.PAXRecords)
		}
		if bodies["rootfs/usr/bin/ping"] != "ELF" {
			t.Errorf("ping body = %q", bodies["rootfs/usr/bin/ping"])
		}
	}
	if h := got["rootfs/etc/shadow"]; h != nil && (h.Gid != 42 || h.Mode != 0o640) {
		t.Errorf("shadow owner/mode = %d/%o, want 42/640", h.Gid, h.Mode)
	}
}

func keys(m map[string]*tar.Header) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestRebaseRejectsBadTrees(t *testing.T) {
	for name, tree := range map[string][]byte{
		"no root entry": tarOf(t, entry{hdr: tar.Header{Name: "./etc/hostname"}, body: "x"}),
		"climbing name": tarOf(t, entry{hdr: tar.Header{Name: "./", Typeflag: tar.TypeDir}}, entry{hdr: tar.Header{Name: "./../etc/passwd"}, body: "x"}),
		"climbing link": tarOf(t, entry{hdr: tar.Header{Name: "./", Typeflag: tar.TypeDir}}, entry{hdr: tar.Header{Name: "./x", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"}}),
	} {
		err := Rebase(tar.NewReader(bytes.NewReader(tree)), tar.NewWriter(io.Discard), "rootfs")
		if err == nil {
			t.Errorf("%s: Rebase accepted it", name)
		}
	}
}

func TestPackUnifiedFingerprintIsTheTarballsSHA256(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "rootfs.tar")
	os.WriteFile(root, rootTree(t), 0o644)
	out := filepath.Join(dir, "image.tar.gz")
	meta := Metadata(DefaultImageRecipe(), time.Unix(1700000000, 0))
	fp, size, err := packUnified(root, out, meta)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	sum := sha256.Sum256(b)
	if fp != hex.EncodeToString(sum[:]) || size != int64(len(b)) {
		t.Errorf("fingerprint %s size %d; file has %x size %d", fp, size, sum, len(b))
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	r := tar.NewReader(zr)
	h, err := r.Next()
	if err != nil || h.Name != "metadata.yaml" {
		t.Fatalf("first entry %v %v, want metadata.yaml", h, err)
	}
	m, _ := io.ReadAll(r)
	for _, want := range []string{"architecture: x86_64", "creation_date: 1700000000", "release: bookworm"} {
		if !strings.Contains(string(m), want) {
			t.Errorf("metadata.yaml lacks %q:\n%s", want, m)
		}
	}
	if h, err := r.Next(); err != nil || h.Name != "rootfs/" {
		t.Errorf("second entry %v %v, want rootfs/", h, err)
	}
}

func TestRecipeKeyFollowsEveryField(t *testing.T) {
	a := DefaultImageRecipe()
	if a.Key() != DefaultImageRecipe().Key() {
		t.Fatal("the same recipe has two keys")
	}
	if !strings.HasPrefix(a.Key(), "instance-bookworm-") {
		t.Errorf("key %q: want instance-bookworm-HASH, apart from the VM images' keys", a.Key())
	}
	b := DefaultImageRecipe()
	b.Packages = append(b.Packages, "netcat-openbsd")
	c := DefaultImageRecipe()
	c.Init += "# changed\n"
	if a.Key() == b.Key() || a.Key() == c.Key() {
		t.Error("changing the packages or the init kept the key")
	}
}

func TestRecipeValidateNamesTheField(t *testing.T) {
	r := DefaultImageRecipe()
	r.Suite, r.Mirror, r.Init = "", "deb.debian.org", "echo hi"
	err := r.Validate()
	for _, want := range []string{"suite", "mirror", "init"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %s", err, want)
		}
	}
	if err := DefaultImageRecipe().Validate(); err != nil {
		t.Errorf("the default recipe is invalid: %v", err)
	}
}

// fakeEntry publishes an entry as a build would, without mmdebstrap.
func fakeEntry(t *testing.T, s ImageStore, r ImageRecipe) Image {
	t.Helper()
	dir := filepath.Join(s.Dir, r.Key())
	os.MkdirAll(dir, 0o755)
	root := filepath.Join(t.TempDir(), "rootfs.tar")
	os.WriteFile(root, rootTree(t), 0o644)
	fp, size, err := packUnified(root, filepath.Join(dir, imageTarballName), Metadata(r, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(ImageManifest{Key: r.Key(), Recipe: r, Fingerprint: fp, SizeBytes: size})
	os.WriteFile(filepath.Join(dir, imageManifestName), b, 0o644)
	img, err := s.Lookup(r)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestGetReturnsACachedImageWithoutBuildingItFast(t *testing.T) {
	s := ImageStore{Dir: t.TempDir()}
	r := DefaultImageRecipe()
	want := fakeEntry(t, s, r)
	t.Setenv("PATH", t.TempDir()) // no mmdebstrap: a build would fail
	start := time.Now()
	got, err := s.Get(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("cache lookup took %s, want under 1s", d)
	}
	if got.Fingerprint() != want.Fingerprint() || got.Path != filepath.Join(s.Dir, r.Key(), "image.tar.gz") {
		t.Errorf("Get = %+v, want the cached %+v", got, want)
	}
}

func TestLookupTreatsATruncatedTarballAsAbsent(t *testing.T) {
	s := ImageStore{Dir: t.TempDir()}
	r := DefaultImageRecipe()
	img := fakeEntry(t, s, r)
	os.Chmod(img.Path, 0o644)
	os.Truncate(img.Path, 10)
	if _, err := s.Lookup(r); err == nil {
		t.Error("Lookup accepted a tarball shorter than its manifest says")
	}
	os.Remove(filepath.Join(img.Dir, imageManifestName))
	if _, err := s.Lookup(r); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Lookup without a manifest = %v, want not-exist", err)
	}
}

func TestGetWithoutMmdebstrapSaysWhatToInstall(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := ImageStore{Dir: t.TempDir()}.Get(context.Background(), DefaultImageRecipe())
	if err == nil || !strings.Contains(err.Error(), "mmdebstrap") || !strings.Contains(err.Error(), "make deps") {
		t.Errorf("Get = %v, want it to name mmdebstrap and make deps", err)
	}
}

func TestGetRejectsABadRecipeBeforeAnything(t *testing.T) {
	r := DefaultImageRecipe()
	r.Architecture = ""
	dir := t.TempDir()
	if _, err := (ImageStore{Dir: dir}).Get(context.Background(), r); err == nil || !strings.Contains(err.Error(), "architecture") {
		t.Errorf("Get = %v, want an error naming architecture", err)
	}
	if des, _ := os.ReadDir(dir); len(des) != 0 {
		t.Errorf("a rejected recipe left %d entries in the store", len(des))
	}
}
