package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
)

func (a *app) listCmd() *cobra.Command {
	var prov, output string
	c := &cobra.Command{
		Use:     "list [NAME...]",
		Aliases: []string{"ls"},
		Short:   "List the clusters and VMs the harness knows",
		Long: `Lists the clusters and VMs the harness knows, with state, provider and owner; with
NAMEs, only those clusters. --output json prints the same as a JSON array.`,
		Example: `  bcmtest list
  bcmtest list CLUS1 -o json`,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: completeClusters(-1),
		RunE: func(c *cobra.Command, args []string) error {
			for _, n := range args {
				if err := cluster.ValidateName(n); err != nil {
					return usagef("list: %v", err)
				}
			}
			if err := checkOutput(c, output); err != nil {
				return err
			}
			name, err := chooseProvider(prov)
			if err != nil {
				return fmt.Errorf("list: %w", err)
			}
			return a.list(c.Context(), name, args, output)
		},
	}
	addProviderFlag(c, &prov)
	addOutputFlag(c, &output)
	return c
}

// clusterJSON is one cluster in `list --output json`.
type clusterJSON struct {
	Name       string `json:"name"`
	Provider   string `json:"provider"`
	Owner      int    `json:"owner"`
	OwnerAlive bool   `json:"owner_alive"`
	Persistent bool   `json:"persistent"`
	Ready      bool   `json:"ready"`
	Stale      bool   `json:"stale"`
	// Kept: left up on purpose (why and since when); only `down NAME` removes it.
	Kept *cluster.KeptMark `json:"kept,omitempty"`
	// Problem: why the harness cannot judge it; sweeps leave it alone.
	Problem string          `json:"problem,omitempty"`
	Nodes   []provider.Info `json:"nodes"`
}

func (a *app) list(ctx context.Context, prov string, only []string, output string) error {
	e, err := openEnv(ctx, prov, io.Discard)
	if err != nil {
		return err
	}
	defer e.close()
	all, err := cluster.List(ctx, e.p, e.dirs.State)
	if err != nil {
		return err
	}
	if len(only) > 0 {
		var kept []cluster.ClusterStatus
		for _, cs := range all {
			for _, n := range only {
				if cs.Name == n {
					kept = append(kept, cs)
					break
				}
			}
		}
		all = kept
	}
	if output == "json" {
		out := []clusterJSON{}
		for _, cs := range all {
			nodes := cs.Nodes
			if nodes == nil {
				nodes = []provider.Info{}
			}
			out = append(out, clusterJSON{Name: cs.Name, Provider: cs.Provider, Owner: cs.Owner, OwnerAlive: cs.OwnerAlive,
				Persistent: cs.Persistent, Ready: cs.Ready, Stale: cs.Stale, Kept: cs.Kept, Problem: cs.Problem, Nodes: nodes})
		}
		return writeJSON(a.stdout, out)
	}
	if len(all) == 0 {
		fmt.Fprintln(a.stdout, "no clusters or VMs")
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tNODE\tSTATE\tADDRESS\tPROVIDER\tOWNER")
	for _, cs := range all {
		owner := "kept (bcmtest up)"
		switch {
		case cs.Problem != "":
			owner = "unknown: " + cs.Problem
		case cs.Kept != nil:
			owner = fmt.Sprintf("kept: %s (since %s)", cs.Kept.Reason, cs.Kept.At.Format(time.RFC3339))
		case cs.Stale:
			owner = fmt.Sprintf("pid %d, dead: stale (bcmtest down --stale)", cs.Owner)
		case cs.OwnerAlive:
			owner = fmt.Sprintf("pid %d, running", cs.Owner)
		}
		if len(cs.Nodes) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t%s\t%s\n", cs.Name, cs.Provider, owner)
		}
		for _, n := range cs.Nodes {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cs.Name, n.Name, n.State, n.PrivateIP, n.Provider, owner)
		}
	}
	return tw.Flush()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
