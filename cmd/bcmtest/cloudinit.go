package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/BitcoinCacheMachine/bcmtest/cloudinit"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/multipass"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
	"github.com/BitcoinCacheMachine/bcmtest/harness/providers"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

func (a *app) cloudInitCmd() *cobra.Command {
	c := &cobra.Command{
		Use:     "cloudinit",
		Aliases: []string{"cloud-init"},
		Short:   "Check a cloud-init file, before any VM or on one VM",
		Long: `lint   checks a cloud-init file before any VM starts.
check  lint, then boots one VM with the file and reports each cloud-init module.
diff   boots OLD and NEW side by side and shows what NEW changes on the node.

Exit codes: 0 ok, 2 the file is bad (problems listed with file:line:col), 1 the VM check failed.`,
		Example: `  bcmtest cloudinit lint fixtures/bcm-debian.yaml
  bcmtest cloudinit check my-cloud-init.yml
  bcmtest cloudinit diff --base HEAD cloud_init.yml`,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE:              groupRunE(),
	}
	c.AddCommand(a.lintCmd(), a.checkCmd(), a.diffCmd())
	return c
}

func (a *app) lintCmd() *cobra.Command {
	var prov, img string
	c := &cobra.Command{
		Use:   "lint FILE",
		Short: "Check a cloud-init file before any VM starts",
		Long: `Checks a cloud-init file before any VM starts: the #cloud-config header, YAML
errors with line and column, types of well-known keys, unknown top-level keys
(cloud-init ignores them silently; keys of a later cloud-init are warned about
with the release that added them), and cloud-init's own schema check
('cloud-init schema') run with the cloud-init of the VM image, so the verdict
matches the VMs' cloud-init version (needs root and a built image; skipped
with a notice otherwise). The image is the one --image chooses (default
$BCMTEST_IMAGE or bookworm): bookworm's cloud-init is 22.4, trixie's 25.1. Then warns about what the provider's VMs cannot give
the file (--provider, default $BCMTEST_PROVIDER or auto): on the qemu provider's
offline Debian image snap, PPAs and packages the image does not know.

Exit codes: 0 ok, 2 the file is bad (problems listed with file:line:col).`,
		Example: `  bcmtest cloudinit lint fixtures/bcm-debian.yaml
  bcmtest cloudinit lint my-cloud-init.yml --provider multipass
  bcmtest cloudinit lint my-cloud-init.yml --image trixie`,
		Args:              wantArgs(1, 1, "FILE"),
		ValidArgsFunction: completeCloudInitFile,
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkFileArg(c, args[0]); err != nil {
				return err
			}
			choice, err := providerChoice(prov)
			if err != nil {
				return fmt.Errorf("cloudinit lint: %w", err)
			}
			rel, err := imageChoice(img)
			if err != nil {
				return fmt.Errorf("cloudinit lint: %w", err)
			}
			_, _, err = lint(c.Context(), args[0], lintTarget(c.Context(), choice), rel, a.stdout, a.stderr)
			return err
		},
	}
	addProviderFlag(c, &prov)
	addImageFlag(c, &img)
	return c
}

func (a *app) checkCmd() *cobra.Command {
	var force bool
	var img string
	var sf shapeFlags
	c := &cobra.Command{
		Use:   "check FILE",
		Short: "Lint, then boot one VM and report each cloud-init module",
		Long: `Lints the file, then boots one VM with it on the embedded provider, reports each
cloud-init module's result and time, and deletes the VM. A file that needs what
the embedded provider's VMs lack (snap, PPAs, unknown packages) is refused before
the VM boots, unless --force.

Exit codes: 0 ok, 2 the file is bad (problems listed with file:line:col), 1 the VM check failed.`,
		Example: `  bcmtest cloudinit check my-cloud-init.yml
  bcmtest cloudinit check --force fixtures/bcm-original.yaml
  bcmtest cloudinit check --image trixie my-cloud-init.yml
  bcmtest cloudinit check --cpus 1 --memory 1536M my-cloud-init.yml   (a cluster member's shape on a small host)`,
		Args:              wantArgs(1, 1, "FILE"),
		ValidArgsFunction: completeCloudInitFile,
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkFileArg(c, args[0]); err != nil {
				return err
			}
			// The check node is 2 vCPUs and 2 GiB unless --cpus or --memory say otherwise.
			shape, err := sf.shape(c, nodeShape{CPUs: 2, MemoryMiB: 2048})
			if err != nil {
				return err
			}
			rel, err := imageChoice(img)
			if err != nil {
				return fmt.Errorf("cloudinit check: %w", err)
			}
			return a.check(c.Context(), args[0], rel, shape, force)
		},
	}
	addImageFlag(c, &img)
	addShapeFlags(c, &sf, "2 vCPUs, 2G")
	c.Flags().BoolVarP(&force, "force", "f", false, "boot even when the file needs what the provider's VMs lack (snap, PPAs, unknown packages)")
	return c
}

