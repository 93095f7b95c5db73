package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/BitcoinCacheMachine/bcmtest/cloudinit"
	"github.com/BitcoinCacheMachine/bcmtest/fixtures"
	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/diag"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/providers"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

// newProvider opens a VM provider; tests wrap it so that nothing they run
// can boot a VM.
var newProvider = providers.New

// env bundles what most commands need: dirs and a provider.
type env struct {
	dirs state.Dirs
	p    provider.Provider
}

// chooseProvider checks --provider, BCMTEST_PROVIDER and BCMTEST_ACCEL as
// input, before anything is opened; "" means auto.
func chooseProvider(flagValue string) (string, error) {
	name, err := providerChoice(flagValue)
	if err != nil {
		return "", err
	}
	if err := checkAccelEnv(); err != nil {
		return "", err
	}
	return name, nil
}

// openEnv opens the provider chosen by chooseProvider.
func openEnv(ctx context.Context, providerName string, log io.Writer) (*env, error) {
	d, err := state.Default()
	if err != nil {
		return nil, envError{err}
	}
	p, err := newProvider(ctx, providers.Options{Name: providerName, Dirs: d, Log: log})
	if err != nil {
		if v := os.Getenv("BCMTEST_MULTIPASS"); v != "" && providerName == providers.Multipass {
			err = fmt.Errorf("%w (the binary named by BCMTEST_MULTIPASS=%s)", err, v)
		}
		return nil, envError{err}
	}
	return &env{dirs: d, p: p}, nil
}

func (e *env) close() { e.p.Close() }

// stamp prefixes progress lines with the time, for people watching.
type stamp struct{ w io.Writer }

func (s stamp) Write(b []byte) (int, error) {
	if len(b) > 8 && b[2] == ':' && b[5] == ':' {
		return s.w.Write(b) // already stamped by the harness
	}
	if _, err := fmt.Fprintf(s.w, "%s %s", time.Now().Format("15:04:05"), b); err != nil {
		return 0, err
	}
	return len(b), nil
}

// addProviderFlag is --provider/-p, shared by the commands that open one.
func addProviderFlag(c *cobra.Command, v *string) {
	c.Flags().StringVarP(v, "provider", "p", "", "VM provider: auto, qemu or multipass (default $BCMTEST_PROVIDER or auto)")
	c.RegisterFlagCompletionFunc("provider", cobra.FixedCompletions(
		[]string{providers.Auto, providers.QEMU, providers.Multipass}, cobra.ShellCompDirectiveNoFileComp))
}

// addOutputFlag is --output/-o table|json for the listing commands.
func addOutputFlag(c *cobra.Command, v *string) {
	c.Flags().StringVarP(v, "output", "o", "table", "output format: table or json")
	c.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))
}

func checkOutput(c *cobra.Command, v string) error {
	if v != "table" && v != "json" {
		return usagef("%s--output %q: must be table or json", where(c), v)
	}
	return nil
}

type upOptions struct {
	provider, memory, disk, cloudInit, poolSize string
	cpus                                        int
	keep, reuse, force                          bool
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
Debian image); such a file is refused unless --force.`,
		Example: `  bcmtest up CLUS1 3
  bcmtest up DEV 1 --cloud-init my-cloud-init.yml --memory 3G
  bcmtest up OLD 0 --cloud-init fixtures/bcm-original.yaml --force`,
		Args:              wantArgs(1, 2, "NAME [MEMBERS]"),
		Annotations:       map[string]string{numericArgAnnotation: "MEMBERS"},
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(c *cobra.Command, args []string) error {
			return a.up(c.Context(), c, args, o)
		},
	}
	f := c.Flags()
	addProviderFlag(c, &o.provider)
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
	if userData != nil {
		target := lintTarget(ctx, prov)
		problems, err := providerLint(ctx, o.cloudInit, userData, target)
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
	e, err := openEnv(ctx, prov, pr)
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
	return printCluster(cl, a.stdout)
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

func printCluster(c *cluster.Cluster, w io.Writer) error {
	fmt.Fprint(w, upLine(c.Name(), c.Timings()))
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

func (a *app) execCmd() *cobra.Command {
	var prov string
	c := &cobra.Command{
		Use:   "exec NODE -- CMD [ARGS...]",
		Short: "Run a command as root on a node",
		Long: `Runs a command as root on a node.

