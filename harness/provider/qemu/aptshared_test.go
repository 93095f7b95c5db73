package qemu

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

// cacheAnswers says whether an apt cache answers on port.
func cacheAnswers(port int) bool {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/acng-report.html", port))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode < 500
}

// TestTheAptCacheLivesAsLongAsAVMOfItsStateDir: the provider's apt cache
// keeps answering after the provider that started it closed (a `bcmtest
// up` returned) while a VM of its state directory runs, for as many
// providers as open and close meanwhile (`bcmtest exec`); once no VM runs,
// the next close (`bcmtest down`) stops it.
func TestTheAptCacheLivesAsLongAsAVMOfItsStateDir(t *testing.T) {
	if err := CheckHost(); err != nil {
		t.Skip(err)
	}
	if _, err := exec.LookPath("apt-cacher-ng"); err != nil {
		if _, err := os.Stat("/usr/sbin/apt-cacher-ng"); err != nil {
			t.Skip("apt-cacher-ng not installed")
		}
	}
	dirs := state.Dirs{State: t.TempDir(), Cache: t.TempDir()}
	open := func() *Provider {
		p, err := New(Config{Dirs: dirs})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := open()
	t.Cleanup(func() { open().Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	port, err := p.ensureAptCache(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A running VM of this state directory: a process whose command line
	// holds its overlay in a -drive option, as qemu's does.
	rec := &record{Name: "KEPT-00", Group: "KEPT", Dir: filepath.Join(p.vmsDir, "KEPT-00")}
	if err := os.MkdirAll(rec.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	vm := exec.Command("sh", "-c", "read x", "file="+qemuOpt(rec.path("overlay.qcow2"))+",if=none")
	stdin, err := vm.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := vm.Start(); err != nil {
		t.Fatal(err)
	}
	stopVM := func() { stdin.Close(); vm.Wait() }
	t.Cleanup(stopVM)
	rec.PID = vm.Process.Pid
	if err := rec.save(); err != nil {
		t.Fatal(err)
	}

	p.Close()
	if !cacheAnswers(port) {
		t.Fatalf("the apt cache stopped with the provider that started it, while a VM forwarding to port %d runs", port)
	}
	q := open()
	if got, err := q.ensureAptCache(ctx); err != nil || got != port {
		t.Errorf("a later provider's cache: port %d, %v; want the running one's %d", got, err, port)
	}
	q.Close()
	open().Close()
	if !cacheAnswers(port) {
		t.Fatal("the apt cache stopped while a VM of its state directory runs")
	}

	stopVM()
	open().Close()
	if cacheAnswers(port) {
		t.Errorf("the apt cache still answers on %d after the last VM ended and the provider closed", port)
	}
}
