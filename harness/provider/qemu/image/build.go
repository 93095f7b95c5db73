package image

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/artifact"
	"github.com/BitcoinCacheMachine/bcmtest/harness/buildstep"
)

// Image is a built, complete cache entry. Its files are read-only by contract.
type Image struct {
	Key        string
	Dir        string
	Kernel     string
	Initrd     string
	Root       string // raw ext4 image; VMs use qcow2 overlays on top
	KernelArgs string
	Manifest   Manifest
}

// Manifest is written last into an entry; its presence marks the entry complete.
type Manifest struct {
	Key           string        `json:"key"`
	Recipe        Recipe        `json:"recipe"`
	KernelVersion string        `json:"kernel_version"`
	Built         time.Time     `json:"built"`
	BuildTime     time.Duration `json:"build_time_ns"`
	SizeBytes     int64         `json:"size_bytes"`
	// Stages is how long each named stage of the build took (none in
	// images built before stages were timed).
	Stages []StageTime `json:"stages,omitempty"`
}

const manifestName = "manifest.json"

// Store is the image cache under a cache directory.
type Store struct {
	Dir string // e.g. ~/.cache/bcmtest/images
	// Progress receives build output and periodic "still building" lines.
	Progress io.Writer
}

// Lookup returns the complete image for r, or os.ErrNotExist.
func (s Store) Lookup(r Recipe) (Image, error) {
	return s.open(filepath.Join(s.Dir, r.Key()))
}

func (s Store) open(dir string) (Image, error) {
	b, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		return Image{}, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return Image{}, fmt.Errorf("reading image manifest in %s: %w", dir, err)
	}
	img := Image{
		Key: m.Key, Dir: dir, Manifest: m, KernelArgs: m.Recipe.KernelArgs,
		Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd.img"), Root: filepath.Join(dir, "root.img"),
	}
	for _, f := range []string{img.Kernel, img.Initrd, img.Root} {
		if _, err := os.Stat(f); err != nil {
			return Image{}, fmt.Errorf("image %s is incomplete: %w", m.Key, err)
		}
	}
	return img, nil
}

// List returns every complete image in the store, newest first.
func (s Store) List() ([]Image, error) {
	entries, err := os.ReadDir(s.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing images in %s: %w", s.Dir, err)
	}
	var out []Image
	for _, e := range entries {
		if !e.IsDir() || strings.Contains(e.Name(), ".tmp-") {
			continue
		}
		if img, err := s.open(filepath.Join(s.Dir, e.Name())); err == nil {
			out = append(out, img)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Manifest.Built.After(out[j].Manifest.Built) })
	return out, nil
}

// artifacts is the shared cached-artifact store behind the image cache.
func (s Store) artifacts() artifact.Store {
	return artifact.Store{Dir: s.Dir, Kind: "image", Progress: s.Progress}
}

// complete says whether dir holds a whole image (its manifest is written last).
func complete(dir string) error {
	_, err := Store{}.open(dir)
	return err
}

// Get returns the image for r, building it when absent. Concurrent callers
// (other processes too) wait on a lock; only one builds, the rest reuse.
func (s Store) Get(ctx context.Context, r Recipe) (Image, error) {
	if img, err := s.Lookup(r); err == nil {
		return img, nil
	}
	if err := requireTools(); err != nil {
		return Image{}, err
	}
	e, err := s.artifacts().Get(ctx, r.Key(), complete, func(ctx context.Context, tmp string) error {
		return s.build(ctx, r, tmp)
	})
	if err != nil {
		return Image{}, err
	}
	return s.open(e.Dir)
}

// requireTools names the Debian package for each missing build tool.
func requireTools() error {
	var missing []string
	for tool, pkg := range map[string]string{"mmdebstrap": "mmdebstrap", "mkfs.ext4": "e2fsprogs", "tar": "tar"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, fmt.Sprintf("%s (install package %s)", tool, pkg))
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("building the VM image needs %s; run `make deps`", strings.Join(missing, ", "))
	}
	return nil
}

func (s Store) printf(format string, args ...any) {
	if s.Progress != nil {
		fmt.Fprintf(s.Progress, format, args...)
	}
}

