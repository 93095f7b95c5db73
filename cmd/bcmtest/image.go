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
	c := &cobra.Command{
		Use:   "key",
		Short: "Print the current recipe's cache key without building anything",
		Long: `Prints the cache key of the VM image the qemu provider builds or reuses: the name of
its directory under the cache's images/ (the recipe's hash). With --workload, the key
of the workload specs' container image instead. Reads no state and needs no root:
CI uses it to name a cache of the images and booted snapshots.`,
		Example: `  bcmtest image key
  bcmtest image key --workload
  echo "key=bcmtest-$(bcmtest image key)-$(bcmtest image key --workload)"`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(c *cobra.Command, args []string) error {
			fmt.Fprintln(a.stdout, imageKey(wl))
			return nil
		},
	}
	c.Flags().BoolVar(&wl, "workload", false, "the workload container image's key instead of the VM image's")
	return c
}

// imageKey is the key of the recipe the build would use, computed from the
// recipe alone: the VM image the qemu provider defaults to, or the
// workload specs' instance image.
func imageKey(wl bool) string {
	if wl {
		return workload.DefaultImageRecipe().Key()
	}
	return image.DefaultRecipe().Key()
}

// imageJSON is one image, or one booted snapshot made from an image, in
// `image list --output json`.
type imageJSON struct {
	Kind          string    `json:"kind"` // image or snapshot
	Key           string    `json:"key"`
	KernelVersion string    `json:"kernel_version"`
	Built         time.Time `json:"built"`
	BuildSeconds  float64   `json:"build_seconds"`
	SizeBytes     int64     `json:"size_bytes"`
	Current       bool      `json:"current"`
	Dir           string    `json:"dir"`
	// Snapshots only: what it restores into, and the VMs layered on it.
	Shape *qemu.Shape `json:"shape,omitempty"`
	InUse []string    `json:"in_use,omitempty"`
}

func (a *app) imageListCmd() *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "list",
		Short: "Cached images, newest first, marking the current one",
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
// the cached images (newest first) and the current recipe's key.
func (a *app) cachedImages() (state.Dirs, []image.Image, string, error) {
	d, store, err := imageStore(stamp{a.stderr})
	if err != nil {
		return d, nil, "", err
	}
	imgs, err := store.List()
	return d, imgs, image.DefaultRecipe().Key(), err
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
			out = append(out, imageJSON{Kind: "image", Key: im.Key, KernelVersion: im.Manifest.KernelVersion, Built: im.Manifest.Built,
				BuildSeconds: im.Manifest.BuildTime.Seconds(), SizeBytes: im.Manifest.SizeBytes, Current: im.Key == current, Dir: im.Dir})
		}
		for _, sn := range snaps {
			sh := sn.Manifest.Shape
			out = append(out, imageJSON{Kind: "snapshot", Key: sn.Key, Built: sn.Manifest.Created, BuildSeconds: sn.Manifest.CreateTime.Seconds(),
				SizeBytes: sn.Manifest.SizeBytes, Current: sh.Image == current, Dir: sn.Dir, Shape: &sh, InUse: sn.InUse})
		}
		return writeJSON(a.stdout, out)
	}
	defer a.snapshotTable(snaps, current)
	if len(imgs) == 0 {
		fmt.Fprintln(a.stdout, "no images; `bcmtest image build` makes one")
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tKERNEL\tBUILT\tBUILD TIME\tSIZE\tCURRENT")
	for _, im := range imgs {
		cur := ""
		if im.Key == current {
			cur = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1f GiB\t%s\n", im.Key, im.Manifest.KernelVersion, im.Manifest.Built.Format(time.RFC3339),
			im.Manifest.BuildTime.Round(time.Second), float64(im.Manifest.SizeBytes)/(1<<30), cur)
	}
	return tw.Flush()
}

// snapshotTable lists the booted snapshots below the images.
func (a *app) snapshotTable(snaps []qemu.SnapshotInfo, current string) {
	if len(snaps) == 0 {
		return
	}
	fmt.Fprintln(a.stdout)
	tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SNAPSHOT\tSHAPE\tMADE\tMAKE TIME\tSIZE\tCURRENT IMAGE\tIN USE BY")
	for _, sn := range snaps {
		cur := ""
		if sn.Manifest.Shape.Image == current {
			cur = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.0f MiB\t%s\t%s\n", sn.Key, sn.Manifest.Shape, sn.Manifest.Created.Format(time.RFC3339),
			sn.Manifest.CreateTime.Round(time.Second), float64(sn.Manifest.SizeBytes)/(1<<20), cur, strings.Join(sn.InUse, ","))
	}
	tw.Flush()
}

func (a *app) imagePruneCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "prune",
		Short:             "Remove every image but the current recipe's, and every snapshot no VM uses beyond the newest few",
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
	n := 0
	for _, im := range imgs {
		if im.Key == current {
			continue
		}
		if err := os.RemoveAll(im.Dir); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "removed %s\n", im.Key)
		n++
	}
	fmt.Fprintf(a.stdout, "%d image(s) removed; kept the current %s\n", n, current)
	// Snapshots: none of an older image, and only the newest few of the
	// current one; never one a VM's disk is layered on.
	removed, err := qemu.PruneSnapshots(d, qemu.SnapshotsKept, current)
	for _, k := range removed {
		fmt.Fprintf(a.stdout, "removed snapshot %s\n", k)
	}
	fmt.Fprintf(a.stdout, "%d snapshot(s) removed\n", len(removed))
	return err
}