// checkFileArg refuses an empty FILE, which would otherwise read as a
// file that failed lint.
func checkFileArg(c *cobra.Command, file string) error {
	if strings.TrimSpace(file) == "" {
		return usagef("%sFILE: must not be empty; give the path of a cloud-init file", where(c))
	}
	return nil
}

// lintProblems is a lint failure: the file is bad input (exit 2).
func lintProblems(file string, problems []string) error {
	return usageError{fmt.Sprintf("%s failed lint with %d problem(s):\n  %s", file, len(problems), strings.Join(problems, "\n  "))}
}

// lint runs every check and returns the file's content when it passes.
// With a target provider it also runs the provider lint, prints what that
// finds as warnings and returns it: whether those refuse the file is the
// caller's decision.
func lint(ctx context.Context, file, target string, rel image.Release, stdout, stderr io.Writer) ([]byte, []cloudinit.Problem, error) {
	data, err := cloudinit.LoadContext(ctx, file)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("linting %s: %w", file, err)
		}
		return nil, nil, lintProblems(file, strings.Split(err.Error(), "\n"))
	}
	var problems []string
	judge := lintSchema(rel)
	unknown, err := judge.UnknownKeys(file, data)
	if err != nil {
		return nil, nil, lintProblems(file, []string{err.Error()})
	}
	for _, p := range unknown {
		problems = append(problems, p.Error())
	}
	warnings, _ := judge.Lint(file, data)
	for _, w := range warnings {
		if !strings.Contains(w, "unknown top-level key") {
			fmt.Fprintf(stdout, "warning: %s\n", w)
		}
	}
	schema, note := schemaCheck(ctx, file, data, rel)
	if note != "" {
		fmt.Fprintf(stderr, "notice: %s\n", note)
	}
	for _, p := range schema {
		problems = append(problems, p.Error()+" (cloud-init schema)")
	}
	if len(problems) > 0 {
		return nil, nil, lintProblems(file, problems)
	}
	var forTarget []cloudinit.Problem
	if target != "" {
		if forTarget, err = providerLint(ctx, file, data, target, rel); err != nil {
			return nil, nil, err
		}
	}
	for _, p := range forTarget {
		fmt.Fprintf(stdout, "warning: %s (on the %s provider)\n", p.Error(), target)
	}
	if len(forTarget) > 0 {
		fmt.Fprintf(stdout, "%s: ok for cloud-init, with %d warning(s) for the %s provider\n", file, len(forTarget), target)
	} else {
		fmt.Fprintf(stdout, "%s: ok\n", file)
	}
	return data, forTarget, nil
}

// lintSchema is the cloud-init release a file for rel's nodes is judged by.
func lintSchema(rel image.Release) cloudinit.Schema {
	s, err := cloudinit.SchemaFor(rel.CloudInitVersion())
	if err != nil {
		return cloudinit.Schema224
	}
	return s
}

// lintTarget is the provider whose VMs will run a cloud-init file: the one
// chosen, or for auto the one auto will pick (multipass when `multipass
// version` answers, as providers.New decides).
func lintTarget(ctx context.Context, choice string) string {
	switch choice {
	case providers.QEMU, providers.Multipass:
		return choice
	}
	if _, ok := multipass.Detect(ctx, os.Getenv("BCMTEST_MULTIPASS")); ok {
		return providers.Multipass
	}
	return providers.QEMU
}

// providerLint finds what the target provider's VMs cannot give the file
// (snap on the offline Debian image, PPAs, packages the image lacks), so it
// is said before a VM boots rather than in a failed module minutes later.
func providerLint(ctx context.Context, file string, data []byte, target string, rel image.Release) ([]cloudinit.Problem, error) {
	d, err := state.Default()
	if err != nil {
		return nil, envError{err}
	}
	ps, err := cloudinit.ProviderLint(ctx, file, data, providers.LintTarget(target, d, rel))
	if err != nil {
		return nil, fmt.Errorf("checking %s for the %s provider: %w", file, target, err)
	}
	return ps, nil
}

// refuseForProvider is the verdict of up and check on provider-lint
// problems: a usage error before any VM starts, unless --force, which
// boots anyway after listing them.
func refuseForProvider(at, file, target string, problems []cloudinit.Problem, force bool, stderr io.Writer) error {
	if len(problems) == 0 {
		return nil
	}
	lines := make([]string, len(problems))
	for i, p := range problems {
		lines[i] = p.Error()
	}
	if force {
		fmt.Fprintf(stderr, "warning: %s%s: %d problem(s) for the %s provider's VMs; booting anyway (--force):\n  %s\n",
			at, file, len(problems), target, strings.Join(lines, "\n  "))
		return nil
	}
	return usagef("%s%s: %d problem(s) for the %s provider's VMs; fix them, or pass --force to boot anyway:\n  %s",
		at, file, len(problems), target, strings.Join(lines, "\n  "))
}

