package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/BitcoinCacheMachine/bcmtest/cloudinit"
	"github.com/BitcoinCacheMachine/bcmtest/harness/inventory"
	"github.com/BitcoinCacheMachine/bcmtest/harness/progress"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
	"github.com/BitcoinCacheMachine/bcmtest/harness/providers"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

// diffOptions are the flags of `cloudinit diff`.
type diffOptions struct {
	base       string
	output     string
	out        string
	provider   string
	image      string
	failOnDiff bool
	force      bool
	shapeFlags shapeFlags
	// shape is each node's, from the flags or diffShape.
	shape nodeShape
}

func (a *app) diffCmd() *cobra.Command {
	var o diffOptions
	c := &cobra.Command{
		Use:   "diff OLD NEW | diff --base REV FILE",
		Short: "Boot OLD and NEW side by side and show what NEW changes on the node",
		Long: `Lints both cloud-init files, then boots two nodes of the same shape at once, one
with each file, collects the same inventory on each once cloud-init has ended
(health, modules, packages, units, users and groups, sudoers, listening
sockets, sysctls, mounts, ZFS, apt, files cloud-init wrote, LXD, Tor), removes
what differs from node to node anyway (hostname, instance-id, machine-id,
MACs, addresses, host keys, onion addresses, timestamps, PIDs), and prints
what NEW changes: regressions first, then differences, then module timings
(flagged when at least 2x and 5 s slower). Both nodes are always deleted.

With --base REV, OLD is FILE as committed at git revision REV and NEW is
FILE in the work tree; FILE alone means --base HEAD.

Both inventories, both nodes' cloud-init logs and the diff (txt, md, json)
are written to --out (default artifacts/cloudinit-diff-<time>).

Exit codes: 0 NEW's cloud-init succeeded, whatever differs (unless
--fail-on-diff); 1 NEW's cloud-init failed (a regression when OLD's did not),
a lint problem only NEW has, or any difference with --fail-on-diff; 2 bad
input (missing, empty or binary file, not a git work tree, unknown revision,
file not tracked at it); 3 environment.`,
		Example: `  bcmtest cloudinit diff old/cloud_init.yml new/cloud_init.yml
  bcmtest cloudinit diff --base HEAD cloud_init.yml      (the same as: bcmtest cloudinit diff cloud_init.yml)
  bcmtest cloudinit diff --base origin/main -o markdown cloud_init.yml >> "$GITHUB_STEP_SUMMARY"`,
		Args:              wantArgs(1, 2, "OLD NEW, or --base REV FILE"),
		ValidArgsFunction: completeCloudInitFile,
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkReportOutput(c, o.output); err != nil {
				return err
			}
			// One FILE alone is FILE against its last commit (--base HEAD).
			var err error
			if o.shape, err = o.shapeFlags.shape(c, diffShape(runtime.NumCPU())); err != nil {
				return err
			}
			withBase := c.Flags().Changed("base") || len(args) == 1
			sides, err := diffInputs(c.Context(), where(c), args, o.base, withBase)
			if err != nil {
				return err
			}
			return a.cloudInitDiff(c.Context(), sides, o)
		},
	}
	f := c.Flags()
	f.StringVar(&o.base, "base", "HEAD", "git revision whose FILE is OLD (FILE in the work tree is NEW); FILE alone means HEAD")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text, json or markdown")
	f.StringVar(&o.out, "out", "", "artifacts directory (default artifacts/cloudinit-diff-<time>)")
	f.BoolVar(&o.failOnDiff, "fail-on-diff", false, "exit 1 on any difference or regression, not only when NEW fails")
	f.BoolVarP(&o.force, "force", "f", false, "boot even when a file needs what the provider's VMs lack, or NEW has lint problems OLD has not")
	addProviderFlag(c, &o.provider)
	addImageFlag(c, &o.image)
	addShapeFlags(c, &o.shapeFlags, "half the host's cores, at most 2 vCPUs: 2 vCPUs and 2G, or 1 and 1536M")
	c.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json", "markdown"}, cobra.ShellCompDirectiveNoFileComp))
	return c
}

// checkReportOutput checks -o of the commands that print a diff report.
func checkReportOutput(c *cobra.Command, v string) error {
	switch v {
	case "text", "json", "markdown":
		return nil
	}
	return usagef("%s--output %q: must be text, json or markdown", where(c), v)
}

