package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/BitcoinCacheMachine/bcmtest/cloudinit"
	"github.com/BitcoinCacheMachine/bcmtest/fixtures"
	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
)

type upOptions struct {
	provider, memory, disk, cloudInit, poolSize, image string
	cpus                                               int
	keep, reuse, force                                 bool
}

func (a *app) upCmd() *cobra.Command {
	var o upOptions
	c := &cobra.Command{
		Use:   "up NAME [MEMBERS]",
		Short: "Bring NAME-00 (bootstrap) and NAME-01..NN up as one LXD cluster",
		Long: `Brings NAME-00 (bootstrap) and NAME-01..NAME-MEMBERS up as one LXD cluster on ZFS and
prints how to reach it. MEMBERS defaults to 0 (a single-node cluster).

A --cloud-init file is checked before any VM starts, also for what the provider's
VMs cannot give it (snap, PPAs and unknown packages on the qemu provider's offline
Debian image); such a file is refused unless --force.

--image chooses the Debian release of the qemu provider's nodes (default
$BCMTEST_IMAGE or bookworm); the cluster's record keeps it, so --reuse
attaches with the cluster's own release when neither is given.`,
		Example: `  bcmtest up CLUS1 3
  bcmtest up DEV 1 --cloud-init my-cloud-init.yml --memory 3G
  bcmtest up OLD 0 --cloud-init fixtures/bcm-original.yaml --force
  bcmtest up NEW 1 --image trixie`,
		Args:              wantArgs(1, 2, "NAME [MEMBERS]"),
		Annotations:       map[string]string{numericArgAnnotation: "MEMBERS"},
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(c *cobra.Command, args []string) error {
			return a.up(c.Context(), c, args, o)
		},
	}
	f := c.Flags()
	addProviderFlag(c, &o.provider)
	addImageFlag(c, &o.image)
	f.IntVar(&o.cpus, "cpus", cluster.DefaultCPUs, "vCPUs per node")
	f.StringVarP(&o.memory, "memory", "m", cluster.DefaultMemory, "memory per node (e.g. 2G, 1536M)")
	f.StringVar(&o.disk, "disk", cluster.DefaultDisk, "disk per node")
	f.StringVar(&o.cloudInit, "cloud-init", "", "cloud-init file for every node (default: the project's BCM fixture for the provider)")
	f.StringVar(&o.poolSize, "pool-size", cluster.DefaultPoolSize, "size of the ZFS storage pool (loop file) on each node")
	f.BoolVarP(&o.keep, "keep-on-failure", "k", false, "leave the VMs of a failed run for inspection")
	f.BoolVar(&o.reuse, "reuse", false, "attach to an existing healthy cluster of this name")
	f.BoolVarP(&o.force, "force", "f", false, "boot even when the --cloud-init file needs what the provider's VMs lack (snap, PPAs, unknown packages)")
	addCloudInitFlagCompletion(c, "cloud-init")
	return c
}

func (a *app) up(ctx context.Context, c *cobra.Command, args []string, o upOptions) error {
	name := args[0]
	if err := cluster.ValidateName(name); err != nil {
		return usagef("up: %v", err)
	}
	members := 0
	if len(args) == 2 {
		var err error
		if members, err = parseMembers(args[1]); err != nil {
			return fmt.Errorf("up: %w", err)
		}
	}
	if o.cpus < 1 {
		return usagef("up: --cpus %d: must be at least 1 (vCPUs per node)", o.cpus)
	}
	for _, s := range []struct{ flag, value string }{{"--memory", o.memory}, {"--disk", o.disk}, {"--pool-size", o.poolSize}} {
		if _, err := parseSizeFlag(s.flag, s.value); err != nil {
			return fmt.Errorf("up: %w", err)
		}
	}
	var userData []byte
	if c.Flags().Changed("cloud-init") {
		var err error
		if userData, err = loadCloudInit(ctx, "up", o.cloudInit); err != nil {
			return err
		}
	}
	prov, err := chooseProvider(o.provider)
	if err != nil {
		return fmt.Errorf("up: %w", err)
	}
	rel, err := clusterImage(o.image, o.reuse, name)
	if err != nil {
		return fmt.Errorf("up: %w", err)
	}
	if userData != nil {
		target := lintTarget(ctx, prov)
		problems, err := providerLint(ctx, o.cloudInit, userData, target, rel)
		if err != nil {
			return fmt.Errorf("up: --cloud-init: %w", err)
		}
		if err := refuseForProvider("up: --cloud-init ", o.cloudInit, target, problems, o.force, a.stderr); err != nil {
			return err
		}
	}
	if err := checkSpec("up", name, []specField{
		{"MEMBERS", func(s *cluster.Spec) { s.Members = members }},
		{"--cpus", func(s *cluster.Spec) { s.CPUs = o.cpus }},
		{"--memory", func(s *cluster.Spec) { s.Memory = o.memory }},
		// The pool must leave room on the disk: these two are judged together.
		{fmt.Sprintf("--disk %q with --pool-size %q", o.disk, o.poolSize), func(s *cluster.Spec) { s.Disk, s.PoolSize = o.disk, o.poolSize }},
	}); err != nil {
		return err
	}
	// The progress display is the run's log too: on a terminal the log
	// lines go above its bars.
	pr := newProgress(a.stderr)
	defer pr.Close()
	e, err := openEnvImage(ctx, prov, rel, pr)
	if err != nil {
		return err
	}
	defer e.close()
	ciName := o.cloudInit
	if userData == nil {
		ciName = fixtures.For(e.p.Name())
		userData = fixtures.MustRead(ciName)
	}
	if !o.reuse {
		pr.Expect(name, nodeNames(name, members))
	}
	cl, err := cluster.Up(ctx, cluster.Spec{
		Name: name, Members: members, CPUs: o.cpus, Memory: o.memory, Disk: o.disk, PoolSize: o.poolSize,
		CloudInit: userData, CloudInitName: ciName, Provider: withPhases(e.p, pr, false), KeepOnFailure: o.keep, Reuse: o.reuse,
		Persistent: true, StateDir: e.dirs.State, Log: pr, OnEvent: pr.Cluster,
	})
	pr.Close() // the bars end before the summary on stdout
	var notReusable *cluster.ReuseError
	if errors.As(err, &notReusable) {
		return usagef("up: --reuse: %v", err) // the named cluster cannot be attached to
	}
	if err != nil {
		return err
	}
	return printCluster(cl, a.stdout, upLine(cl.Name(), cl.Timings()))
}