// build makes the image for r in tmp; the store publishes it.
func (s Store) build(ctx context.Context, r Recipe, tmp string) error {
	key := r.Key()
	b := &buildRun{s: s, key: key, start: time.Now()}
	b.reporter, b.structured = s.Progress.(StageReporter)
	s.printf("image %s: building the %s image with mmdebstrap (takes minutes)\n", key, r.Release().Long())
	b.enter(Stage{Stage: StageBootstrap, Of: StageBootstrap})

	hook := filepath.Join(tmp, "customize.sh")
	if err := os.WriteFile(hook, []byte(r.Customize), 0o700); err != nil {
		return fmt.Errorf("writing customize hook: %w", err)
	}
	tarball := filepath.Join(tmp, "rootfs.tar")
	args := []string{
		"--variant=" + r.Variant,
		"--components=" + strings.Join(r.Components, ","),
		"--include=" + strings.Join(r.Packages, ","),
		"--aptopt=Acquire::Retries \"3\"",
		// apt's and dpkg's lines ("Setting up zfs-dkms ..."): without
		// them the stages cannot tell the ZFS build from the packages.
		"--verbose",
		// Quoted: the cache dir may have spaces or quotes in it.
		"--customize-hook=sh " + buildstep.ShellQuote(hook) + ` "$1"`,
	}
	if r.KeepAptLists {
		args = append(args, "--skip=cleanup/apt/lists")
	}
	args = append(args, r.Suite, tarball)
	args = append(args, r.Sources()...)
	if err := b.run(ctx, "mmdebstrap", args...); err != nil {
		return fmt.Errorf("building image %s with mmdebstrap (in stage %s): %w", key, b.clock.cur, err)
	}
	tree := filepath.Join(tmp, "rootfs")
	if err := os.Mkdir(tree, 0o755); err != nil {
		return err
	}
	b.enter(Stage{Stage: "unpacking root tree", Of: StagePacking})
	s.printf("image %s: unpacking root tree (%s)\n", key, since(b.start))
	if err := b.run(ctx, "tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf", tarball, "-C", tree); err != nil {
		return fmt.Errorf("unpacking image %s: %w", key, err)
	}
	os.Remove(tarball)
	if err := writePackageNames(tree, filepath.Join(tmp, packagesName)); err != nil {
		return fmt.Errorf("listing the packages image %s knows: %w", key, err)
	}
	kver, err := copyBootFiles(tree, tmp)
	if err != nil {
		return fmt.Errorf("extracting kernel of image %s: %w", key, err)
	}
	b.enter(Stage{Stage: fmt.Sprintf("writing %d GiB ext4 root filesystem", r.RootSizeGiB), Of: StagePacking})
	s.printf("image %s: writing %d GiB ext4 root filesystem (%s)\n", key, r.RootSizeGiB, since(b.start))
	root := filepath.Join(tmp, "root.img")
	if err := b.run(ctx, "mkfs.ext4", "-q", "-F", "-L", "root", "-d", tree, root, strconv.Itoa(r.RootSizeGiB)+"G"); err != nil {
		return fmt.Errorf("writing root filesystem of image %s: %w", key, err)
	}
	if err := os.RemoveAll(tree); err != nil {
		return fmt.Errorf("removing build tree: %w", err)
	}
	os.Remove(hook)
	os.Chmod(root, 0o444)
	var size int64
	filepath.Walk(tmp, func(_ string, fi os.FileInfo, _ error) error {
		if fi != nil && !fi.IsDir() {
			size += fi.Size()
		}
		return nil
	})
	stages := b.clock.stop(time.Now())
	m := Manifest{Key: key, Recipe: r, KernelVersion: kver, Built: time.Now().UTC(), BuildTime: time.Since(b.start), SizeBytes: size, Stages: stages}
	buf, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(filepath.Join(tmp, manifestName), buf, 0o644); err != nil {
		return fmt.Errorf("writing manifest of image %s: %w", key, err)
	}
	s.printf("image %s: built in %s (kernel %s): %s\n", key, since(b.start), kver, StageTimes(stages))
	return nil
}

// packagesName lists, one per line and sorted, every package name the
// image's own apt lists know: what a cloud-init file's `packages:` can ask
// for. Lint reads it without booting anything.
const packagesName = "packages.txt"

