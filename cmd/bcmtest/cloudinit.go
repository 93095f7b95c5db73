package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/cloudinit"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

const cloudInitHelp = `bcmtest cloudinit lint FILE
bcmtest cloudinit check FILE

lint   checks a cloud-init file before any VM starts: the #cloud-config header, YAML
       errors with line and column, types of well-known keys, unknown top-level keys
       (cloud-init ignores them silently), and cloud-init's own schema check
       ('cloud-init schema') run with the cloud-init of the VM image, so the verdict
       matches the VMs' cloud-init version (needs root and a built image; skipped
       with a notice otherwise).
check  lint, then boots one VM with the file on the embedded provider, reports each
       cloud-init module's result and time, and deletes the VM.

Examples:
  bcmtest cloudinit lint fixtures/bcm-debian.yaml
  bcmtest cloudinit check my-cloud-init.yml

Exit codes: 0 ok, 2 the file is bad (problems listed with file:line:col), 1 the VM check failed.
`

func cmdCloudInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, cloudInitHelp)
		return usagef("cloudinit: want a subcommand (lint or check)")
	}
	if args[0] == "--help" || args[0] == "-h" || args[0] == "help" {
		fmt.Fprint(stdout, cloudInitHelp)
		return nil
	}
	if len(args) != 2 {
		if args[0] == "lint" || args[0] == "check" {
			return usagef("cloudinit %s: want FILE", args[0])
		}
		return usagef("cloudinit: unknown subcommand %q (want lint or check)", args[0])
	}
	switch args[0] {
	case "lint":
		_, err := lint(ctx, args[1], stdout, stderr)
		return err
	case "check":
		return check(ctx, args[1], stdout, stderr)
	}
	return usagef("cloudinit: unknown subcommand %q (want lint or check)", args[0])
}

// lintProblems is a lint failure: the file is bad input (exit 2).
func lintProblems(file string, problems []string) error {
	return usageError{fmt.Sprintf("%s failed lint with %d problem(s):\n  %s", file, len(problems), strings.Join(problems, "\n  "))}
}

// lint runs every check and returns the file's content when it passes.
func lint(ctx context.Context, file string, stdout, stderr io.Writer) ([]byte, error) {
	data, err := cloudinit.Load(file)
	if err != nil {
		return nil, lintProblems(file, strings.Split(err.Error(), "\n"))
	}
	var problems []string
	unknown, err := cloudinit.UnknownKeys(file, data)
	if err != nil {
		return nil, lintProblems(file, []string{err.Error()})
	}
	for _, p := range unknown {
		problems = append(problems, p.Error())
	}
	warnings, _ := cloudinit.Lint(file, data)
	for _, w := range warnings {
		if !strings.Contains(w, "unknown top-level key") {
			fmt.Fprintf(stdout, "warning: %s\n", w)
		}
	}
	schema, note := schemaCheck(ctx, file, data)
	if note != "" {
		fmt.Fprintf(stderr, "notice: %s\n", note)
	}
	for _, p := range schema {
		problems = append(problems, p.Error()+" (cloud-init schema)")
	}
	if len(problems) > 0 {
		return nil, lintProblems(file, problems)
	}
	fmt.Fprintf(stdout, "%s: ok\n", file)
	return data, nil
}

// schemaCheck runs `cloud-init schema` with the image's own cloud-init.
// It returns a notice instead when that cannot run here.
func schemaCheck(ctx context.Context, file string, data []byte) ([]cloudinit.Problem, string) {
	if !strings.HasPrefix(string(data), "#cloud-config") {
		return nil, ""
	}
	d, err := state.Default()
	if err != nil {
		return nil, "skipped cloud-init's schema check: " + err.Error()
	}
	img, err := image.Store{Dir: d.Cache + "/images"}.Lookup(image.DefaultRecipe())
	if err != nil {
		return nil, "skipped cloud-init's schema check: the VM image is not built yet (bcmtest image build)"
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
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
func check(ctx context.Context, file string, stdout, stderr io.Writer) error {
	data, err := lint(ctx, file, stdout, stderr)
	if err != nil {
		return err
	}
	d, err := state.Default()
	if err != nil {
		return envError{err}
	}
	p, err := qemu.New(qemu.Config{Dirs: d, Log: stamp{stderr}})
	if err != nil {
		return envError{err}
	}
	defer p.Close()
	name := fmt.Sprintf("cicheck%d", time.Now().Unix()%100000)
	defer p.Delete(context.WithoutCancel(ctx), name)
	start := time.Now()
	_, lerr := p.Launch(ctx, provider.LaunchInput{Name: name, CPUs: 2, MemoryMiB: 2048, DiskGiB: 10, UserData: data})
	var cie *provider.CloudInitError
	if lerr != nil && !errors.As(lerr, &cie) {
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