Exit code: when the command ran, bcmtest exec exits with the command's own exit code,
whatever it is (2, 3 and 130 included), and prints nothing of its own. bcmtest's own
codes (1 failure, 2 usage, 3 environment, 130 interrupted) are used only when the command did not run
(a bad command line, an unknown node, no provider, the connection failed or was
interrupted), always with a line starting "bcmtest:" on stderr.`,
		Example: `  bcmtest exec CLUS1-01 -- zpool list
  echo hello | bcmtest exec CLUS1-00 -- tee /root/hello`,
		Args: func(c *cobra.Command, args []string) error {
			if c.ArgsLenAtDash() != 1 || len(args) < 2 {
				return usagef("exec: want NODE -- CMD [ARGS...]")
			}
			return nil
		},
		ValidArgsFunction: completeNodes,
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkNode("exec", args[0]); err != nil {
				return err
			}
			name, err := chooseProvider(prov)
			if err != nil {
				return fmt.Errorf("exec: %w", err)
			}
			return a.exec(c.Context(), name, args[0], args[1:])
		},
	}
	addProviderFlag(c, &prov)
	return c
}

func (a *app) exec(ctx context.Context, prov, node string, argv []string) error {
	e, err := openEnv(ctx, prov, io.Discard)
	if err != nil {
		return err
	}
	defer e.close()
	if err := knownNode(ctx, e.p, "exec", node); err != nil {
		return err
	}
	res, err := e.p.Exec(ctx, node, provider.ExecInput{Argv: argv, Stdin: stdinIfPiped()})
	if err != nil {
		return err
	}
	a.stdout.Write(res.Stdout)
	a.stderr.Write(res.Stderr)
	if res.ExitCode != 0 {
		return exitStatus(res.ExitCode)
	}
	return nil
}

// knownNode refuses a node the provider does not have, as bad input.
func knownNode(ctx context.Context, p provider.Provider, cmd, node string) error {
	if _, err := p.Info(ctx, node); errors.Is(err, provider.ErrNotFound) {
		return usagef("%s: node %q is not in any cluster on %s (`bcmtest list` shows the nodes)", cmd, node, p.Name())
	} else if err != nil {
		return usagef("%s: %v", cmd, err)
	}
	return nil
}

func stdinIfPiped() io.Reader {
	if fi, err := os.Stdin.Stat(); err == nil && fi.Mode()&os.ModeCharDevice == 0 {
		return os.Stdin
	}
	return nil
}

// shellCapable is what providers with an interactive shell offer.
type shellCapable interface {
	ShellArgv(name string) ([]string, error)
}

func (a *app) sshCmd() *cobra.Command {
	var prov string
	c := &cobra.Command{
		Use:               "ssh NODE",
		Aliases:           []string{"shell"},
		Short:             "Open an interactive shell on a node",
		Long:              "Opens an interactive shell on a node (as the harness user, with sudo).",
		Example:           "  bcmtest ssh CLUS1-00",
		Args:              wantArgs(1, 1, "NODE"),
		ValidArgsFunction: completeNodes,
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkNode("ssh", args[0]); err != nil {
				return err
			}
			name, err := chooseProvider(prov)
			if err != nil {
				return fmt.Errorf("ssh: %w", err)
			}
			return a.ssh(c.Context(), name, args[0])
		},
	}
	addProviderFlag(c, &prov)
	return c
}

func (a *app) ssh(ctx context.Context, prov, node string) error {
	e, err := openEnv(ctx, prov, io.Discard)
	if err != nil {
		return err
	}
	defer e.close()
	if err := knownNode(ctx, e.p, "ssh", node); err != nil {
		return err
	}
	sc, ok := e.p.(shellCapable)
	if !ok {
		return envError{fmt.Errorf("ssh: provider %s has no interactive shell", e.p.Name())}
	}
	argv, err := sc.ShellArgv(node)
	if err != nil {
		return err
	}
	bin, err := exec.LookPath(argv[0])
	if err != nil {
		return envError{fmt.Errorf("ssh: %s not found (install openssh-client)", argv[0])}
	}
	return syscall.Exec(bin, argv, os.Environ())
}

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
