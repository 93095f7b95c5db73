package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
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

// openEnv opens the provider chosen by chooseProvider, its nodes on the
// image BCMTEST_IMAGE names (checked by imageChoice before).
func openEnv(ctx context.Context, providerName string, log io.Writer) (*env, error) {
	return openEnvImage(ctx, providerName, "", log)
}

// openEnvImage is openEnv with the nodes' image chosen by imageChoice.
func openEnvImage(ctx context.Context, providerName string, rel image.Release, log io.Writer) (*env, error) {
	d, err := state.Default()
	if err != nil {
		return nil, envError{err}
	}
	p, err := newProvider(ctx, providers.Options{Name: providerName, Image: rel, Dirs: d, Log: log})
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

// addImageFlag is --image, shared by the commands that launch VMs.
func addImageFlag(c *cobra.Command, v *string) {
	c.Flags().StringVar(v, "image", "", "Debian release the qemu provider's nodes run: "+image.ReleaseNames()+
		" (default $"+image.ImageEnv+" or "+string(image.DefaultRelease)+")")
	names := []string{}
	for _, r := range image.Releases() {
		names = append(names, string(r))
	}
	c.RegisterFlagCompletionFunc("image", cobra.FixedCompletions(names, cobra.ShellCompDirectiveNoFileComp))
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
