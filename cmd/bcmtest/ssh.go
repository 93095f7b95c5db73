package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"

	"github.com/spf13/cobra"
)

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
