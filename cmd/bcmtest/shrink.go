package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
)

func (a *app) shrinkCmd() *cobra.Command {
	var prov string
	c := &cobra.Command{
		Use:   "shrink NAME MEMBER",
		Short: "Evacuate MEMBER, remove it from the cluster NAME and delete its VM",
		Long: `Removes MEMBER from the running cluster NAME as ` + "`lxc cluster remove`" + ` does, through the
LXD API: the member is evacuated first (its instances move to other members), then
removed without force (LXD hands its database role to another member), then its VM
is deleted, and shrink waits until the remaining members are Online with the
database roles settled.

Refused before anything changes (exit 2): a cluster that is not there or not kept,
a MEMBER of another cluster or not a member at all, and the last database member
when no other member is Online to take it over (a single-node cluster: use down).`,
		Example: `  bcmtest shrink CLUS1 CLUS1-02
  bcmtest shrink CLUS1 CLUS1-00       the bootstrap node too: its roles move`,
		Args:              wantArgs(2, 2, "NAME MEMBER"),
		ValidArgsFunction: completeClusterThenMember,
		RunE: func(c *cobra.Command, args []string) error {
			return a.shrink(c.Context(), args, prov)
		},
	}
	addProviderFlag(c, &prov)
	return c
}

func (a *app) shrink(ctx context.Context, args []string, provFlag string) error {
	name, member := args[0], args[1]
	if err := cluster.ValidateName(name); err != nil {
		return usagef("shrink: %v", err)
	}
	if err := checkNode("shrink", member); err != nil {
		return usagef("shrink: MEMBER: %v", strings.TrimPrefix(err.Error(), "shrink: NODE: "))
	}
	if !cluster.IsNodeOf(member, name) {
		return usagef("shrink: MEMBER %s: must be a node of %s (%s-NN)", member, name, name)
	}
	pr := newProgress(a.stderr)
	defer pr.Close()
	cl, e, err := openKept(ctx, "shrink", name, provFlag, pr)
	if err != nil {
		return err
	}
	defer e.close()
	defer cl.Release()
	pr.Expect(name, []string{member})
	err = cl.Shrink(ctx, cluster.ShrinkInput{Member: member})
	pr.Close()
	var nm *cluster.NotMemberError
	var um *cluster.UnknownMemberError
	var lv *cluster.LastVoterError
	if errors.As(err, &nm) || errors.As(err, &um) || errors.As(err, &lv) {
		return usagef("shrink: MEMBER: %v", err)
	}
	if err != nil {
		return err
	}
	return printCluster(cl, a.stdout, fmt.Sprintf("\nRemoved %s from %s; %d member(s) left.\n\n", member, name, len(cl.Members())))
}

// completeClusterThenMember completes shrink's NAME, then the nodes of
// that cluster as MEMBER.
func completeClusterThenMember(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	switch len(args) {
	case 0:
		return completeClusters(1)(c, args, toComplete)
	case 1:
		n, ok := stateNames()
		if !ok {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for node := range n.nodes {
			if cluster.IsNodeOf(node, args[0]) && strings.HasPrefix(node, toComplete) {
				out = append(out, cobra.CompletionWithDesc(node, "member of "+args[0]))
			}
		}
		sort.Strings(out)
		return out, cobra.ShellCompDirectiveNoFileComp
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}
