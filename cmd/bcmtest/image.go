package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
	"github.com/BitcoinCacheMachine/bcmtest/harness/workload"
)

func (a *app) imageCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "image",
		Short: "The embedded QEMU provider's VM images",
		Long: `The embedded QEMU provider's VM images (Debian with LXD, ZFS, Tor, wait-for-it,
cloud-init), cached under the user's cache directory and keyed by the recipe's hash.
One recipe per Debian release: bookworm (Debian 12, the default) and trixie
(Debian 13), chosen with --image or BCMTEST_IMAGE.`,
		Example: `  bcmtest image build
  bcmtest image build --image trixie
  bcmtest image key
  bcmtest image list -o json
  bcmtest image prune`,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE:              groupRunE(),
	}
	c.AddCommand(a.imageBuildCmd(), a.imageKeyCmd(), a.imageListCmd(), a.imagePruneCmd())
	return c
}

// imageStore is the image cache of the state and cache directories.
func imageStore(progress stamp) (state.Dirs, image.Store, error) {
	d, err := state.Default()
	if err != nil {
		return d, image.Store{}, envError{err}
	}
	return d, image.Store{Dir: filepath.Join(d.Cache, "images"), Progress: progress}, nil
}

func (a *app) imageBuildCmd() *cobra.Command {
	var img string
	c := &cobra.Command{
		Use:   "build",
		Short: "Build the chosen release's image unless it is cached (takes minutes)",
		Long: `Builds the VM image of the chosen release (--image, else BCMTEST_IMAGE, else
bookworm) unless it is cached, saying which stage it is in: bootstrap, packages,
the ZFS module build, customising, packing.`,
		Example:           "  bcmtest image build\n  bcmtest image build --image trixie",
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(c *cobra.Command, args []string) error {
			rel, err := imageChoice(img)
			if err != nil {
				return fmt.Errorf("image build: %w", err)
			}
			return a.imageBuild(c.Context(), rel)
		},
	}
	addImageFlag(c, &img)
	return c
}

func (a *app) imageBuild(ctx context.Context, rel image.Release) error {
	d, _, err := imageStore(stamp{a.stderr})
	if err != nil {
		return err
	}
	pr := newProgress(a.stderr)
	defer pr.Close()
	p, err := qemu.New(qemu.Config{Dirs: d, Recipe: image.RecipeFor(rel), Log: pr})
	if err != nil {
		return envError{err}
	}
	defer p.Close()
	start := time.Now()
	img, err := p.Image(ctx)
	pr.Close()
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "image %s ready in %s (kernel %s, built %s)\n", img.Key, time.Since(start).Round(time.Millisecond), img.Manifest.KernelVersion, img.Manifest.Built.Format(time.RFC3339))
	return nil
}

func (a *app) imageKeyCmd() *cobra.Command {
	var wl bool
	var img string
	c := &cobra.Command{
		Use:   "key",
		Short: "Print the current recipe's cache key without building anything",
		Long: `Prints the cache key of the VM image the qemu provider builds or reuses: the name of
its directory under the cache's images/ (the recipe's hash). With --workload, the key
of the workload specs' container image instead (of the same Debian release). The
release is --image's (default $BCMTEST_IMAGE or bookworm). Reads no state and needs
no root: CI uses it to name a cache of the images and booted snapshots.`,
		Example: `  bcmtest image key
  bcmtest image key --workload
  bcmtest image key --image trixie
  echo "key=bcmtest-$(bcmtest image key)-$(bcmtest image key --workload)"`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(c *cobra.Command, args []string) error {
			rel, err := imageChoice(img)
			if err != nil {
				return fmt.Errorf("image key: %w", err)
			}
			fmt.Fprintln(a.stdout, imageKey(rel, wl))
			return nil
		},
	}
	c.Flags().BoolVar(&wl, "workload", false, "the workload container image's key instead of the VM image's")
	addImageFlag(c, &img)
	return c
}

// imageKey is the key of the recipe the build would use, computed from the
// recipe alone: rel's VM image, or the workload specs' instance image of
// the same release.
func imageKey(rel image.Release, wl bool) string {
	if wl {
		return workload.ImageRecipeFor(string(rel)).Key()
	}
	return image.RecipeFor(rel).Key()
}

// imageJSON is one image, or one booted snapshot made from an image, in
// `image list --output json`.
type imageJSON struct {
	Kind string `json:"kind"` // image or snapshot
	Key  string `json:"key"`
	// Release is the image's Debian release (bookworm, trixie).
	Release       string    `json:"release"`
	KernelVersion string    `json:"kernel_version"`
	Built         time.Time `json:"built"`
	BuildSeconds  float64   `json:"build_seconds"`
	SizeBytes     int64     `json:"size_bytes"`
	// Current: the image is its release's current recipe (a snapshot:
	// of such an image).
	Current bool `json:"current"`
	// Stages is how long each named stage of the image's build took.
	Stages []image.StageTime `json:"stages,omitempty"`
	Dir    string            `json:"dir"`
	// Snapshots only: what it restores into, and the VMs layered on it.
	Shape *qemu.Shape `json:"shape,omitempty"`
	InUse []string    `json:"in_use,omitempty"`
}

func (a *app) imageListCmd() *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "list",
		Short: "Cached images, newest first, with their Debian release, marking each release's current one",
		Example: `  bcmtest image list
  bcmtest image list -o json`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkOutput(c, output); err != nil {
				return err
			}
			return a.imageList(output)
		},
	}
	addOutputFlag(c, &output)
	return c
}

