package main

import (
	"context"
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

	"github.com/BitcoinCacheMachine/bcmtest/cloudinit"
	"github.com/BitcoinCacheMachine/bcmtest/fixtures"
	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/diag"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/providers"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

// env bundles what most commands need: dirs and a provider.
type env struct {
	dirs state.Dirs
	p    provider.Provider
}

func openEnv(ctx context.Context, providerName string, log io.Writer) (*env, error) {
	if err := providers.Validate(providerName); err != nil {
		return nil, usagef("--provider: %v", err)
	}
	d, err := state.Default()
	if err != nil {
		return nil, envError{err}
	}
	p, err := providers.New(ctx, providers.Options{Name: providerName, Dirs: d, Log: log})
	if err != nil {
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

func cmdUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("up", "bcmtest up NAME [MEMBERS] [flags]\n\nBrings NAME-00 (bootstrap) and NAME-01..NAME-MEMBERS up as one LXD cluster on ZFS and\nprints how to reach it. MEMBERS defaults to 0 (a single-node cluster).\n\nExamples:\n  bcmtest up CLUS1 3\n  bcmtest up DEV 1 --cloud-init my-cloud-init.yml --memory 3G", stdout)
	prov := fs.String("provider", "", "VM provider: auto, qemu or multipass (default $BCMTEST_PROVIDER or auto)")
	cpus := fs.Int("cpus", cluster.DefaultCPUs, "vCPUs per node")
	mem := fs.String("memory", cluster.DefaultMemory, "memory per node (e.g. 2G, 1536M)")
	disk := fs.String("disk", cluster.DefaultDisk, "disk per node")
	ci := fs.String("cloud-init", "", "cloud-init file for every node (default: the project's BCM fixture for the provider)")
	pool := fs.String("pool-size", cluster.DefaultPoolSize, "size of the ZFS storage pool (loop file) on each node")
	keep := fs.Bool("keep-on-failure", false, "leave the VMs of a failed run for inspection")
	reuse := fs.Bool("reuse", false, "attach to an existing healthy cluster of this name")
	pos, _, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		return usagef("up: want NAME [MEMBERS], got %d argument(s)", len(pos))
	}
	members := 0
	if len(pos) == 2 {
		if members, err = parseMembers(pos[1]); err != nil {
			return err
		}
	}
	if err := cluster.ValidateName(pos[0]); err != nil {
		return usagef("up: %v", err)
	}
	var userData []byte
	if *ci != "" {
		if userData, err = cloudinit.Load(*ci); err != nil {
			return usagef("up: --cloud-init: %v", err)
		}
	}
	log := stamp{stderr}
	e, err := openEnv(ctx, *prov, log)
	if err != nil {
		return err
	}
	defer e.close()
	name := *ci
	if userData == nil {
		name = fixtures.For(e.p.Name())
		userData = fixtures.MustRead(name)
	}
	c, err := cluster.Up(ctx, cluster.Spec{
		Name: pos[0], Members: members, CPUs: *cpus, Memory: *mem, Disk: *disk, PoolSize: *pool,
		CloudInit: userData, CloudInitName: name, Provider: e.p, KeepOnFailure: *keep, Reuse: *reuse,
		Persistent: true, StateDir: e.dirs.State, Log: log,
	})
	if err != nil {
		if strings.Contains(err.Error(), "cluster spec:") {
			return usageError{err.Error()}
		}
		return err
	}
	return printCluster(c, stdout)
}

func printCluster(c *cluster.Cluster, w io.Writer) error {
	fmt.Fprintf(w, "\nCluster %s is up (%s).\n\n", c.Name(), c.Timings())
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADDRESS\tLXD API (from this host)")
	for _, m := range c.Members() {
		fmt.Fprintf(tw, "%s\t%s\thttps://%s\n", m.Name, m.Address, m.Endpoint)
	}
	tw.Flush()
	lxcDir, err := writeLXCConfig(c)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nReach the LXD API with the harness's client certificate (already trusted):\n")
	fmt.Fprintf(w, "  export LXD_CONF=%s\n", lxcDir)
	fmt.Fprintf(w, "  lxc remote add %s https://%s --accept-certificate\n", c.Name(), c.Members()[0].Endpoint)
	fmt.Fprintf(w, "  lxc cluster list %s:\n", c.Name())
	fmt.Fprintf(w, "\nRun commands: bcmtest exec %s -- zpool list\nRemove it:    bcmtest down %s\n", c.Members()[0].Name, c.Name())
	return nil
}

// writeLXCConfig puts the client key pair where `lxc` looks for it when
// LXD_CONF points there, so `lxc remote add` needs no trust token.
func writeLXCConfig(c *cluster.Cluster) (string, error) {
	dir := filepath.Join(c.StateDir(), "lxc")
	if err := state.MkdirPrivate(dir); err != nil {
		return "", err
	}
	cr := c.Credentials()
	if err := os.WriteFile(filepath.Join(dir, "client.crt"), []byte(cr.ClientCert), 0o600); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "client.key"), []byte(cr.ClientKey), 0o600); err != nil {
		return "", err
	}
	return dir, nil
}

