package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/BitcoinCacheMachine/bcmtest/fixtures"
	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/progress"
	"github.com/BitcoinCacheMachine/bcmtest/harness/providers"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

func (a *app) growCmd() *cobra.Command {
	var prov string
	c := &cobra.Command{
		Use:   "grow NAME [N]",
		Short: "Boot N more members (default 1) and join them to the running cluster NAME",
		Long: `Boots N more members (default 1) and joins each to the running cluster NAME as soon as
it has booted, numbered after its highest node (CLUS1-02 and CLUS1-03 after CLUS1-01),
with the size and cloud-init file the cluster was made with, then waits until every
member is Online and the database roles have settled.

NAME must be a cluster left up on purpose (bcmtest up, BCMTEST_SKIP_TEARDOWN,
keep-on-failure) whose run has ended; it is locked while it grows. A node that fails
to join is taken out and its VM deleted; members that joined stay.`,
		Example: `  bcmtest up CLUS1 1
  bcmtest grow CLUS1 2          CLUS1-02 and CLUS1-03 join CLUS1-00 and CLUS1-01
  bcmtest grow CLUS1            one more: CLUS1-04`,
		Args:              wantArgs(1, 2, "NAME [N]"),
		Annotations:       map[string]string{numericArgAnnotation: "N", numericArgRuleAnnotation: "must be 1 or more"},
		ValidArgsFunction: completeClusters(1),
		RunE: func(c *cobra.Command, args []string) error {
			return a.grow(c.Context(), args, prov)
		},
	}
	addProviderFlag(c, &prov)
	return c
}

// parseGrowCount reads grow's N: at least one new member.
func parseGrowCount(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	switch {
	case err != nil:
		return 0, usagef("grow: N %q: must be a whole number of members to add", s)
	case n < 1:
		return 0, usagef("grow: N %d: must be 1 or more", n)
	case n > cluster.MaxMembers:
		return 0, usagef("grow: N %d: must be at most %d (node names have two-digit suffixes)", n, cluster.MaxMembers)
	}
	return n, nil
}

func (a *app) grow(ctx context.Context, args []string, provFlag string) error {
	name := args[0]
	if err := cluster.ValidateName(name); err != nil {
		return usagef("grow: %v", err)
	}
	n := 1
	if len(args) == 2 {
		var err error
		if n, err = parseGrowCount(args[1]); err != nil {
			return err
		}
	}
	pr := newProgress(a.stderr)
	defer pr.Close()
	cl, e, err := openKept(ctx, "grow", name, provFlag, pr)
	if err != nil {
		return err
	}
	defer e.close()
	defer cl.Release()
	pr.Expect(name, cl.NextNodes(n))
	added, err := cl.Grow(ctx, cluster.GrowInput{Members: n})
	pr.Close()
	var ge *cluster.GrowCountError
	if errors.As(err, &ge) {
		return usagef("grow: N %d: %s", ge.Members, ge.Rule)
	}
	if err != nil {
		return err
	}
	var names []string
	for _, m := range added {
		names = append(names, m.Name)
	}
	return printCluster(cl, a.stdout, fmt.Sprintf("\nCluster %s grew by %s (%s).\n\n", name, strings.Join(names, ", "), growTimings(cl.Timings())))
}

// growTimings is the summary of a Grow's phases: Up's without the
// bootstrap, which a Grow has none of.
func growTimings(t cluster.Timings) string {
	var joins []string
	for n, d := range t.Joins {
		joins = append(joins, fmt.Sprintf("%s=%s", n, d.Round(time.Second)))
	}
	sort.Strings(joins)
	return fmt.Sprintf("launch+cloud-init %s, joins [%s], formed @%s, ready %s, total %s",
		t.Launch.Round(time.Second), strings.Join(joins, " "), t.Formed.Round(time.Second), t.Ready.Round(time.Second), t.Total.Round(time.Second))
}

// openKept opens the kept cluster name for grow or shrink through the
// provider it was made with (unless --provider or BCMTEST_PROVIDER names
// one) and on the image its record names, with progress on pr. A cluster that is not there, or not one
// to change, is a usage error naming it.
func openKept(ctx context.Context, cmd, name, provFlag string, pr *progress.Progress) (*cluster.Cluster, *env, error) {
	prov, err := chooseProvider(provFlag)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", cmd, err)
	}
	if prov == "" || prov == providers.Auto {
		d, err := state.Default()
		if err != nil {
			return nil, nil, envError{err}
		}
		rec, err := cluster.RecordedProvider(d.State, name)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: reading the record of %s: %w", cmd, name, err)
		}
		if rec != "" {
			prov = rec
		}
	}
	// The new nodes boot the image the cluster's record names (BCMTEST_IMAGE
	// may name it too; another is refused by Open).
	rel, err := clusterImage("", true, name)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", cmd, err)
	}
	e, err := openEnvImage(ctx, prov, rel, pr)
	if err != nil {
		return nil, nil, err
	}
	in := cluster.OpenInput{Name: name, Provider: withPhases(e.p, pr, false), StateDir: e.dirs.State, Log: pr, OnEvent: pr.Cluster}
	// The fixture stands in only for a cluster whose record holds no file.
	in.CloudInitName = fixtures.For(e.p.Name())
	in.CloudInit = fixtures.MustRead(in.CloudInitName)
	cl, err := cluster.Open(ctx, in)
	var ue *cluster.UnavailableError
	if errors.As(err, &ue) {
		e.close()
		return nil, nil, usagef("%s: NAME: %v", cmd, err)
	}
	if err != nil {
		e.close()
		return nil, nil, fmt.Errorf("%s: %w", cmd, err)
	}
	return cl, e, nil
}
