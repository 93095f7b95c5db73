// Package workload is what the harness runs on a formed cluster to prove it
// runs BCM's kind of workload: a small Debian container image built offline
// from Debian's archive and cached like the VM image, its import into the
// cluster, and a network that connects instances on different members.
package workload

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/artifact"
	"github.com/BitcoinCacheMachine/bcmtest/harness/buildstep"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

// ImageRecipe is everything that decides the instance image's contents.
// Its hash names the cache entry, so changing any field builds a new one.
type ImageRecipe struct {
	Suite      string   `json:"suite"`
	Mirror     string   `json:"mirror"`
	Components []string `json:"components"`
	// Variant is mmdebstrap's: essential is Debian's Essential set only.
	Variant  string   `json:"variant"`
	Packages []string `json:"packages"`
	// Exclude are dpkg path-exclude globs: documentation nobody reads in a
	// test container, which would only slow every unpack under emulation.
	Exclude []string `json:"exclude"`
	// Init is /sbin/init of the image.
	Init string `json:"init"`
	// Architecture is LXD's name for the image's architecture.
	Architecture string `json:"architecture"`
}

// Key is a short stable name for the recipe, used as the cache directory
// (beside the VM images, which are named by suite and hash too).
func (r ImageRecipe) Key() string {
	b, _ := json.Marshal(r)
	sum := sha256.Sum256(b)
	return "instance-" + r.Suite + "-" + hex.EncodeToString(sum[:])[:12]
}

// Validate names the field and the rule a recipe breaks.
func (r ImageRecipe) Validate() error {
	var errs []error
	if r.Suite == "" || strings.ContainsAny(r.Suite, "/ \x00") {
		errs = append(errs, fmt.Errorf("instance image recipe: suite %q must be a Debian suite name such as bookworm", r.Suite))
	}
	if !strings.HasPrefix(r.Mirror, "http://") && !strings.HasPrefix(r.Mirror, "https://") {
		errs = append(errs, fmt.Errorf("instance image recipe: mirror %q must be an http(s) URL of a Debian archive", r.Mirror))
	}
	if r.Variant == "" {
		errs = append(errs, errors.New("instance image recipe: variant must be set (essential, minbase...)"))
	}
	if !strings.HasPrefix(r.Init, "#!") {
		errs = append(errs, errors.New("instance image recipe: init must be a script starting with #!"))
	}
	if r.Architecture == "" {
		errs = append(errs, errors.New("instance image recipe: architecture must be set (x86_64)"))
	}
	return errors.Join(errs...)
}

// DefaultImageRecipe is the instance image of Debian 12 nodes (bookworm):
// ImageRecipeFor("bookworm").
func DefaultImageRecipe() ImageRecipe { return ImageRecipeFor("bookworm") }

// ImageRecipeFor is a Debian container of about 24 MB compressed, of the
// release suite (the nodes' own, so instances run what their host runs):
// the Essential set, iproute2 and ping, and a tiny init. It needs nothing
// from the VM image beyond LXD itself, and nothing from the network but
// Debian's archive on the host. Validate checks the suite's form.
func ImageRecipeFor(suite string) ImageRecipe {
	return ImageRecipe{
		Suite:        suite,
		Mirror:       "http://deb.debian.org/debian",
		Components:   []string{"main"},
		Variant:      "essential",
		Packages:     []string{"iproute2", "iputils-ping", "procps"},
		Exclude:      []string{"/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*", "/usr/share/info/*", "/usr/lib/x86_64-linux-gnu/gconv/*"},
		Init:         DefaultInit,
		Architecture: "x86_64",
	}
}

// AddressEnv is the instance environment key (LXD config
// environment.WORKLOAD_ADDRESS) whose value, an address with prefix length,
// the image's init puts on eth0 at every start, so an instance keeps its
// address across stop, move, copy and evacuation.
const AddressEnv = "WORKLOAD_ADDRESS"

// DefaultInit is the image's PID 1: loopback up, eth0 addressed from the
// instance's environment, then nothing until LXD stops the instance (SIGPWR
// for a clean stop, which it answers at once).
const DefaultInit = `#!/bin/sh
# bcmtest workload init
ip link set lo up
if [ -n "${WORKLOAD_ADDRESS:-}" ] && ip link show eth0 >/dev/null 2>&1; then
  ip addr add "$WORKLOAD_ADDRESS" dev eth0
  ip link set eth0 up
fi
echo started > /run/workload-init
trap 'exit 0' PWR TERM INT
while :; do sleep 3600 & wait $!; done
`

// Image is a complete cache entry: an LXD unified image tarball.
type Image struct {
	Key string
	Dir string
	// Path is the unified tarball (metadata.yaml and rootfs/, gzip).
	Path     string
	Manifest ImageManifest
}

// Fingerprint is LXD's name for the image: the SHA-256 of the tarball.
func (img Image) Fingerprint() string { return img.Manifest.Fingerprint }