func cmdDown(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("down", "bcmtest down NAME | --stale\n\nRemoves exactly the cluster NAME (NAME-NN VMs and state; never NAME10-NN), or with\n--stale every cluster and VM whose harness process died without tearing down.\n\nExamples:\n  bcmtest down CLUS1\n  bcmtest down --stale", stdout)
	prov := fs.String("provider", "", "VM provider: auto, qemu or multipass")
	stale := fs.Bool("stale", false, "sweep what crashed or killed runs left")
	pos, _, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *stale == (len(pos) == 1) || len(pos) > 1 {
		return usagef("down: give exactly one of NAME or --stale")
	}
	// Teardown must finish even when the user presses Ctrl-C again.
	ctx = context.WithoutCancel(ctx)
	e, err := openEnv(ctx, *prov, stamp{stderr})
	if err != nil {
		return err
	}
	defer e.close()
	var removed []string
	if *stale {
		removed, err = cluster.SweepStale(ctx, e.p, e.dirs.State, stamp{stderr})
	} else {
		if verr := cluster.ValidateName(pos[0]); verr != nil {
			return usagef("down: %v", verr)
		}
		removed, err = cluster.Down(ctx, e.p, e.dirs.State, pos[0], stamp{stderr})
	}
	for _, r := range removed {
		fmt.Fprintf(stdout, "removed %s\n", r)
	}
	if len(removed) == 0 && err == nil {
		fmt.Fprintln(stdout, "nothing to remove")
	}
	return err
}

func cmdList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("list", "bcmtest list\n\nLists the clusters and VMs the harness knows, with state, provider and owner.", stdout)
	prov := fs.String("provider", "", "VM provider: auto, qemu or multipass")
	if _, _, err := parse(fs, args); err != nil {
		return err
	}
	e, err := openEnv(ctx, *prov, io.Discard)
	if err != nil {
		return err
	}
	defer e.close()
	all, err := cluster.List(ctx, e.p, e.dirs.State)
	if err != nil {
		return err
	}
	if len(all) == 0 {
		fmt.Fprintln(stdout, "no clusters or VMs")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tNODE\tSTATE\tADDRESS\tPROVIDER\tOWNER")
	for _, cs := range all {
		owner := "kept (bcmtest up)"
		switch {
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

func cmdExec(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("exec", "bcmtest exec NODE -- CMD [ARGS...]\n\nRuns a command as root on a node; exits with the command's exit code.\n\nExample:\n  bcmtest exec CLUS1-01 -- zpool list", stdout)
	prov := fs.String("provider", "", "VM provider: auto, qemu or multipass")
	pos, rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || len(rest) == 0 {
		return usagef("exec: want NODE -- CMD [ARGS...]")
	}
	e, err := openEnv(ctx, *prov, io.Discard)
	if err != nil {
		return err
	}
	defer e.close()
	if _, err := e.p.Info(ctx, pos[0]); errors.Is(err, provider.ErrNotFound) {
		return usagef("exec: node %q is not in any cluster on %s (`bcmtest list` shows the nodes)", pos[0], e.p.Name())
	} else if err != nil {
		return usagef("exec: %v", err)
	}
	res, err := e.p.Exec(ctx, pos[0], provider.ExecInput{Argv: rest, Stdin: stdinIfPiped()})
	if err != nil {
		return err
	}
	stdout.Write(res.Stdout)
	stderr.Write(res.Stderr)
	if res.ExitCode != 0 {
		return exitStatus(res.ExitCode)
	}
	return nil
}

// exitStatus passes a remote command's exit code through.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("command exited with code %d", int(e)) }

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

func cmdSSH(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("ssh", "bcmtest ssh NODE\n\nOpens an interactive shell on a node (as the harness user, with sudo).", stdout)
	prov := fs.String("provider", "", "VM provider: auto, qemu or multipass")
	pos, _, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("ssh: want NODE")
	}
	e, err := openEnv(ctx, *prov, io.Discard)
	if err != nil {
		return err
	}
	defer e.close()
	sc, ok := e.p.(shellCapable)
	if !ok {
		return envError{fmt.Errorf("ssh: provider %s has no interactive shell", e.p.Name())}
	}
	argv, err := sc.ShellArgv(pos[0])
	if err != nil {
		return err
	}
	bin, err := exec.LookPath(argv[0])
	if err != nil {
		return envError{fmt.Errorf("ssh: %s not found (install openssh-client)", argv[0])}
	}
	return syscall.Exec(bin, argv, os.Environ())
}

func cmdLogs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("logs", "bcmtest logs NAME [--out DIR]\n\nCollects per-node diagnostics of cluster NAME: cloud-init logs and status, LXD and Tor\njournals, LXD's log, zpool status, the member list and the serial console.\n\nExample:\n  bcmtest logs CLUS1 --out /tmp/clus1-logs", stdout)
	prov := fs.String("provider", "", "VM provider: auto, qemu or multipass")
	out := fs.String("out", "", "directory for the files (default ./artifacts/logs-NAME-TIME)")
	pos, _, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("logs: want NAME")
	}
	if err := cluster.ValidateName(pos[0]); err != nil {
		return usagef("logs: %v", err)
	}
	dir := *out
	if dir == "" {
		dir = filepath.Join("artifacts", "logs-"+pos[0]+"-"+time.Now().UTC().Format("20060102-150405"))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return usagef("logs: --out %s: %v", dir, err)
	}
	e, err := openEnv(ctx, *prov, io.Discard)
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
		if v.Group == pos[0] || cluster.IsNodeOf(v.Name, pos[0]) {
			nodes = append(nodes, v.Name)
		}
	}
	sort.Strings(nodes)
	if len(nodes) == 0 {
		return fmt.Errorf("logs: cluster %s has no VMs", pos[0])
	}
	files, err := diag.Collect(ctx, diag.CollectInput{Provider: e.p, Nodes: nodes, Dir: dir, Log: stamp{stderr}})
	for _, f := range files {
		fmt.Fprintln(stdout, f)
	}
	return err
}
