package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/BitcoinCacheMachine/bcmtest/harness/inventory"
)

func (a *app) inventoryCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "inventory",
		Short: "Collect a node's inventory, or compare two saved inventories",
		Long: `collect  runs the inventory collector on a node and prints the inventory (JSON).
diff     compares two saved inventories offline (last night's node against tonight's).

An inventory is what cloud-init did to a node, normalised so that two nodes
given the same file have the same inventory; 'bcmtest cloudinit diff' makes two
and compares them.`,
		Example: `  bcmtest inventory collect CLUS1-00 > tonight.json
  bcmtest inventory diff last-night.json tonight.json -o markdown`,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE:              groupRunE(),
	}
	c.AddCommand(a.inventoryCollectCmd(), a.inventoryDiffCmd())
	return c
}

func (a *app) inventoryCollectCmd() *cobra.Command {
	var prov string
	var raw bool
	c := &cobra.Command{
		Use:   "collect NODE",
		Short: "Run the inventory collector on a node and print its inventory as JSON",
		Long: `Runs the inventory collector on NODE (once its cloud-init has ended) and prints
the normalised inventory as JSON (schema ` + fmt.Sprint(inventory.SchemaVersion) + `), or with --raw the collector's own output.

Exit codes: 0 ok, 1 the collector failed, 2 usage error, 3 environment.`,
		Example:           "  bcmtest inventory collect CLUS1-00 > CLUS1-00.json\n  bcmtest inventory collect CLUS1-00 --raw > CLUS1-00.txt",
		Args:              wantArgs(1, 1, "NODE"),
		ValidArgsFunction: completeNodes,
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkNode("inventory collect", args[0]); err != nil {
				return err
			}
			name, err := chooseProvider(prov)
			if err != nil {
				return fmt.Errorf("inventory collect: %w", err)
			}
			return a.inventoryCollect(c.Context(), name, args[0], raw)
		},
	}
	addProviderFlag(c, &prov)
	c.Flags().BoolVar(&raw, "raw", false, "print the collector's output instead of the parsed inventory (it holds the node's own names and addresses)")
	return c
}

func (a *app) inventoryCollect(ctx context.Context, prov, node string, raw bool) error {
	e, err := openEnv(ctx, prov, stamp{a.stderr})
	if err != nil {
		return err
	}
	defer e.close()
	if err := knownNode(ctx, e.p, "inventory collect", node); err != nil {
		return err
	}
	col, err := inventory.Collect(ctx, e.p, node)
	if raw && col.Raw != "" {
		_, werr := a.stdout.Write([]byte(col.Raw))
		return errors.Join(err, werr)
	}
	if err != nil {
		return fmt.Errorf("inventory collect: %w", err)
	}
	b, err := col.Inventory.Marshal()
	if err != nil {
		return err
	}
	_, err = a.stdout.Write(b)
	return err
}

func (a *app) inventoryDiffCmd() *cobra.Command {
	var output string
	var failOnDiff bool
	c := &cobra.Command{
		Use:   "diff A.json B.json",
		Short: "Compare two saved inventories (A is OLD, B is NEW)",
		Long: `Compares two inventories saved by 'bcmtest cloudinit diff', 'bcmtest inventory
collect' or the e2e suites, offline, and prints the report 'cloudinit diff'
prints: regressions, differences, timings. Either file may also be the
collector's own output (old.collector.txt of 'cloudinit diff', or 'inventory
collect --raw'), parsed as the collector's output is.

Exit codes: 0 B's cloud-init succeeded, whatever differs (unless --fail-on-diff);
1 B's cloud-init failed, or any difference with --fail-on-diff; 2 usage error
(a missing file, not an inventory, another schema version).`,
		Example:           "  bcmtest inventory diff last-night/CLUS1-00/inventory.json tonight/CLUS1-00/inventory.json\n  bcmtest inventory diff a.json b.json -o markdown >> \"$GITHUB_STEP_SUMMARY\"",
		Args:              wantArgs(2, 2, "A.json B.json"),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkReportOutput(c, output); err != nil {
				return err
			}
			var invs [2]*inventory.Inventory
			for i, field := range []string{"A", "B"} {
				data, err := os.ReadFile(args[i])
				if err != nil {
					return usagef("%s%s %q: cannot read it: %v", where(c), field, args[i], err)
				}
				if invs[i], err = loadInventory(args[i], data); err != nil {
					return usagef("%s%s %q: %v", where(c), field, args[i], err)
				}
			}
			r := inventory.Diff(args[0], invs[0], args[1], invs[1])
			if err := a.writeReport(r, output, ""); err != nil {
				return err
			}
			switch {
			case r.Failed():
				return fmt.Errorf("inventory diff: %s", r.Summary())
			case failOnDiff && (len(r.Differences) > 0 || len(r.Regressions) > 0):
				return fmt.Errorf("inventory diff: %s (--fail-on-diff)", r.Summary())
			}
			return nil
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "text", "output format: text, json or markdown")
	c.Flags().BoolVar(&failOnDiff, "fail-on-diff", false, "exit 1 on any difference or regression")
	return c
}

// loadInventory reads a saved inventory, or the collector's raw output.
func loadInventory(path string, data []byte) (*inventory.Inventory, error) {
	if inventory.IsCollectorOutput(data) {
		return inventory.Parse(filepath.Base(path), string(data))
	}
	return inventory.Load(data)
}