// ImageManifest is written last into an entry; its presence marks the
// entry complete.
type ImageManifest struct {
	Key         string        `json:"key"`
	Recipe      ImageRecipe   `json:"recipe"`
	Fingerprint string        `json:"fingerprint"`
	Built       time.Time     `json:"built"`
	BuildTime   time.Duration `json:"build_time_ns"`
	SizeBytes   int64         `json:"size_bytes"`
}

const (
	imageManifestName = "instance-manifest.json"
	imageTarballName  = "image.tar.gz"
)

// ImageStore is the instance image cache under a cache directory (the VM
// images' directory: the same store, keys that never collide).
type ImageStore struct {
	Dir string
	// Progress receives one line per build step and "still building"
	// lines on quiet stretches; nil discards them.
	Progress io.Writer
}

func (s ImageStore) artifacts() artifact.Store {
	return artifact.Store{Dir: s.Dir, Kind: "instance image", Progress: s.Progress}
}

// Lookup returns the complete image for r, or an error wrapping
// os.ErrNotExist when there is none.
func (s ImageStore) Lookup(r ImageRecipe) (Image, error) {
	return openImage(filepath.Join(s.Dir, r.Key()))
}

func openImage(dir string) (Image, error) {
	var m ImageManifest
	if err := state.LoadJSON(filepath.Join(dir, imageManifestName), &m); err != nil {
		return Image{}, err
	}
	img := Image{Key: m.Key, Dir: dir, Path: filepath.Join(dir, imageTarballName), Manifest: m}
	fi, err := os.Stat(img.Path)
	if err != nil {
		return Image{}, fmt.Errorf("instance image %s is incomplete: %w", m.Key, err)
	}
	if fi.Size() != m.SizeBytes || len(m.Fingerprint) != 64 {
		return Image{}, fmt.Errorf("instance image %s is incomplete: tarball of %d bytes, manifest says %d (fingerprint %q)", m.Key, fi.Size(), m.SizeBytes, m.Fingerprint)
	}
	return img, nil
}

func completeImage(dir string) error {
	_, err := openImage(dir)
	return err
}

// Get returns the image for r, building it when absent. Concurrent callers
// (other processes too) wait on the store's lock; only one builds.
func (s ImageStore) Get(ctx context.Context, r ImageRecipe) (Image, error) {
	if err := r.Validate(); err != nil {
		return Image{}, err
	}
	if img, err := s.Lookup(r); err == nil {
		return img, nil
	}
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return Image{}, errors.New("building the instance image needs mmdebstrap (install package mmdebstrap); run `make deps`")
	}
	e, err := s.artifacts().Get(ctx, r.Key(), completeImage, func(ctx context.Context, tmp string) error {
		return s.build(ctx, r, tmp)
	})
	if err != nil {
		return Image{}, err
	}
	return openImage(e.Dir)
}

func (s ImageStore) printf(format string, args ...any) {
	if s.Progress != nil {
		fmt.Fprintf(s.Progress, format, args...)
	}
}

// build makes the image for r in tmp: mmdebstrap writes a root tarball,
// which is repacked under rootfs/ beside metadata.yaml (no unpacking, so
// ownership and modes pass through as they are), then the manifest.
func (s ImageStore) build(ctx context.Context, r ImageRecipe, tmp string) error {
	start := time.Now()
	key := r.Key()
	s.printf("instance image %s: building a Debian %s container image with mmdebstrap\n", key, r.Suite)
	initPath := filepath.Join(tmp, "init")
	if err := os.WriteFile(initPath, []byte(r.Init), 0o755); err != nil {
		return fmt.Errorf("writing the init of instance image %s: %w", key, err)
	}
	rootTar := filepath.Join(tmp, "rootfs.tar")
	args := []string{
		"--variant=" + r.Variant,
		"--components=" + strings.Join(r.Components, ","),
		// Merged /usr without the usrmerge package, which would pull perl in.
		"--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
		"--aptopt=APT::Install-Recommends \"false\"",
		"--aptopt=Acquire::Retries \"3\"",
		// Quoted: the cache dir may have spaces or quotes in it.
		`--customize-hook=install -m 0755 ` + buildstep.ShellQuote(initPath) + ` "$1/sbin/init"`,
		`--customize-hook=rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/etc/machine-id; : > "$1/etc/machine-id"`,
	}
	if len(r.Packages) > 0 {
		args = append(args, "--include="+strings.Join(r.Packages, ","))
	}
	for _, ex := range r.Exclude {
		args = append(args, "--dpkgopt=path-exclude="+ex)
	}
	args = append(args, r.Suite, rootTar, "deb "+r.Mirror+" "+r.Suite+" "+strings.Join(r.Components, " "))
	if err := s.run(ctx, start, "mmdebstrap", args...); err != nil {
		return fmt.Errorf("building instance image %s with mmdebstrap: %w", key, err)
	}
	s.printf("instance image %s: packing the LXD unified tarball (%s)\n", key, since(start))
	out := filepath.Join(tmp, imageTarballName)
	fp, size, err := packUnified(rootTar, out, Metadata(r, time.Now()))
	if err != nil {
		return fmt.Errorf("packing instance image %s: %w", key, err)
	}
	os.Remove(rootTar)
	os.Remove(initPath)
	os.Chmod(out, 0o444)
	m := ImageManifest{Key: key, Recipe: r, Fingerprint: fp, Built: time.Now().UTC(), BuildTime: time.Since(start), SizeBytes: size}
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(filepath.Join(tmp, imageManifestName), b, 0o644); err != nil {
		return fmt.Errorf("writing the manifest of instance image %s: %w", key, err)
	}
	s.printf("instance image %s: built in %s (%.1f MB, fingerprint %s)\n", key, since(start), float64(size)/1e6, fp[:12])
	return nil
}