// loadCloudInit reads a --cloud-init file, refusing an empty path: the
// flag left out means the fixture, given empty it is a mistake.
func loadCloudInit(ctx context.Context, cmd, path string) ([]byte, error) {
	if strings.TrimSpace(path) == "" {
		return nil, usagef("%s: --cloud-init: must not be empty; give a cloud-init file, or leave the flag out for the project's fixture", cmd)
	}
	data, err := cloudinit.LoadContext(ctx, path)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: --cloud-init: %w", cmd, err)
		}
		return nil, usagef("%s: --cloud-init: %v", cmd, err)
	}
	return data, nil
}

// placeholderProvider stands in for the provider Spec.Validate requires:
// the flags are checked before any provider is opened.
type placeholderProvider struct{ provider.Provider }

// specField is one command-line input that lands in a cluster.Spec.
type specField struct {
	name string // --memory, MEMBERS
	set  func(*cluster.Spec)
}

// checkSpec runs the harness's own spec rules (least memory, what this host
// holds, the pool against the disk) before any provider is opened: one
// input at a time on top of the defaults, so an error names the flag or
// argument that broke the rule, then all of them together. Inputs one rule
// relates (the disk and the pool on it) must be one field here, or a value
// would be judged against another's default.
func checkSpec(cmd, name string, fields []specField) error {
	base := cluster.Spec{Name: name, CloudInit: []byte("#cloud-config\n"), Provider: placeholderProvider{}}
	all := base
	var names []string
	for _, f := range fields {
		s := base
		f.set(&s)
		if err := s.Validate(); err != nil {
			return usagef("%s: %s: %v", cmd, f.name, err)
		}
		f.set(&all)
		names = append(names, f.name)
	}
	if err := all.Validate(); err != nil {
		return usagef("%s: %s together: %v", cmd, strings.Join(names, ", "), err)
	}
	return nil
}

// printCluster prints headline, the nodes and how to reach the cluster.
func printCluster(c *cluster.Cluster, w io.Writer, headline string) error {
	fmt.Fprint(w, headline)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADDRESS\tLXD API (from this host)")
	for _, m := range c.Members() {
		fmt.Fprintf(tw, "%s\t%s\thttps://%s\n", m.Name, m.Address, m.Endpoint)
	}
	tw.Flush()
	lxcDir, err := c.WriteLXCConfig()
	if err != nil {
		return err
	}
	fmt.Fprint(w, lxcHint(c.Name(), lxcDir))
	fmt.Fprintf(w, "\nRun commands: bcmtest exec %s -- zpool list\nRemove it:    bcmtest down %s\n", c.Members()[0].Name, c.Name())
	return nil
}

// upLine is the summary's first line with the phase timings, the image
// phase (built or looked up, with the booted snapshot) first.
func upLine(name string, t cluster.Timings) string {
	return fmt.Sprintf("\nCluster %s is up (%s).\n\n", name, t)
}

// lxcHint is the message's lxc part: the one line that reaches the cluster
// with the configuration WriteLXCConfig wrote in dir, whose remote pins the
// cluster certificate and whose client certificate the cluster trusts.
func lxcHint(name, dir string) string {
	return "\nReach it with the lxc client (cluster certificate pinned, client certificate already trusted):\n  " +
		cluster.LXCCommandLine(dir, name) + "\n"
}