// schemaCheck runs `cloud-init schema` with the own cloud-init of rel's
// image. It returns a notice instead when that cannot run here.
func schemaCheck(ctx context.Context, file string, data []byte, rel image.Release) ([]cloudinit.Problem, string) {
	if !strings.HasPrefix(string(data), "#cloud-config") {
		return nil, ""
	}
	d, err := state.Default()
	if err != nil {
		return nil, "skipped cloud-init's schema check: " + err.Error()
	}
	img, err := image.Store{Dir: d.Cache + "/images"}.Lookup(image.RecipeFor(rel))
	if err != nil {
		return nil, fmt.Sprintf("skipped cloud-init's schema check: the %s VM image is not built yet (bcmtest image build --image %s)", rel, rel)
	}
	iv, err := wait.Load()
	if err != nil {
		return nil, "skipped cloud-init's schema check: " + err.Error()
	}
	ctx, cancel := context.WithTimeout(ctx, iv.SchemaCheck.Timeout)
	defer cancel()
	out, errOut, code, err := img.RunInRoot(ctx, map[string][]byte{"/tmp/bcmtest-user-data": data}, "cloud-init", "schema", "--config-file", "/tmp/bcmtest-user-data")
	if err != nil {
		return nil, "skipped cloud-init's schema check: " + err.Error()
	}
	if code == 0 {
		return nil, ""
	}
	probs := cloudinit.ParseSchemaOutput(string(out) + "\n" + string(errOut))
	for i := range probs {
		probs[i].File = file
	}
	return cloudinit.Locate(file, data, probs), ""
}

// check lints, then boots one VM with the file and reports cloud-init's
// per-module results, then deletes the VM.
func (a *app) check(ctx context.Context, file string, rel image.Release, shape nodeShape, force bool) error {
	data, problems, err := lint(ctx, file, providers.QEMU, rel, a.stdout, a.stderr)
	if err != nil {
		return err
	}
	if err := refuseForProvider("cloudinit check: ", file, providers.QEMU, problems, force, a.stderr); err != nil {
		return err
	}
	d, err := state.Default()
	if err != nil {
		return envError{err}
	}
	if err := checkAccelEnv(); err != nil {
		return fmt.Errorf("cloudinit check: %w", err)
	}
	// The progress display (the image build, the VM's boot) ends when the
	// launch returns, before the report on stdout.
	pr := newProgress(a.stderr)
	defer pr.Close()
	p, err := newProvider(ctx, providers.Options{Name: providers.QEMU, Image: rel, Dirs: d, Log: pr})
	if err != nil {
		return envError{err}
	}
	defer p.Close()
	name, err := checkVMName()
	if err != nil {
		return err
	}
	return bootCheck(ctx, withPhases(p, pr, true), name, file, data, shape, a.stdout)
}

// checkVMName is a fresh name for the VM of one check. It is random rather
// than time-based so that two checks started in the same second never
// share a VM, and so never delete each other's.
func checkVMName() (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("naming the check VM: %w", err)
	}
	return "cicheck-" + hex.EncodeToString(b[:]), nil
}

// bootCheck boots the check VM and reports cloud-init's per-module results.
// It deletes the VM only once the launch has claimed the name for this
// process (a VM came back, or cloud-init failed on it): a launch refused
// because the name is taken must leave that other VM alone.
func bootCheck(ctx context.Context, p provider.Provider, name, file string, data []byte, shape nodeShape, stdout io.Writer) error {
	start := time.Now()
	info, lerr := p.Launch(ctx, provider.LaunchInput{Name: name, CPUs: shape.CPUs, MemoryMiB: shape.MemoryMiB, DiskGiB: 10, UserData: data})
	var cie *provider.CloudInitError
	failedCloudInit := errors.As(lerr, &cie)
	if lerr == nil || info.Name != "" || failedCloudInit {
		defer p.Delete(context.WithoutCancel(ctx), name)
	}
	if lerr != nil && !failedCloudInit {
		return lerr
	}
	if out, err := provider.Run(ctx, p, name, "cloud-init", "analyze", "blame"); err == nil {
		fmt.Fprintf(stdout, "cloud-init modules on %s, slowest first (cloud-init analyze blame):\n%s\n", name, out)
	}
	if lerr != nil {
		fmt.Fprintf(stdout, "%s: FAILED after %s\n", file, time.Since(start).Round(time.Second))
		return lerr
	}
	fmt.Fprintf(stdout, "%s: cloud-init done without errors in %s (boot included)\n", file, time.Since(start).Round(time.Second))
	return nil
}