// diffSide is one of the two cloud-init files.
type diffSide struct {
	// Field names the input in messages: OLD, NEW, or FILE at --base.
	Field string
	// Name is how the report names it: a path, or REV:path.
	Name string
	Data []byte
}

// diffInputs reads OLD and NEW, or FILE at REV and in the work tree, and
// refuses bad input before any VM starts, naming the field and the rule.
func diffInputs(ctx context.Context, at string, args []string, base string, withBase bool) ([2]diffSide, error) {
	var sides [2]diffSide
	if !withBase {
		if len(args) != 2 {
			return sides, usagef("%swant OLD and NEW (two cloud-init files), or --base REV FILE; got %d argument(s)", at, len(args))
		}
		for i, field := range []string{"OLD", "NEW"} {
			data, err := readUserFile(at, field, args[i])
			if err != nil {
				return sides, err
			}
			sides[i] = diffSide{Field: field, Name: args[i], Data: data}
		}
		return sides, nil
	}
	if len(args) != 1 {
		return sides, usagef("%swith --base, want one FILE (compared with itself at the revision); got %d argument(s)", at, len(args))
	}
	if strings.TrimSpace(base) == "" || strings.HasPrefix(base, "-") {
		return sides, usagef("%s--base %q: must be a git revision (a commit, branch or tag, e.g. HEAD or origin/main)", at, base)
	}
	file := args[0]
	nu, err := readUserFile(at, "FILE", file)
	if err != nil {
		return sides, err
	}
	old, rel, err := gitShow(ctx, at, base, file)
	if err != nil {
		return sides, err
	}
	field := fmt.Sprintf("FILE at --base %s", base)
	if err := checkUserData(at, field, base+":"+rel, old); err != nil {
		return sides, err
	}
	sides[0] = diffSide{Field: "OLD", Name: base + ":" + rel, Data: old}
	sides[1] = diffSide{Field: "NEW", Name: file, Data: nu}
	return sides, nil
}

// readUserFile reads a cloud-init file given on the command line.
func readUserFile(at, field, path string) ([]byte, error) {
	if strings.TrimSpace(path) == "" {
		return nil, usagef("%s%s: must not be empty; give the path of a cloud-init file", at, field)
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, usagef("%s%s %q: no such file", at, field, path)
	case err != nil:
		return nil, usagef("%s%s %q: cannot read it: %v", at, field, path, err)
	case fi.IsDir():
		return nil, usagef("%s%s %q: is a directory; give a cloud-init file", at, field, path)
	case !fi.Mode().IsRegular():
		return nil, usagef("%s%s %q: is not a regular file; give a cloud-init file", at, field, path)
	case fi.Size() > cloudinit.MaxSize:
		return nil, usagef("%s%s %q: is %d bytes, more than the 1 MiB a cloud-init file may have", at, field, path, fi.Size())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("%s%s %q: cannot read it: %v", at, field, path, err)
	}
	return data, checkUserData(at, field, path, data)
}

// checkUserData refuses an empty or binary file: cloud-init would boot
// with nothing to do, and a diff of it says nothing.
func checkUserData(at, field, name string, data []byte) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return usagef("%s%s %q: is empty; a cloud-init file must start with #cloud-config (or #! for a script)", at, field, name)
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return usagef("%s%s %q: is a binary file (a NUL byte at offset %d); give a cloud-init text file", at, field, name, i)
	}
	if !utf8.Valid(data) {
		return usagef("%s%s %q: is a binary file (not UTF-8 text); give a cloud-init text file", at, field, name)
	}
	return nil
}

