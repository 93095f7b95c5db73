package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/diag"
)

func (a *app) logsCmd() *cobra.Command {
	var prov, out string
	c := &cobra.Command{
		Use:   "logs NAME",
		Short: "Collect per-node diagnostics of a cluster",
		Long: `Collects per-node diagnostics of cluster NAME: cloud-init logs and status, LXD and Tor
journals, LXD's log, zpool status, the member list and the serial console.`,
		Example:           "  bcmtest logs CLUS1 --out /tmp/clus1-logs",
		Args:              wantArgs(1, 1, "NAME"),
		ValidArgsFunction: completeClusters(1),
		RunE: func(c *cobra.Command, args []string) error {
			if err := cluster.ValidateName(args[0]); err != nil {
				return usagef("logs: %v", err)
			}
			name, err := chooseProvider(prov)
			if err != nil {
				return fmt.Errorf("logs: %w", err)
			}
			dir := out
			if dir == "" {
				dir = filepath.Join("artifacts", "logs-"+args[0]+"-"+time.Now().UTC().Format("20060102-150405"))
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return usagef("logs: --out %s: %v", dir, err)
			}
			return a.logs(c.Context(), name, args[0], dir)
		},
	}
	addProviderFlag(c, &prov)
	c.Flags().StringVar(&out, "out", "", "directory for the files (default ./artifacts/logs-NAME-TIME)")
	c.MarkFlagDirname("out")
	return c
}

func (a *app) logs(ctx context.Context, prov, name, dir string) error {
	e, err := openEnv(ctx, prov, io.Discard)
	if err != nil {
		return err
	}
	defer e.close()
	vms, err := e.p.List(ctx, "")
	if err != nil {
		return err
	}
	var nodes []string
	for _, v := range vms {
		if v.Group == name || cluster.IsNodeOf(v.Name, name) {
			nodes = append(nodes, v.Name)
		}
	}
	sort.Strings(nodes)
	if len(nodes) == 0 {
		return fmt.Errorf("logs: cluster %s has no VMs", name)
	}
	files, err := diag.Collect(ctx, diag.CollectInput{Provider: e.p, Nodes: nodes, Dir: dir, Log: stamp{a.stderr}})
	for _, f := range files {
		fmt.Fprintln(a.stdout, f)
	}
	return err
}
