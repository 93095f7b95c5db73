package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/providers"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

func (a *app) downCmd() *cobra.Command {
	var prov string
	var stale, keepGoing bool
	c := &cobra.Command{
		Use:   "down NAME | --stale",
		Short: "Remove exactly one cluster, or what crashed runs left",
		Long: `Removes exactly the cluster NAME (NAME-NN VMs and state; never NAME10-NN), or with
--stale every cluster and VM whose harness process died without tearing down.
Before removing NAME it checks every node's kernel (serial console and kernel log)
for lockups, RCU stalls, hung tasks, OOM kills, oopses, BUGs, panics and segfaults
of LXD, dqlite or cloud-init; a finding fails the command after the removal,
naming node, line and time since boot (--keep-going: printed, exit 0).

A cluster is removed through the provider it was made with: without --provider (or
BCMTEST_PROVIDER) down NAME opens that one; naming another is refused. A sweep leaves
clusters of other providers alone and says so.`,
		Example: `  bcmtest down CLUS1
  bcmtest down --stale`,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: completeClusters(1),
		RunE: func(c *cobra.Command, args []string) error {
			if stale == (len(args) == 1) || len(args) > 1 {
				return usagef("down: give exactly one of NAME or --stale")
			}
			if !stale {
				if err := cluster.ValidateName(args[0]); err != nil {
					return usagef("down: %v", err)
				}
			}
			name, err := chooseProvider(prov)
			if err != nil {
				return fmt.Errorf("down: %w", err)
			}
			return keepGoingOnKernel(a.stderr, a.down(c.Context(), name, args, stale), keepGoing)
		},
	}
	addProviderFlag(c, &prov)
	c.Flags().BoolVar(&stale, "stale", false, "sweep what crashed or killed runs left")
	c.Flags().BoolVar(&keepGoing, "keep-going", false, "report kernel findings without failing")
	return c
}

func (a *app) down(ctx context.Context, prov string, args []string, stale bool) error {
	// Teardown must finish even when the user presses Ctrl-C again.
	ctx = context.WithoutCancel(ctx)
	if !stale && (prov == "" || prov == providers.Auto) {
		// The cluster's VMs are the provider's that made it, whatever
		// auto would pick today.
		d, err := state.Default()
		if err != nil {
			return envError{err}
		}
		rec, err := cluster.RecordedProvider(d.State, args[0])
		if err != nil {
			return fmt.Errorf("down: reading the record of %s: %w", args[0], err)
		}
		if rec != "" {
			prov = rec
		}
	}
	e, err := openEnv(ctx, prov, stamp{a.stderr})
	if err != nil {
		return err
	}
	defer e.close()
	var removed []string
	if stale {
		removed, err = cluster.SweepStale(ctx, e.p, e.dirs.State, stamp{a.stderr})
	} else {
		removed, err = cluster.Down(ctx, e.p, e.dirs.State, args[0], stamp{a.stderr})
	}
	var pm *cluster.ProviderMismatchError
	if errors.As(err, &pm) {
		return usagef("down: %v", err) // --provider or BCMTEST_PROVIDER names another provider
	}
	for _, r := range removed {
		fmt.Fprintf(a.stdout, "removed %s\n", r)
	}
	if len(removed) == 0 && err == nil {
		fmt.Fprintln(a.stdout, "nothing to remove")
	}
	return err
}