// gitShow returns file as committed at rev, and its path in the repository.
func gitShow(ctx context.Context, at, rev, file string) ([]byte, string, error) {
	if _, err := exec.LookPath("git"); err != nil {
		return nil, "", envError{fmt.Errorf("%s--base needs git: %w", at, err)}
	}
	abs, err := filepath.Abs(file)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return nil, "", usagef("%sFILE %q: cannot resolve its path: %v", at, file, err)
	}
	dir := filepath.Dir(abs)
	git := func(args ...string) (string, string, error) {
		cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		return out.String(), strings.TrimSpace(errOut.String()), err
	}
	top, gerr, err := git("rev-parse", "--show-toplevel")
	if err != nil {
		if ctx.Err() != nil {
			return nil, "", fmt.Errorf("%sreading %s at %s: %w", at, file, rev, ctx.Err())
		}
		return nil, "", usagef("%sFILE %q: --base needs a git work tree, and %s is not in one (git: %s)", at, file, dir, gerr)
	}
	top = strings.TrimSpace(top)
	if _, gerr, err := git("rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}"); err != nil {
		return nil, "", usagef("%s--base %q: unknown revision in the git work tree %s%s", at, rev, top, suffix(gerr))
	}
	rel, err := filepath.Rel(top, abs)
	if err != nil || strings.HasPrefix(rel, "..") {
		return nil, "", usagef("%sFILE %q: is outside the git work tree %s", at, file, top)
	}
	rel = filepath.ToSlash(rel)
	listed, _, err := git("ls-tree", "--name-only", "--full-tree", rev, "--", rel)
	if err != nil || strings.TrimSpace(listed) == "" {
		return nil, "", usagef("%sFILE %q: not tracked at revision %s (git ls-tree %s -- %s lists nothing); add and commit it, or give OLD and NEW", at, file, rev, rev, rel)
	}
	data, gerr, err := git("show", rev+":"+rel)
	if err != nil {
		return nil, "", usagef("%sFILE %q at revision %s: git show failed: %s", at, file, rev, gerr)
	}
	return []byte(data), rel, nil
}

func suffix(s string) string {
	if s == "" {
		return ""
	}
	return " (git: " + s + ")"
}

// lintFinding is one lint problem, keyed without its position so that
// the same problem on another line of the other file matches.
type lintFinding struct {
	key, text string
}

// lintSide runs the file checks (validity, unknown keys, cloud-init's
// schema) and the provider lint on one side, without refusing anything:
// the caller compares the two sides.
func lintSide(ctx context.Context, s diffSide, target string, rel image.Release, stderr io.Writer) ([]lintFinding, []cloudinit.Problem, error) {
	var out []lintFinding
	add := func(p cloudinit.Problem, tag string) {
		out = append(out, lintFinding{key: p.Path + ": " + p.Rule + tag, text: p.Error() + tag})
	}
	if err := cloudinit.Validate(s.Name, s.Data); err != nil {
		var one *cloudinit.Problem
		var many cloudinit.Problems
		switch {
		case errors.As(err, &many):
			for _, p := range many {
				add(*p, "")
			}
		case errors.As(err, &one):
			add(*one, "")
		default:
			return nil, nil, fmt.Errorf("linting %s %s: %w", s.Field, s.Name, err)
		}
		return out, nil, nil
	}
	unknown, err := lintSchema(rel).UnknownKeys(s.Name, s.Data)
	if err != nil {
		return nil, nil, fmt.Errorf("linting %s %s: %w", s.Field, s.Name, err)
	}
	for _, p := range unknown {
		add(p, "")
	}
	schema, note := schemaCheck(ctx, s.Name, s.Data, rel)
	if note != "" {
		fmt.Fprintf(stderr, "notice: %s: %s\n", s.Field, note)
	}
	for _, p := range schema {
		add(p, " (cloud-init schema)")
	}
	forTarget, err := providerLint(ctx, s.Name, s.Data, target, rel)
	if err != nil {
		return nil, nil, err
	}
	return out, forTarget, nil
}

// lintRegressions are NEW's lint problems that OLD has not.
func lintRegressions(old, nu []lintFinding) []inventory.Finding {
	had := map[string]bool{}
	for _, f := range old {
		had[f.key] = true
	}
	out := []inventory.Finding{}
	for _, f := range nu {
		if !had[f.key] {
			out = append(out, inventory.Finding{Kind: "lint", What: "lint problem only NEW has: " + f.text})
		}
	}
	return out
}

// diffNode is one side's node once booted and inspected.
type diffNode struct {
	name      string
	launchErr error
	cie       *provider.CloudInitError
	claimed   bool
	collected inventory.Collected
}

