package sshx

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
)

func TestQuoteSurvivesAShell(t *testing.T) {
	argv := []string{"printf", "%s|", "plain", "with space", "it's", `$HOME`, "a;b", "", "*"}
	out, err := exec.Command("sh", "-c", Quote(argv)).Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := "plain|with space|it's|$HOME|a;b||*|"; string(out) != want {
		t.Errorf("got %q want %q", out, want)
	}
}

func TestLoadOrCreateKeyIsStableAndPrivate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k", "id")
	s1, auth1, err := LoadOrCreateKey(p)
	if err != nil {
		t.Fatal(err)
	}
	_, auth2, err := LoadOrCreateKey(p)
	if err != nil || auth1 != auth2 || !strings.HasPrefix(auth1, "ssh-ed25519 ") || s1 == nil {
		t.Errorf("%v %q %q", err, auth1, auth2)
	}
	out, _ := exec.Command("stat", "-c", "%a", p).Output()
	if strings.TrimSpace(string(out)) != "600" {
		t.Errorf("key mode %s", out)
	}
}

// floodServer accepts one SSH connection on a loopback listener and answers
// every exec with endless stdout (never an exit status). written is closed
// once the first output has gone out.
func floodServer(t *testing.T) (addr string, signer ssh.Signer, written chan struct{}) {
	t.Helper()
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostKey, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}
	_, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err = ssh.NewSignerFromKey(clientPriv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) { return nil, nil }}
	cfg.AddHostKey(hostKey)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	written = make(chan struct{})
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_, chans, reqs, err := ssh.NewServerConn(conn, cfg)
		if err != nil {
			return
		}
		go ssh.DiscardRequests(reqs)
		for nc := range chans {
			ch, creqs, err := nc.Accept()
			if err != nil {
				return
			}
			go func() {
				for r := range creqs {
					r.Reply(r.Type == "exec", nil)
					if r.Type != "exec" {
						continue
					}
					go func() {
						line := []byte(strings.Repeat("x", 1023) + "\n")
						for i := 0; ; i++ {
							if _, err := ch.Write(line); err != nil {
								return
							}
							if i == 0 {
								close(written)
							}
						}
					}()
				}
			}()
		}
	}()
	return ln.Addr().String(), signer, written
}

func TestRunReturnsOutputItOwnsOnCancel(t *testing.T) {
	addr, signer, written := floodServer(t)
	c, _, err := Dial(t.Context(), addr, "root", signer, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-written
		cancel()
	}()
	stdout, _, code, err := Run(ctx, c, "flood", nil)
	if !errors.Is(err, context.Canceled) || code != -1 {
		t.Fatalf("code %d, err %v", code, err)
	}
	// The session may still be delivering output; what Run returned must
	// be Run's caller's alone (the race detector checks).
	for i, b := range stdout {
		want := byte('x')
		if i%1024 == 1023 {
			want = '\n'
		}
		if b != want {
			t.Fatalf("byte %d of the output = %q, want %q", i, b, want)
		}
	}
}

func TestDialFailuresAreUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	_, signer, _ := floodServer(t)
	_, _, err = Dial(t.Context(), addr, "root", signer, "")
	var de *DialError
	if !errors.As(err, &de) || de.Addr != addr || !errors.Is(err, provider.ErrUnreachable) {
		t.Fatalf("refused: %v", err)
	}

	// A server that accepts and never speaks: ctx ends the handshake.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		c, err := silent.Accept()
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c)
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, _, err = Dial(ctx, silent.Addr().String(), "root", signer, "")
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, provider.ErrUnreachable) {
		t.Fatalf("silent server: %v", err)
	}
}
