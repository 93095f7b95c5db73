// Package buildstep runs one long host command of an image build (mmdebstrap,
// tar, mkfs): in its own process group so an interrupt reaches its children,
// with its output handed over line by line, a callback on quiet stretches,
// and its last lines in the error.
package buildstep

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Step is one command to run.
type Step struct {
	Name string
	Args []string
	// OnLine receives each line of the command's output (stdout and
	// stderr); nil ignores them.
	OnLine func(line string)
	// OnQuiet is called every 15 s while the command has printed nothing
	// for that long; nil ignores quiet stretches.
	OnQuiet func()
}

// tailLines is how many of the last output lines an error carries.
const tailLines = 40

// Run executes s. Cancelling ctx sends SIGINT to the step's whole process
// group (mmdebstrap cleans up its mounts on SIGINT) and waits up to 20 s
// for it to go. A failure is "NAME: error" followed by the output's tail.
func Run(ctx context.Context, s Step) error {
	cmd := exec.CommandContext(ctx, s.Name, s.Args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C.UTF-8")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 20 * time.Second
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) }
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	var mu sync.Mutex
	var tail []string
	last := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			tail = append(tail, line)
			if len(tail) > tailLines {
				tail = tail[1:]
			}
			last = time.Now()
			mu.Unlock()
			if s.OnLine != nil {
				s.OnLine(line)
			}
		}
	}()
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(15 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				mu.Lock()
				quiet := time.Since(last) > 14*time.Second
				mu.Unlock()
				if quiet && s.OnQuiet != nil {
					s.OnQuiet()
				}
			}
		}
	}()
	err := cmd.Run()
	pw.Close()
	<-done
	close(stop)
	if err != nil {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Errorf("%s: %w\n%s", s.Name, err, strings.Join(tail, "\n"))
	}
	return nil
}

// ShellQuote makes s one word of a POSIX shell command: the build hooks and
// QEMU's exec: migration run host paths through sh, and a cache directory
// may hold spaces and quotes.
func ShellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
