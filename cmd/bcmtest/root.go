package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// app holds what every command writes to.
type app struct {
	stdout, stderr io.Writer
}

const rootLong = `bcmtest: end-to-end test harness for Bitcoin Cache Machine's LXD clusters.

It brings NAME-00 (bootstrap) and NAME-01..NN up as one LXD cluster on VMs,
shows and collects their state, checks cloud-init files, and runs the e2e
suites over cluster sizes.

Environment: BCMTEST_PROVIDER (auto|qemu|multipass), BCMTEST_ACCEL (auto|kvm|tcg),
BCMTEST_IMAGE (bookworm|trixie), BCMTEST_STATE_DIR, BCMTEST_CACHE_DIR,
BCMTEST_MULTIPASS (path to multipass).

Exit codes: 0 ok, 1 failure (an operation or tests failed), 2 usage error,
3 environment problem (missing qemu, multipass, disk), 130 interrupted, each with
a line starting "bcmtest:" on stderr. bcmtest exec exits with the command's own exit code
when the command ran, and prints nothing of its own then.`

const rootExample = `  bcmtest up CLUS1 3                  CLUS1-00..CLUS1-03 as one cluster (as up_lxd_cluster.sh CLUS1 3)
  bcmtest exec CLUS1-01 -- zpool list
  bcmtest down CLUS1                  removes CLUS1-NN only, never CLUS10-NN`

// newRoot builds the command tree. ran reports whether a command's own
// code started, so run can tell cobra's command-line errors from failures.
func newRoot(stdout, stderr io.Writer) (*cobra.Command, *bool) {
	a := &app{stdout: stdout, stderr: stderr}
	ran := new(bool)
	root := &cobra.Command{
		Use:     "bcmtest",
		Short:   "End-to-end test harness for Bitcoin Cache Machine's LXD clusters",
		Long:    rootLong,
		Example: rootExample,
		Version: version,
		Args:    cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				c.SetOut(a.stderr)
				c.Help()
				return usagef("no command given; run 'bcmtest help'")
			}
			return unknownSubcommand(c, args[0], "command")
		},
		SilenceErrors:     true,
		SilenceUsage:      true,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(flagError)
	root.SetVersionTemplate("bcmtest {{.Version}}\n")
	root.AddCommand(
		a.upCmd(), a.growCmd(), a.shrinkCmd(), a.downCmd(), a.listCmd(), a.execCmd(), a.sshCmd(), a.logsCmd(),
		a.imageCmd(), a.cloudInitCmd(), a.inventoryCmd(), a.matrixCmd(), a.versionCmd(),
	)
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		switch c.Name() {
		case "help":
			c.Example = "  bcmtest help up\n  bcmtest help image list"
			c.Run, c.RunE = nil, helpRunE
		case "completion":
			decorateCompletion(c)
		}
	}
	walk(root, func(c *cobra.Command) {
		c.Args = usageArgs(c.Args)
		markRun(c, ran)
	})
	return root, ran
}

// walk visits c and every command below it.
func walk(c *cobra.Command, fn func(*cobra.Command)) {
	fn(c)
	for _, s := range c.Commands() {
		walk(s, fn)
	}
}

// usageArgs makes every positional-argument error a usage error naming
// the command, including those of cobra's own commands.
func usageArgs(inner cobra.PositionalArgs) cobra.PositionalArgs {
	if inner == nil {
		inner = cobra.ArbitraryArgs
	}
	return func(c *cobra.Command, args []string) error {
		err := inner(c, args)
		var u usageError
		if err == nil || errors.As(err, &u) {
			return err
		}
		return usageError{where(c) + err.Error()}
	}
}

// markRun records that a command's own code started.
func markRun(c *cobra.Command, ran *bool) {
	if runE := c.RunE; runE != nil {
		c.RunE = func(c *cobra.Command, args []string) error { *ran = true; return runE(c, args) }
	} else if run := c.Run; run != nil {
		c.Run = func(c *cobra.Command, args []string) { *ran = true; run(c, args) }
	}
}

// groupRunE answers a command that only groups subcommands: "help" shows
// the help, anything else is a usage error listing the subcommands.
func groupRunE() func(c *cobra.Command, args []string) error {
	return func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			c.SetOut(c.ErrOrStderr())
			c.Help()
			return usagef("%swant a subcommand: %s", where(c), subcommandList(c))
		}
		if args[0] == "help" {
			if len(args) == 1 {
				return c.Help()
			}
			return helpOn(c, args[1:])
		}
		return unknownSubcommand(c, args[0], "subcommand")
	}
}

// helpRunE replaces cobra's help command, which answers an unknown topic
// with the root's usage and exit 0.
func helpRunE(c *cobra.Command, args []string) error {
	return helpOn(c.Root(), args)
}

// helpOn shows the help of the command args name below c.
func helpOn(c *cobra.Command, args []string) error {
	target, rest, err := c.Find(args)
	if err != nil || len(rest) > 0 {
		return usagef("help: unknown help topic %q; run 'bcmtest help' for the commands", strings.Join(args, " "))
	}
	return target.Help()
}

func unknownSubcommand(c *cobra.Command, arg, what string) error {
	var names []string
	for _, s := range c.Commands() {
		if s.IsAvailableCommand() {
			names = append(names, s.Name())
		}
	}
	hint := ""
	if sug := c.SuggestionsFor(arg); len(sug) > 0 {
		hint = "; did you mean " + strings.Join(sug, " or ") + "?"
	}
	return usagef("%sunknown %s %q (want %s)%s", where(c), what, arg, strings.Join(names, ", "), hint)
}

// decorateCompletion gives cobra's completion command examples and a
// usage error for an unknown shell (it would otherwise print help, exit 0).
func decorateCompletion(c *cobra.Command) {
	c.Example = "  bcmtest completion bash > /etc/bash_completion.d/bcmtest\n  bcmtest completion zsh > \"${fpath[1]}/_bcmtest\"\n  bcmtest completion fish > ~/.config/fish/completions/bcmtest.fish"
	var shells []string
	for _, name := range []string{"bash", "zsh", "fish", "powershell"} {
		if s, _, err := c.Find([]string{name}); err == nil && s != c {
			shells = append(shells, name)
		}
	}
	for _, s := range c.Commands() {
		switch s.Name() {
		case "bash":
			s.Example = "  bcmtest completion bash > /etc/bash_completion.d/bcmtest  # every new shell\n  source <(bcmtest completion bash)                         # this shell"
		case "zsh":
			s.Example = "  bcmtest completion zsh > \"${fpath[1]}/_bcmtest\""
		case "fish":
			s.Example = "  bcmtest completion fish > ~/.config/fish/completions/bcmtest.fish"
		case "powershell":
			s.Example = "  bcmtest completion powershell | Out-String | Invoke-Expression"
		}
	}
	want := strings.Join(shells[:len(shells)-1], ", ") + " or " + shells[len(shells)-1]
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			c.SetOut(c.ErrOrStderr())
			c.Help()
			return usagef("completion: want SHELL: %s", want)
		}
		if args[0] == "help" {
			return c.Help()
		}
		return usagef("completion: SHELL %q: must be %s", args[0], want)
	}
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "version",
		Short:             "Print bcmtest's version",
		Example:           "  bcmtest version\n  bcmtest --version",
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(c *cobra.Command, args []string) error {
			fmt.Fprintf(a.stdout, "bcmtest %s\n", version)
			return nil
		},
	}
}

// subcommandList names c's subcommands as a user reads them ("build, key
// or list"), taken from the tree so a new one is never left out.
func subcommandList(c *cobra.Command) string {
	var names []string
	for _, sub := range c.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
