package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

func cmdImage(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	help := "bcmtest image build|list|prune\n\nThe embedded QEMU provider's VM images (Debian 12 with LXD, ZFS, Tor, wait-for-it,\ncloud-init), cached under the user's cache directory and keyed by the recipe's hash.\n\n  build   build the current recipe's image unless it is cached (takes minutes)\n  list    cached images, newest first, marking the current one\n  prune   remove every image but the current recipe's\n"
	if len(args) != 1 {
		fmt.Fprint(stdout, help)
		if len(args) == 1 || len(args) == 0 {
			return usagef("image: want build, list or prune")
		}
		return usagef("image: want exactly one of build, list or prune")
	}
	d, err := state.Default()
	if err != nil {
		return envError{err}
	}
	store := image.Store{Dir: filepath.Join(d.Cache, "images"), Progress: stamp{stderr}}
	current := image.DefaultRecipe().Key()
	switch args[0] {
	case "--help", "-h":
		fmt.Fprint(stdout, help)
		return nil
	case "build":
		p, err := qemu.New(qemu.Config{Dirs: d, Log: stamp{stderr}})
		if err != nil {
			return envError{err}
		}
		defer p.Close()
		start := time.Now()
		img, err := p.Image(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "image %s ready in %s (kernel %s, built %s)\n", img.Key, time.Since(start).Round(time.Millisecond), img.Manifest.KernelVersion, img.Manifest.Built.Format(time.RFC3339))
		return nil
	case "list":
		imgs, err := store.List()
		if err != nil {
			return err
		}
		if len(imgs) == 0 {
			fmt.Fprintln(stdout, "no images; `bcmtest image build` makes one")
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
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
	case "prune":
		imgs, err := store.List()
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
			os.Remove(im.Dir + ".lock")
			fmt.Fprintf(stdout, "removed %s\n", im.Key)
			n++
		}
		fmt.Fprintf(stdout, "%d image(s) removed; kept the current %s\n", n, current)
		return nil
	}
	return usagef("image: unknown subcommand %q (want build, list or prune)", args[0])
}