// cachedImages is what list and prune both start from: the directories,
// the cached images (newest first) and the keys of every release's current
// recipe.
func (a *app) cachedImages() (state.Dirs, []image.Image, map[string]bool, error) {
	d, store, err := imageStore(stamp{a.stderr})
	if err != nil {
		return d, nil, nil, err
	}
	imgs, err := store.List()
	current := map[string]bool{}
	for _, k := range image.CurrentKeys() {
		current[k] = true
	}
	return d, imgs, current, err
}

func (a *app) imageList(output string) error {
	d, imgs, current, err := a.cachedImages()
	if err != nil {
		return err
	}
	snaps, err := qemu.Snapshots(d)
	if err != nil {
		return err
	}
	if output == "json" {
		out := []imageJSON{}
		for _, im := range imgs {
			out = append(out, imageJSON{Kind: "image", Key: im.Key, Release: im.Manifest.Recipe.Suite, KernelVersion: im.Manifest.KernelVersion, Built: im.Manifest.Built,
				BuildSeconds: im.Manifest.BuildTime.Seconds(), SizeBytes: im.Manifest.SizeBytes, Current: current[im.Key], Dir: im.Dir, Stages: im.Manifest.Stages})
		}
		for _, sn := range snaps {
			sh := sn.Manifest.Shape
			out = append(out, imageJSON{Kind: "snapshot", Key: sn.Key, Release: imageRelease(sh.Image), Built: sn.Manifest.Created, BuildSeconds: sn.Manifest.CreateTime.Seconds(),
				SizeBytes: sn.Manifest.SizeBytes, Current: current[sh.Image], Dir: sn.Dir, Shape: &sh, InUse: sn.InUse})
		}
		return writeJSON(a.stdout, out)
	}
	defer a.snapshotTable(snaps, current)
	if len(imgs) == 0 {
		fmt.Fprintln(a.stdout, "no images; `bcmtest image build` makes one")
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tRELEASE\tKERNEL\tBUILT\tBUILD TIME\tSIZE\tCURRENT")
	for _, im := range imgs {
		cur := ""
		if current[im.Key] {
			cur = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.1f GiB\t%s\n", im.Key, image.Release(im.Manifest.Recipe.Suite).Long(), im.Manifest.KernelVersion, im.Manifest.Built.Format(time.RFC3339),
			im.Manifest.BuildTime.Round(time.Second), float64(im.Manifest.SizeBytes)/(1<<30), cur)
	}
	return tw.Flush()
}

// snapshotTable lists the booted snapshots below the images.
func (a *app) snapshotTable(snaps []qemu.SnapshotInfo, current map[string]bool) {
	if len(snaps) == 0 {
		return
	}
	fmt.Fprintln(a.stdout)
	tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SNAPSHOT\tSHAPE\tMADE\tMAKE TIME\tSIZE\tCURRENT IMAGE\tIN USE BY")
	for _, sn := range snaps {
		cur := ""
		if current[sn.Manifest.Shape.Image] {
			cur = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.0f MiB\t%s\t%s\n", sn.Key, sn.Manifest.Shape, sn.Manifest.Created.Format(time.RFC3339),
			sn.Manifest.CreateTime.Round(time.Second), float64(sn.Manifest.SizeBytes)/(1<<20), cur, strings.Join(sn.InUse, ","))
	}
	tw.Flush()
}

func (a *app) imagePruneCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "prune",
		Short: "Remove the snapshots and images nothing needs: each release's current image and what VMs are layered on stay",
		Long: `Remove the snapshots and images nothing needs.

Snapshots go first: every one of an older image or that failed to restore,
and those beyond the newest few of each current image, unless a VM's disk is
layered on it. Then images: every one but each release's current one, unless
a snapshot that stayed or a VM of this state directory is layered on it (a
kept cluster made before the image recipe changed keeps its image until
` + "`bcmtest down`" + ` removes it).`,
		Example:           "  bcmtest image prune",
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(c *cobra.Command, args []string) error {
			return a.imagePrune()
		},
	}
}

func (a *app) imagePrune() error {
	d, imgs, current, err := a.cachedImages()
	if err != nil {
		return err
	}
	// Snapshots first: none of an older image, and only the newest few of
	// each current one; never one a VM's disk is layered on. Then images:
	// an older one stays while a snapshot that stayed or a VM is layered on
	// it (a kept cluster built before the recipe changed).
	removed, err := qemu.PruneSnapshots(d, qemu.SnapshotsKept, image.CurrentKeys()...)
	for _, k := range removed {
		fmt.Fprintf(a.stdout, "removed snapshot %s\n", k)
	}
	fmt.Fprintf(a.stdout, "%d snapshot(s) removed\n", len(removed))
	if err != nil {
		return err
	}
	users, err := qemu.ImageUsers(d)
	if err != nil {
		return err
	}
	n := 0
	for _, im := range imgs {
		if current[im.Key] {
			continue
		}
		if u := users[im.Key]; len(u) > 0 {
			fmt.Fprintf(a.stdout, "kept %s: in use by %s\n", im.Key, strings.Join(u, ", "))
			continue
		}
		if err := os.RemoveAll(im.Dir); err != nil {
			return fmt.Errorf("removing image %s: %w", im.Key, err)
		}
		fmt.Fprintf(a.stdout, "removed %s\n", im.Key)
		n++
	}
	fmt.Fprintf(a.stdout, "%d image(s) removed; kept each release's current one (%s)\n", n, strings.Join(image.CurrentKeys(), ", "))
	return nil
}

// imageRelease is the release an image key names (its prefix, as
// Recipe.Key makes it).
func imageRelease(key string) string {
	rel, _, _ := strings.Cut(key, "-")
	return rel
}
