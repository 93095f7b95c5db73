package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
)

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
