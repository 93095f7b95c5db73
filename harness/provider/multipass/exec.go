package multipass

import (
	"context"
	"fmt"
	"strings"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
)

// execArgs runs argv as root. multipass quotes every argument for the
// remote shell, so argv arrives intact; "--" keeps multipass and sudo from
// reading argv's options as their own.
func execArgs(name string, argv []string) []string {
	return append([]string{"exec", name, "--", "sudo", "-n", "--"}, argv...)
}

// Exec runs argv as root in the VM. multipass exits with the remote
// command's code, so a non-zero code is the command's result; only when
// multipass's own message is on stderr is it an error of Exec.
func (p *Provider) Exec(ctx context.Context, name string, in provider.ExecInput) (provider.ExecResult, error) {
	if err := provider.ValidateVMName(name); err != nil {
		return provider.ExecResult{}, err
	}
	if len(in.Argv) == 0 {
		return provider.ExecResult{}, fmt.Errorf("running a command on %s with multipass: empty command", name)
	}
	args := execArgs(name, in.Argv)
	res, err := p.run(ctx, in.Stdin, args...)
	out := provider.ExecResult{Stdout: res.stdout, Stderr: res.stderr, ExitCode: res.code}
	if err != nil {
		return out, fmt.Errorf("running %q on %s with multipass: %w", strings.Join(in.Argv, " "), name, err)
	}
	if res.code != 0 && execFailedByMultipass(res.code, string(res.stderr)) {
		return out, fmt.Errorf("running %q on %s with multipass: %w", strings.Join(in.Argv, " "), name,
			newCLIError(args, res.code, string(res.stderr)))
	}
	return out, nil
}