// writePackageNames collects the Package: names of the tree's apt lists.
// An image built without its lists gets an empty file.
func writePackageNames(tree, dst string) error {
	lists, _ := filepath.Glob(filepath.Join(tree, "var", "lib", "apt", "lists", "*_Packages"))
	seen := map[string]bool{}
	for _, l := range lists {
		f, err := os.Open(l)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			if name, ok := strings.CutPrefix(sc.Text(), "Package: "); ok {
				seen[strings.TrimSpace(name)] = true
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return fmt.Errorf("reading %s: %w", l, err)
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return os.WriteFile(dst, []byte(strings.Join(names, "\n")+"\n"), 0o444)
}

// KnownPackages returns the package names the image's apt lists know
// (empty when the image was built before they were recorded).
func (img Image) KnownPackages() (map[string]bool, error) {
	b, err := os.ReadFile(filepath.Join(img.Dir, packagesName))
	if errors.Is(err, os.ErrNotExist) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the package list of image %s: %w", img.Key, err)
	}
	out := map[string]bool{}
	for _, n := range strings.Fields(string(b)) {
		out[n] = true
	}
	return out, nil
}

// copyBootFiles copies the newest kernel and its initrd out of the tree.
func copyBootFiles(tree, dst string) (string, error) {
	kernels, _ := filepath.Glob(filepath.Join(tree, "boot", "vmlinuz-*"))
	if len(kernels) == 0 {
		return "", errors.New("no /boot/vmlinuz-* in the image")
	}
	sort.Strings(kernels)
	k := kernels[len(kernels)-1]
	ver := strings.TrimPrefix(filepath.Base(k), "vmlinuz-")
	for src, name := range map[string]string{k: "vmlinuz", filepath.Join(tree, "boot", "initrd.img-"+ver): "initrd.img"} {
		b, err := os.ReadFile(src)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dst, name), b, 0o444); err != nil {
			return "", err
		}
	}
	return ver, nil
}

func since(t time.Time) string { return time.Since(t).Round(time.Second).String() }

// buildRun is one build's progress: its named stages, timed, and the step
// within them, reported as they change and, in quiet stretches, as one
// "still in" line (by the StageReporter when Progress is one, by the
// store's own lines otherwise; never both).
type buildRun struct {
	s          Store
	key        string
	start      time.Time
	reporter   StageReporter
	structured bool
	clock      stageClock
	mu         sync.Mutex
	cur        Stage
}

// enter makes st the build's step; a new named stage gets a line saying
// how long the one before took.
func (b *buildRun) enter(st Stage) {
	b.mu.Lock()
	b.cur = st
	ended, changed := b.clock.enter(st.Of, time.Now())
	b.mu.Unlock()
	if changed {
		took := ""
		if ended.Stage != "" {
			took = fmt.Sprintf("; %s took %s", ended.Stage, ended.Took.Round(time.Second))
		}
		b.s.printf("image %s: stage %s (%s%s)\n", b.key, st.Of, since(b.start), took)
	}
}

// run executes a build step, streaming its output as progress and keeping
// the tail for the error (harness/buildstep). mmdebstrap's output becomes
// the build's stages; with a StageReporter only its warnings and errors
// are lines, and the reporter says when a step is quiet.
func (b *buildRun) run(ctx context.Context, name string, args ...string) error {
	var parser MmdebstrapParser
	step := buildstep.Step{Name: name, Args: args, OnLine: func(line string) {
		if name == "mmdebstrap" {
			if st, changed := parser.Line(line); changed {
				b.enter(st)
				if b.structured {
					b.reporter.ImageStage(st)
				}
			}
			if b.structured && !strings.HasPrefix(line, "W: ") && !strings.HasPrefix(line, "E: ") {
				return
			}
		}
		b.s.printf("  [%s] %s\n", since(b.start), line)
	}}
	if !b.structured {
		step.OnQuiet = func() {
			b.mu.Lock()
			cur := b.cur
			b.mu.Unlock()
			b.s.printf("image %s: still in %s (%s)\n", b.key, cur, since(b.start))
		}
	}
	return buildstep.Run(ctx, step)
}
