package multipass

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
)

// result is one finished run of the client, whatever its exit code.
type result struct {
	stdout, stderr []byte
	code           int
}

// run executes the client with args. A non-zero exit is not an error here;
// errors are only the client not starting or ctx ending.
func (p *Provider) run(ctx context.Context, stdin io.Reader, args ...string) (result, error) {
	cmd := exec.CommandContext(ctx, p.cfg.Binary, args...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errb
	// A cancelled client may keep its pipes open a moment (an exec'd
	// remote command can outlive it); process-exit bounds that.
	cmd.WaitDelay = p.cfg.Intervals.ProcessExit.Timeout
	err := cmd.Run()
	res := result{stdout: out.Bytes(), stderr: errb.Bytes()}
	if err != nil && ctx.Err() != nil {
		return res, fmt.Errorf("multipass %s: %w", args[0], ctx.Err())
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.Exited() {
		res.code = exit.ExitCode()
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("running %s %s: %w", p.cfg.Binary, args[0], err)
	}
	return res, nil
}

// call runs the client and turns a non-zero exit into a *CLIError.
func (p *Provider) call(ctx context.Context, args ...string) ([]byte, error) {
	res, err := p.run(ctx, nil, args...)
	if err != nil {
		return res.stdout, err
	}
	if res.code != 0 {
		stderr := res.stderr
		if len(bytes.TrimSpace(stderr)) == 0 {
			stderr = res.stdout
		}
		return res.stdout, newCLIError(args, res.code, string(stderr))
	}
	return res.stdout, nil
}
