package multipass

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
)

// installScript moves a staged file into place as root with its mode set
// first, so the destination never exists with the wrong mode or owner.
// transfer writes as the default user, who cannot write root's paths.
const installScript = `set -e; trap 'rm -f -- "$1"' EXIT; mkdir -p -- "$(dirname -- "$2")"; chown root:root -- "$1"; chmod "$3" -- "$1"; mv -f -- "$1" "$2"`

// stageScript copies a file root may read into a private file the default
// user (who runs transfer's SFTP session, and sudo's SUDO_USER) can read.
const stageScript = `set -e; install -m 0600 -o "$SUDO_USER" -- "$1" "$2"`

// CopyIn writes content to path in the VM, owned by root with mode: it
// transfers a local temporary file to /tmp in the VM, then moves it into
// place with sudo.
func (p *Provider) CopyIn(ctx context.Context, name, path string, content []byte, mode uint32) error {
	if err := provider.ValidateVMName(name); err != nil {
		return err
	}
	fail := func(err error) error { return fmt.Errorf("copying into %s:%s with multipass: %w", name, path, err) }
	local, err := os.CreateTemp(p.cfg.TempDir, "copyin-*")
	if err != nil {
		return fail(err)
	}
	defer os.Remove(local.Name())
	if _, err := local.Write(content); err != nil {
		local.Close()
		return fail(err)
	}
	if err := local.Close(); err != nil {
		return fail(err)
	}
	staged := remoteTemp()
	if _, err := p.call(ctx, "transfer", local.Name(), name+":"+staged); err != nil {
		p.removeRemote(ctx, name, staged)
		return fail(err)
	}
	if err := p.script(ctx, name, "installing it as root", installScript, staged, path, strconv.FormatUint(uint64(mode), 8)); err != nil {
		return fail(err)
	}
	return nil
}

// CopyOut reads a file from the VM: root copies it to a private file in
// /tmp, transfer pulls that into a local temporary directory.
func (p *Provider) CopyOut(ctx context.Context, name, path string) ([]byte, error) {
	if err := provider.ValidateVMName(name); err != nil {
		return nil, err
	}
	fail := func(err error) error { return fmt.Errorf("copying %s:%s with multipass: %w", name, path, err) }
	staged := remoteTemp()
	defer p.removeRemote(ctx, name, staged)
	if err := p.script(ctx, name, "staging it for transfer", stageScript, path, staged); err != nil {
		return nil, fail(err)
	}
	dir, err := os.MkdirTemp(p.cfg.TempDir, "copyout-*")
	if err != nil {
		return nil, fail(err)
	}
	defer os.RemoveAll(dir)
	local := filepath.Join(dir, "file")
	if _, err := p.call(ctx, "transfer", name+":"+staged, local); err != nil {
		return nil, fail(err)
	}
	b, err := os.ReadFile(local)
	if err != nil {
		return nil, fail(err)
	}
	return b, nil
}

// script runs a shell script as root with args as $1...; its failure says
// what the step was and what the script printed, not the script itself.
func (p *Provider) script(ctx context.Context, name, step, script string, args ...string) error {
	res, err := p.Exec(ctx, name, provider.ExecInput{Argv: append([]string{"sh", "-c", script, "sh"}, args...)})
	if err != nil {
		return fmt.Errorf("%s: %w", step, err)
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("%s: exit code %d: %s", step, res.ExitCode, provider.Tail(string(res.Stderr)+string(res.Stdout), 10))
	}
	return nil
}

// removeRemote deletes a staged file, even after ctx has ended, within the
// teardown interval.
func (p *Provider) removeRemote(ctx context.Context, name, staged string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.Intervals.Teardown)
	defer cancel()
	p.Exec(cctx, name, provider.ExecInput{Argv: []string{"rm", "-f", "--", staged}})
}

// remoteTemp is a fresh path in the VM's /tmp, free of ':' which transfer
// would read as an instance name.
func remoteTemp() string {
	var b [8]byte
	rand.Read(b[:])
	return "/tmp/bcmtest-" + hex.EncodeToString(b[:])
}