func (a *app) cloudInitDiff(ctx context.Context, sides [2]diffSide, o diffOptions) error {
	choice, err := chooseProvider(o.provider)
	if err != nil {
		return fmt.Errorf("cloudinit diff: %w", err)
	}
	rel, err := imageChoice(o.image)
	if err != nil {
		return fmt.Errorf("cloudinit diff: %w", err)
	}
	target := lintTarget(ctx, choice)
	var findings [2][]lintFinding
	var forTarget [2][]cloudinit.Problem
	for i, s := range sides {
		if findings[i], forTarget[i], err = lintSide(ctx, s, target, rel, a.stderr); err != nil {
			return err
		}
		for _, f := range findings[i] {
			fmt.Fprintf(a.stderr, "lint %s: %s\n", s.Field, f.text)
		}
		if err := refuseForProvider("cloudinit diff: "+s.Field+" ", s.Name, target, forTarget[i], o.force, a.stderr); err != nil {
			return err
		}
	}
	lintRegs := lintRegressions(findings[0], findings[1])
	dir := o.out
	if dir == "" {
		dir = filepath.Join("artifacts", "cloudinit-diff-"+time.Now().UTC().Format("20060102-150405"))
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return envError{fmt.Errorf("cloudinit diff: creating the artifacts directory %s: %w", dir, err)}
	}
	if len(lintRegs) > 0 && !o.force {
		r := inventory.Report{
			Schema:      inventory.ReportVersion,
			Old:         inventory.Side{File: sides[0].Name, Status: "not booted"},
			New:         inventory.Side{File: sides[1].Name, Status: "not booted: lint problems"},
			Regressions: lintRegs, Differences: []inventory.Change{}, Timings: []inventory.Timing{},
		}
		if err := a.writeReport(r, o.output, dir); err != nil {
			return err
		}
		return fmt.Errorf("cloudinit diff: NEW %s has %d lint problem(s) OLD has not; no VM booted (--force boots anyway)", sides[1].Name, len(lintRegs))
	}

	dirs, err := state.Default()
	if err != nil {
		return envError{err}
	}
	pr := newProgress(a.stderr)
	defer pr.Close()
	p, err := newProvider(ctx, providers.Options{Name: choice, Image: rel, Dirs: dirs, Log: pr})
	if err != nil {
		return envError{err}
	}
	defer p.Close()
	base, err := checkVMName()
	if err != nil {
		return err
	}
	base = strings.Replace(base, "cicheck-", "cidiff-", 1)
	nodes := [2]*diffNode{{name: base + "-old"}, {name: base + "-new"}}
	// Teardown is registered before any launch, with a context of its own,
	// so an interrupt or a failure below still deletes both nodes.
	defer func() {
		var g errgroup.Group
		for _, n := range nodes {
			if n.claimed {
				g.Go(func() error {
					if err := p.Delete(context.WithoutCancel(ctx), n.name); err != nil {
						fmt.Fprintf(a.stderr, "bcmtest: deleting %s: %v\n", n.name, err)
					}
					return nil
				})
			}
		}
		g.Wait()
	}()
	start := time.Now()
	shape := o.shape
	bootBoth(ctx, withPhases(p, pr, false), pr, nodes, sides, shape)
	pr.Close()
	for i, n := range nodes {
		if n.launchErr != nil && n.cie == nil {
			err := fmt.Errorf("cloudinit diff: launching %s's node %s: %w", sides[i].Field, n.name, n.launchErr)
			if ctx.Err() != nil {
				return err // interrupted (130), after the deferred teardown
			}
			return envError{err}
		}
	}
	fmt.Fprintf(a.stderr, "both nodes done in %s; collecting their inventories\n", time.Since(start).Round(time.Second))
	var g errgroup.Group
	for _, n := range nodes {
		g.Go(func() error {
			var err error
			n.collected, err = inventory.Collect(ctx, p, n.name)
			return err
		})
	}
	cerr := g.Wait()
	for i, n := range nodes {
		a.saveNode(ctx, p, dir, []string{"old", "new"}[i], n)
	}
	if cerr != nil {
		return fmt.Errorf("cloudinit diff: %w", cerr)
	}
	r := inventory.Diff(sides[0].Name, nodes[0].collected.Inventory, sides[1].Name, nodes[1].collected.Inventory)
	r.Regressions = append(lintRegs, r.Regressions...)
	addFailureDetail(&r, nodes[1].cie)
	if err := a.writeReport(r, o.output, dir); err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "artifacts: %s\n", dir)
	switch {
	case r.Failed():
		return fmt.Errorf("cloudinit diff: %s", r.Summary())
	case o.failOnDiff && (len(r.Differences) > 0 || len(r.Regressions) > 0):
		return fmt.Errorf("cloudinit diff: %s (--fail-on-diff)", r.Summary())
	}
	return nil
}

// diffShape gives each of the two nodes half the host's cores, at least
// one and at most two (the shape of ` + "`cloudinit check`" + `'s node): two nodes
// that each want more cores than their half boot by taking turns on the
// host, which under software emulation made a diff of two 2-vCPU nodes on
// a 2-core host take twice as long as a check. With one vCPU a node gets
// 1536 MiB, the shape of a cluster member, whose snapshot is usually
// made already.
func diffShape(hostCPUs int) nodeShape {
	switch {
	case hostCPUs >= 4:
		return nodeShape{CPUs: 2, MemoryMiB: 2048}
	default:
		return nodeShape{CPUs: 1, MemoryMiB: 1536}
	}
}