// Metadata is the image's metadata.yaml.
func Metadata(r ImageRecipe, created time.Time) []byte {
	return []byte(fmt.Sprintf(`architecture: %s
creation_date: %d
properties:
  os: debian
  release: %s
  description: bcmtest workload (Debian %s, %s)
  recipe: %s
`, r.Architecture, created.Unix(), r.Suite, r.Suite, r.Variant, r.Key()))
}

// packUnified writes a gzip tarball of metadata.yaml and every entry of
// rootTar under rootfs/, and returns its SHA-256 (LXD's fingerprint of a
// unified image) and size.
func packUnified(rootTar, out string, metadata []byte) (string, int64, error) {
	in, err := os.Open(rootTar)
	if err != nil {
		return "", 0, err
	}
	defer in.Close()
	f, err := os.OpenFile(out, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	zw, _ := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: "metadata.yaml", Mode: 0o644, Size: int64(len(metadata)), ModTime: time.Now(), Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return "", 0, err
	}
	if _, err := tw.Write(metadata); err != nil {
		return "", 0, err
	}
	if err := Rebase(tar.NewReader(bufio.NewReaderSize(in, 1<<20)), tw, "rootfs"); err != nil {
		return "", 0, err
	}
	for _, c := range []io.Closer{tw, zw} {
		if err := c.Close(); err != nil {
			return "", 0, err
		}
	}
	if err := bw.Flush(); err != nil {
		return "", 0, err
	}
	if err := f.Sync(); err != nil {
		return "", 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), fi.Size(), nil
}

// Rebase copies every entry of r to w under dir/: names and hard-link
// targets are moved, symlink targets (relative to the entry or absolute in
// the container) are kept, and ownership, modes and extended attributes
// pass through unchanged.
func Rebase(r *tar.Reader, w *tar.Writer, dir string) error {
	root := false
	for {
		hdr, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the root tarball: %w", err)
		}
		rel, err := cleanEntry(hdr.Name)
		if err != nil {
			return err
		}
		if rel == "" {
			root = true
			hdr.Name = dir + "/"
		} else {
			hdr.Name = dir + "/" + rel
			if hdr.Typeflag == tar.TypeDir {
				hdr.Name += "/"
			}
		}
		if hdr.Typeflag == tar.TypeLink {
			target, err := cleanEntry(hdr.Linkname)
			if err != nil || target == "" {
				return fmt.Errorf("root tarball: hard link %s points at %q, outside the tree", hdr.Name, hdr.Linkname)
			}
			hdr.Linkname = dir + "/" + target
		}
		if err := w.WriteHeader(hdr); err != nil {
			return fmt.Errorf("writing %s: %w", hdr.Name, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := io.Copy(w, r); err != nil {
				return fmt.Errorf("writing %s: %w", hdr.Name, err)
			}
		}
	}
	if !root {
		return errors.New("root tarball has no root directory entry (./)")
	}
	return nil
}

// cleanEntry turns "./usr/bin/" into "usr/bin"; "" is the root. A name
// that climbs out of the tree is an error.
func cleanEntry(name string) (string, error) {
	var parts []string
	for _, part := range strings.Split(name, "/") {
		switch part {
		case "", ".":
		case "..":
			return "", fmt.Errorf("root tarball: entry %q climbs out of the tree", name)
		default:
			parts = append(parts, part)
		}
	}
	return strings.Join(parts, "/"), nil
}

func since(t time.Time) string { return time.Since(t).Round(time.Second).String() }

// run executes a build step (harness/buildstep) with mmdebstrap's step
// lines as progress, and a line on quiet stretches.
func (s ImageStore) run(ctx context.Context, start time.Time, name string, args ...string) error {
	return buildstep.Run(ctx, buildstep.Step{Name: name, Args: args,
		OnLine: func(line string) {
			// mmdebstrap's step lines (I:), warnings and errors; not
			// apt's and dpkg's per-package chatter.
			if strings.HasPrefix(line, "I: ") || strings.HasPrefix(line, "W: ") || strings.HasPrefix(line, "E: ") {
				s.printf("  [%s] %s\n", since(start), line)
			}
		},
		OnQuiet: func() { s.printf("  [%s] %s still running\n", since(start), name) },
	})
}
