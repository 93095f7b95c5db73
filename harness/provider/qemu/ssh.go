package qemu

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/sshx"
	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
	"golang.org/x/crypto/ssh"
)

// client returns a cached SSH connection to the VM, dialling when needed and
// pinning the host key seen first.
func (p *Provider) client(ctx context.Context, rec *record) (*ssh.Client, error) {
	p.mu.Lock()
	c := p.clients[rec.Name]
	p.mu.Unlock()
	if c != nil {
		if _, _, err := c.SendRequest("keepalive@bcmtest", true, nil); err == nil {
			return c, nil
		}
		c.Close()
	}
	dctx, cancel := context.WithTimeout(ctx, p.cfg.Intervals.Dial.Timeout)
	defer cancel()
	c, seen, err := sshx.Dial(dctx, fmt.Sprintf("127.0.0.1:%d", rec.SSHPort), HarnessUser, p.signer, rec.HostKey)
	if err != nil {
		return nil, err
	}
	if rec.HostKey == "" && seen != "" {
		rec.HostKey = seen
		rec.save()
	}
	p.mu.Lock()
	p.clients[rec.Name] = c
	p.mu.Unlock()
	return c, nil
}

func (p *Provider) dropClient(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.clients[name]; c != nil {
		c.Close()
		delete(p.clients, name)
	}
}

func (p *Provider) waitSSH(ctx context.Context, rec *record) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Intervals.Boot)
	defer cancel()
	// A steady pace, no back-off: a refused dial costs nothing on either
	// side (sshd starts after cloud-init's network stage), and every poll
	// skipped is time the whole launch waits.
	err := wait.Until(ctx, p.cfg.Intervals.Dial.Poll, p.cfg.Intervals.Dial.Poll, func(ctx context.Context) (bool, string, error) {
		if !rec.qemuAlive() {
			return false, "", fmt.Errorf("qemu of %s exited: %s", rec.Name, provider.Tail(readFile(rec.path("qemu.log")), 5))
		}
		if _, err := p.client(ctx, rec); err != nil {
			return false, "SSH: " + err.Error(), nil
		}
		return true, "", nil
	})
	if err != nil {
		return &provider.CloudInitError{VM: rec.Name, Status: "not reachable over SSH", Cause: err, ConsoleTail: p.consoleTail(rec, 30)}
	}
	return nil
}

// Exec runs argv as root through sudo over SSH.
func (p *Provider) Exec(ctx context.Context, name string, in provider.ExecInput) (provider.ExecResult, error) {
	rec, err := p.load(name)
	if err != nil {
		return provider.ExecResult{}, err
	}
	if len(in.Argv) == 0 {
		return provider.ExecResult{}, fmt.Errorf("exec on %s: empty command", name)
	}
	c, err := p.client(ctx, rec)
	if err != nil {
		return provider.ExecResult{}, fmt.Errorf("exec on %s: connecting over SSH: %w", name, err)
	}
	o, e, code, err := sshx.Run(ctx, c, "sudo -n -- "+sshx.Quote(in.Argv), in.Stdin)
	if err != nil {
		p.dropClient(name)
		return provider.ExecResult{Stdout: o, Stderr: e, ExitCode: code}, fmt.Errorf("exec on %s: %w", name, err)
	}
	return provider.ExecResult{Stdout: o, Stderr: e, ExitCode: code}, nil
}

// CopyIn writes content to path inside the VM with mode.
func (p *Provider) CopyIn(ctx context.Context, name, path string, content []byte, mode uint32) error {
	script := `set -e; d=$(dirname "$1"); mkdir -p "$d"; cat > "$1.bcmtest-tmp"; chmod "$2" "$1.bcmtest-tmp"; mv "$1.bcmtest-tmp" "$1"`
	_, err := provider.RunInput(ctx, p, name, bytes.NewReader(content), "sh", "-c", script, "sh", path, strconv.FormatUint(uint64(mode), 8))
	if err != nil {
		return fmt.Errorf("copying into %s:%s: %w", name, path, err)
	}
	return nil
}

// CopyOut reads a file from the VM.
func (p *Provider) CopyOut(ctx context.Context, name, path string) ([]byte, error) {
	res, err := p.Exec(ctx, name, provider.ExecInput{Argv: []string{"cat", "--", path}})
	if err != nil {
		return nil, fmt.Errorf("copying %s:%s: %w", name, path, err)
	}
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("copying %s:%s: %s", name, path, strings.TrimSpace(string(res.Stderr)))
	}
	return res.Stdout, nil
}

// ShellArgv is the ssh command line for an interactive shell on the VM,
// pinned to the host key the harness recorded.
func (p *Provider) ShellArgv(name string) ([]string, error) {
	rec, err := p.load(name)
	if err != nil {
		return nil, err
	}
	if rec.HostKey == "" {
		return nil, fmt.Errorf("ssh to %s: no host key recorded yet (has it booted?)", name)
	}
	kh := rec.path("known_hosts")
	if err := os.WriteFile(kh, []byte(fmt.Sprintf("[127.0.0.1]:%d %s\n", rec.SSHPort, rec.HostKey)), 0o600); err != nil {
		return nil, err
	}
	return []string{"ssh", "-i", filepath.Join(p.root, "id_ed25519"), "-p", strconv.Itoa(rec.SSHPort),
		"-o", "UserKnownHostsFile=" + kh, "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes",
		HarnessUser + "@127.0.0.1"}, nil
}
