// Package diag collects per-node diagnostics (cloud-init logs and status,
// journals, LXD's log, zpool status, the cluster member list, the serial
// console) into an artifacts directory, for failed runs and `bcmtest logs`.
package diag

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

// Item is one thing collected from a node into a file.
type Item struct {
	File string
	Argv []string
}

// consoler is a provider whose VMs have a serial console log (the qemu
// backend); others are collected without it.
type consoler interface {
	Console(ctx context.Context, name string) ([]byte, error)
}

// Items are what a developer needs to see why a node misbehaved.
func Items() []Item {
	return []Item{
		{"cloud-init.log", []string{"cat", "/var/log/cloud-init.log"}},
		{"cloud-init-output.log", []string{"cat", "/var/log/cloud-init-output.log"}},
		{"cloud-init-status.txt", []string{"cloud-init", "status", "--long"}},
		{"cloud-init-status.json", []string{"cat", "/run/cloud-init/status.json"}},
		{"cloud-init-analyze.txt", []string{"cloud-init", "analyze", "show"}},
		{"journal-lxd.log", []string{"journalctl", "--no-pager", "-o", "short-iso-precise", "-u", "lxd.service", "-u", "lxd.socket"}},
		{"journal-tor.log", []string{"journalctl", "--no-pager", "-o", "short-iso-precise", "-u", "tor@default.service", "-u", "tor.service"}},
		{"lxd.log", []string{"cat", "/var/log/lxd/lxd.log"}},
		{"zpool-status.txt", []string{"zpool", "status"}},
		{"lxc-cluster-list.txt", []string{"lxc", "cluster", "list"}},
		{"systemctl-failed.txt", []string{"systemctl", "--failed", "--no-pager"}},
	}
}

// CollectInput says what to collect and where.
type CollectInput struct {
	Provider provider.Provider
	Nodes    []string
	// Dir receives one subdirectory per node.
	Dir string
	Log io.Writer
	// Intervals bound each command (diag-exec); zero means wait.Load.
	Intervals wait.Intervals
}

// Collect gathers Items and the serial console from every node at once. A
// node that cannot be reached still gets its console (when the provider has
// one) and an errors.txt saying what failed. It returns the files written.
func Collect(ctx context.Context, in CollectInput) ([]string, error) {
	var loadErr error
	if in.Intervals == (wait.Intervals{}) {
		// A bad BCMTEST_INTERVALS must not cost the diagnostics of a
		// failed run: collect with the defaults and report it.
		in.Intervals, loadErr = wait.Load()
	}
	in.Intervals = in.Intervals.WithDefaults()
	// Each node is collected to its end whatever happens on the others,
	// so the group keeps every node's files and errors, not a first one.
	files := make([][]string, len(in.Nodes))
	errs := make([]error, len(in.Nodes)+1)
	errs[len(in.Nodes)] = loadErr
	var g errgroup.Group
	for i, n := range in.Nodes {
		g.Go(func() error {
			files[i], errs[i] = collectNode(ctx, in, n)
			return errs[i]
		})
	}
	g.Wait() // the first error; errs holds them all
	all := slices.Concat(files...)
	sort.Strings(all)
	if in.Log != nil {
		fmt.Fprintf(in.Log, "%s diagnostics: %d file(s) for %d node(s) under %s\n", time.Now().Format("15:04:05"), len(all), len(in.Nodes), in.Dir)
	}
	return all, errors.Join(errs...)
}

// Diagnostics hold addresses, journals and cloud-init logs that may carry
// secrets from user-data: directories are 0700 and files 0600.
func collectNode(ctx context.Context, in CollectInput, node string) ([]string, error) {
	dir := filepath.Join(in.Dir, node)
	if err := state.MkdirPrivate(dir); err != nil {
		return nil, fmt.Errorf("collecting diagnostics of %s: %w", node, err)
	}
	var files, problems []string
	var werrs []error
	write := func(name string, b []byte) {
		p, err := writePrivate(dir, name, b)
		if err != nil {
			werrs = append(werrs, fmt.Errorf("collecting diagnostics of %s: %w", node, err))
			return
		}
		files = append(files, p)
	}
	if c, ok := in.Provider.(consoler); ok {
		if b, err := c.Console(ctx, node); err == nil {
			write("serial-console.log", b)
		} else {
			problems = append(problems, "serial console: "+err.Error())
		}
	}
	for _, it := range Items() {
		ictx, cancel := context.WithTimeout(ctx, in.Intervals.DiagExec.Timeout)
		res, err := in.Provider.Exec(ictx, node, provider.ExecInput{Argv: it.Argv})
		cancel()
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", it.File, err))
			if errors.Is(err, provider.ErrUnreachable) || errors.Is(err, provider.ErrNotFound) || ctx.Err() != nil {
				break // the rest would fail the same way
			}
			continue
		}
		out := res.Stdout
		if res.ExitCode != 0 {
			out = append(out, []byte(fmt.Sprintf("\n[exit code %d]\n%s", res.ExitCode, res.Stderr))...)
		}
		write(it.File, out)
	}
	if len(problems) > 0 {
		write("errors.txt", []byte(strings.Join(problems, "\n")+"\n"))
	}
	return files, errors.Join(werrs...)
}

// writePrivate replaces dir/name with b, mode 0600 even when an earlier
// collection left a file there with another mode.
func writePrivate(dir, name string, b []byte) (string, error) {
	p := filepath.Join(dir, name)
	f, err := os.CreateTemp(dir, "."+name+".tmp-")
	if err != nil {
		return "", fmt.Errorf("writing %s: %w", p, err)
	}
	_, werr := f.Write(b)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(f.Name(), p)
	}
	if werr != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("writing %s: %w", p, werr)
	}
	return p, nil
}
