package qemu

import (
	"bytes"
	"context"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
)

// consolePoll is how often a launch looks at its VM's serial console for
// the next boot phase.
const consolePoll = time.Second

// ansiEscape matches the terminal escapes systemd colours its status with.
var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

// consolePhase maps one line of a VM's serial console to the boot phase it
// marks, if any: the kernel's banner (a cold boot only), systemd's status
// lines, the image's seed gate, and cloud-init's stage banners.
func consolePhase(line string) (provider.BootPhase, bool) {
	l := strings.TrimSpace(ansiEscape.ReplaceAllString(strings.ReplaceAll(line, "\r", ""), ""))
	if l == "" {
		return "", false
	}
	if strings.Contains(l, "Cloud-init v. ") {
		switch {
		case strings.Contains(l, "running 'init-local'"):
			return provider.BootInitLocal, true
		case strings.Contains(l, "running 'init'"):
			return provider.BootInit, true
		case strings.Contains(l, "running 'modules:config'"):
			return provider.BootModulesConfig, true
		case strings.Contains(l, "running 'modules:final'"):
			return provider.BootModulesFinal, true
		case strings.Contains(l, " finished at "):
			return provider.BootDone, true
		}
		return "", false
	}
	switch {
	case strings.Contains(l, "bcmtest-seed: seed found after restore"):
		return provider.BootSeedRestored, true
	case strings.Contains(l, "bcmtest-seed: seed present at boot"):
		return provider.BootSeedPresent, true
	case strings.Contains(l, "] Linux version ") || strings.HasPrefix(l, "Linux version "):
		return provider.BootKernel, true
	}
	// systemd, with systemd.show_status=1: its banner and unit status lines.
	// The kernel's own log lines carry a "[    1.234567] " timestamp.
	if kernelStamp.MatchString(l) {
		rest := kernelStamp.ReplaceAllString(l, "")
		if strings.HasPrefix(rest, "systemd[1]: ") {
			return provider.BootSystemd, true
		}
		return "", false
	}
	switch {
	case strings.HasPrefix(l, "[  OK  ] "), strings.HasPrefix(l, "Starting "), strings.HasPrefix(l, "Mounting "),
		strings.HasPrefix(l, "Welcome to ") && strings.HasSuffix(l, "!"):
		return provider.BootSystemd, true
	}
	return "", false
}

// kernelStamp is the printk timestamp that starts a kernel log line.
var kernelStamp = regexp.MustCompile(`^\[\s*\d+\.\d+\]\s*`)

// phaseReporter hands boot phases to a LaunchInput's OnPhase hook, in rank
// order and each at most once: the console tail and Launch itself both
// report, and a phase seen after a later one (SSH answering after
// cloud-init's next stage is already on the console) is left out.
type phaseReporter struct {
	mu   sync.Mutex
	on   func(provider.BootPhase)
	last int
}

func (r *phaseReporter) report(ph provider.BootPhase) {
	if r == nil || r.on == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if rank := ph.Rank(); rank > r.last {
		r.last = rank
		r.on(ph)
	}
}

// consoleTail follows a growing serial console file from its start,
// handing each complete line to line. A file that shrinks (qemu started
// again truncates it) is read again from its start.
type consoleTail struct {
	path    string
	off     int64
	partial []byte
	line    func(string)
}

// poll reads what was added to the file since the last poll.
func (t *consoleTail) poll() {
	fi, err := os.Stat(t.path)
	if err != nil {
		return
	}
	if fi.Size() < t.off {
		t.off, t.partial = 0, nil
	}
	if fi.Size() == t.off {
		return
	}
	f, err := os.Open(t.path)
	if err != nil {
		return
	}
	defer f.Close()
	// What was read before an error still counts; the next poll goes on.
	b, _ := io.ReadAll(io.NewSectionReader(f, t.off, fi.Size()-t.off))
	t.off += int64(len(b))
	if len(b) == 0 {
		return
	}
	buf := append(t.partial, b...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		t.line(string(buf[:i]))
		buf = buf[i+1:]
	}
	// A console line longer than this is not one the phases come from.
	if len(buf) > 64*1024 {
		buf = nil
	}
	t.partial = append([]byte(nil), buf...)
}

// watchConsole reports the boot phases the console at path shows until
// ctx is done, polling every interval. It returns a function that stops
// the watch and waits for it, so no phase is reported after it returns.
func watchConsole(ctx context.Context, path string, every time.Duration, r *phaseReporter) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	t := &consoleTail{path: path, line: func(l string) {
		if ph, ok := consolePhase(l); ok {
			r.report(ph)
		}
	}}
	go func() {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			t.poll()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}
