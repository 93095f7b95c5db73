// Package sshx runs commands in VMs over SSH with a key the harness owns,
// with context cancellation, separate stdout/stderr and the exit code.
package sshx

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
)

// LoadOrCreateKey returns the signer stored at path, creating an ed25519 key
// (mode 0600) on first use, and its authorized_keys line.
func LoadOrCreateKey(path string) (ssh.Signer, string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		_, priv, gerr := ed25519.GenerateKey(rand.Reader)
		if gerr != nil {
			return nil, "", fmt.Errorf("generating SSH key: %w", gerr)
		}
		blk, merr := ssh.MarshalPrivateKey(priv, "bcmtest harness")
		if merr != nil {
			return nil, "", fmt.Errorf("encoding SSH key: %w", merr)
		}
		b = pem.EncodeToMemory(blk)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, "", err
		}
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			return nil, "", fmt.Errorf("writing SSH key %s: %w", path, err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return nil, "", err
		}
	} else if err != nil {
		return nil, "", fmt.Errorf("reading SSH key %s: %w", path, err)
	}
	signer, err := ssh.ParsePrivateKey(b)
	if err != nil {
		return nil, "", fmt.Errorf("parsing SSH key %s: %w", path, err)
	}
	return signer, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))) + " bcmtest", nil
}

// DialError is a failure to reach or log in to a VM's SSH server. It
// matches provider.ErrUnreachable: nothing was run, and every further
// command to that VM would fail the same way.
type DialError struct {
	Addr string
	Err  error
}

func (e *DialError) Error() string { return fmt.Sprintf("dialing SSH at %s: %v", e.Addr, e.Err) }

func (e *DialError) Unwrap() error { return e.Err }

func (e *DialError) Is(target error) bool { return target == provider.ErrUnreachable }

// Dial connects and authenticates, giving up when ctx ends (callers bound
// it with the dial interval). hostKey is the pinned key in authorized_keys
// form; when empty, the first key seen is accepted and returned (trust on
// first use, on a loopback forward). Failures are *DialError.
func Dial(ctx context.Context, addr, user string, signer ssh.Signer, hostKey string) (*ssh.Client, string, error) {
	seen := ""
	cb := func(_ string, _ net.Addr, key ssh.PublicKey) error {
		got := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
		if hostKey != "" && got != hostKey {
			return fmt.Errorf("host key mismatch: expected %s, got %s", Fingerprint(hostKey), ssh.FingerprintSHA256(key))
		}
		seen = got
		return nil
	}
	cfg := &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: cb}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, "", &DialError{Addr: addr, Err: err}
	}
	// The handshake does not watch ctx; closing the connection when ctx
	// ends makes it return.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if !stop() {
		if err == nil {
			c.Close()
		}
		return nil, "", &DialError{Addr: addr, Err: ctx.Err()}
	}
	if err != nil {
		conn.Close()
		return nil, "", &DialError{Addr: addr, Err: err}
	}
	return ssh.NewClient(c, chans, reqs), seen, nil
}

// Fingerprint shortens an authorized_keys line for messages.
func Fingerprint(authorizedKey string) string {
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(authorizedKey))
	if err != nil {
		return "(unparsable key)"
	}
	return ssh.FingerprintSHA256(k)
}

// Run executes cmdline in a new session. It returns the exit code; the error
// is only for transport failures and cancellation. On cancellation it
// returns the output so far without waiting for the session to wind down.
func Run(ctx context.Context, c *ssh.Client, cmdline string, stdin io.Reader) (stdout, stderr []byte, code int, err error) {
	s, err := c.NewSession()
	if err != nil {
		return nil, nil, -1, fmt.Errorf("opening SSH session: %w", err)
	}
	defer s.Close()
	var o, e outBuffer
	s.Stdout, s.Stderr = &o, &e
	if stdin != nil {
		s.Stdin = stdin
	}
	done := make(chan error, 1)
	if err := s.Start(cmdline); err != nil {
		return nil, nil, -1, fmt.Errorf("starting command: %w", err)
	}
	go func() { done <- s.Wait() }()
	select {
	case <-ctx.Done():
		s.Signal(ssh.SIGKILL)
		s.Close()
		// The session's copying goroutines may still be writing.
		return o.take(), e.take(), -1, ctx.Err()
	case werr := <-done:
		if werr == nil {
			return o.take(), e.take(), 0, nil
		}
		var ee *ssh.ExitError
		if errors.As(werr, &ee) {
			return o.take(), e.take(), ee.ExitStatus(), nil
		}
		return o.take(), e.take(), -1, fmt.Errorf("waiting for command: %w", werr)
	}
}

// outBuffer collects a session's output. Run may return (on cancellation)
// while the session still writes, so take hands out a copy and stops
// further writes.
type outBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	closed bool
}

func (b *outBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, io.ErrClosedPipe
	}
	return b.b.Write(p)
}

func (b *outBuffer) take() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return bytes.Clone(b.b.Bytes())
}

// Quote joins argv into one POSIX shell command line.
func Quote(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,@%+") == "" {
			q[i] = a
			continue
		}
		q[i] = "'" + strings.ReplaceAll(a, "'", `'"'"'`) + "'"
	}
	return strings.Join(q, " ")
}