// bootBoth launches both nodes at once and marks each node whose name
// this process claimed (a VM came back, or cloud-init failed on it): a
// launch refused because the name is taken must leave that VM alone.
func bootBoth(ctx context.Context, p provider.Provider, pr *progress.Progress, nodes [2]*diffNode, sides [2]diffSide, shape nodeShape) {
	var g errgroup.Group
	for i, n := range nodes {
		pr.Launching(n.name)
		g.Go(func() error {
			info, err := p.Launch(ctx, provider.LaunchInput{Name: n.name, CPUs: shape.CPUs, MemoryMiB: shape.MemoryMiB, DiskGiB: 10, UserData: sides[i].Data})
			n.launchErr = err
			errors.As(err, &n.cie)
			n.claimed = err == nil || info.Name != "" || n.cie != nil
			return nil
		})
	}
	g.Wait()
}

// saveNode writes a node's inventory, the collector's output and its
// cloud-init logs to the artifacts; what cannot be read is said, not fatal.
func (a *app) saveNode(ctx context.Context, p provider.Provider, dir, side string, n *diffNode) {
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, side+"."+name), data, 0o640); err != nil {
			fmt.Fprintf(a.stderr, "warning: writing %s.%s to %s: %v\n", side, name, dir, err)
		}
	}
	if n.collected.Inventory != nil {
		if b, err := n.collected.Inventory.Marshal(); err == nil {
			write("inventory.json", b)
		}
	}
	if n.collected.Raw != "" {
		write("collector.txt", []byte(n.collected.Raw))
	}
	// The collector prints both logs; they are read from the node again
	// only when its output lacks them.
	secs := inventory.Sections(n.collected.Raw)
	for log, sec := range map[string]string{"cloud-init.log": "log", "cloud-init-output.log": "output_log"} {
		if b, ok := secs[sec]; ok {
			write(log, []byte(b))
			continue
		}
		b, err := p.CopyOut(ctx, n.name, "/var/log/"+log)
		if err != nil {
			fmt.Fprintf(a.stderr, "warning: copying /var/log/%s from %s: %v\n", log, n.name, err)
			continue
		}
		write(log, b)
	}
}

// addFailureDetail adds what the provider saw of NEW's failure (the
// failed modules, the failing command, its exit code and output) to the
// report's failure.
func addFailureDetail(r *inventory.Report, cie *provider.CloudInitError) {
	if cie == nil {
		return
	}
	for i, f := range r.Regressions {
		if f.Kind != "failed" {
			continue
		}
		var d []string
		if len(cie.FailedModules) > 0 {
			d = append(d, "failed modules: "+strings.Join(cie.FailedModules, ", "))
		}
		if cie.FailingCommand != "" {
			d = append(d, fmt.Sprintf("failing command: %s (exit code %d)", cie.FailingCommand, cie.ExitCode))
		}
		for _, l := range cie.FailingOutput {
			d = append(d, "| "+l)
		}
		r.Regressions[i].Detail = append(d, f.Detail...)
	}
}

// writeReport prints the report in the chosen format and writes it in
// every format to the artifacts.
func (a *app) writeReport(r inventory.Report, output, dir string) error {
	var txt, md, js bytes.Buffer
	if err := r.WriteText(&txt, false); err != nil {
		return err
	}
	if err := r.WriteMarkdown(&md); err != nil {
		return err
	}
	if err := r.WriteJSON(&js); err != nil {
		return err
	}
	if dir != "" {
		for name, b := range map[string][]byte{"diff.txt": txt.Bytes(), "diff.md": md.Bytes(), "diff.json": js.Bytes()} {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o640); err != nil {
				return envError{fmt.Errorf("writing %s to %s: %w", name, dir, err)}
			}
		}
	}
	switch output {
	case "json":
		_, err := a.stdout.Write(js.Bytes())
		return err
	case "markdown":
		_, err := a.stdout.Write(md.Bytes())
		return err
	}
	if progress.IsTerminal(a.stdout) {
		return r.WriteText(a.stdout, true)
	}
	_, err := a.stdout.Write(txt.Bytes())
	return err
}
