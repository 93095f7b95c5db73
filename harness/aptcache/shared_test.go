package aptcache

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/leaks"
	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

// sharedEnv makes this test binary, run as a child, open the shared cache
// of the state directory it names, print its port and, unless told to
// hold it, exit without releasing it: a `bcmtest up` that ends while its
// cluster is kept.
const sharedEnv = "BCMTEST_APTCACHE_TEST_SHARED"

func TestMain(m *testing.M) {
	if v := os.Getenv(sharedEnv); v != "" {
		parts := strings.Split(v, "|")
		c, err := Shared(context.Background(), SharedConfig{Root: parts[0], StateDir: parts[1]})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(c.Port)
		if strings.HasSuffix(v, "|hold") {
			os.Stdin.Read(make([]byte, 1))
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// inChild opens the shared cache from another process; with hold it keeps
// it open until release.
func inChild(t *testing.T, root, dir string, hold bool) (port int, release func()) {
	t.Helper()
	v := root + "|" + dir + "|"
	if hold {
		v += "hold"
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), sharedEnv+"="+v)
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	release = func() { stdin.Close(); cmd.Wait() }
	t.Cleanup(release)
	line, _ := bufio.NewReader(out).ReadString('\n')
	port, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("the child's shared cache: %q", line)
	}
	if !hold {
		release()
	}
	return port, release
}

// TestSharedCacheOutlivesItsProcessUntilUnused: the state directory's one
// cache, opened by a process that then exits (a `bcmtest up` whose cluster
// is kept), keeps answering on the same port, and every later user gets
// that port; it stops only when nothing uses it: no process holds it and
// the caller says no VM does. Then no apt-cacher-ng of it is left.
func TestSharedCacheOutlivesItsProcessUntilUnused(t *testing.T) {
	needACNG(t)
	root, dir := t.TempDir(), filepath.Join(t.TempDir(), "aptcache")
	t.Cleanup(func() { StopUnused(context.Background(), dir, false, wait.Intervals{}) })

	port, _ := inChild(t, root, dir, false)
	if !answers(t.Context(), port) {
		t.Fatalf("the cache a process opened and left stopped when it exited (port %d)", port)
	}
	if got := leaks.ProcessesWithAll("apt-cacher-ng", root); len(got) != 1 {
		t.Fatalf("apt-cacher-ng processes of this cache: %v, want one", got)
	}
	// The daemon holds its slot while it runs, after the process that
	// started it is gone: a private cache takes the next slot.
	priv, err := Start(t.Context(), root, nil, wait.Intervals{})
	if err != nil {
		t.Fatal(err)
	}
	if priv.Dir != filepath.Join(root, "slot-1") {
		t.Errorf("a private cache beside the shared one got %s, want slot-1", priv.Dir)
	}
	priv.Stop()
	c, err := Shared(t.Context(), SharedConfig{Root: root, StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != port {
		t.Errorf("a second user got port %d, want the running cache's %d", c.Port, port)
	}
	// VMs still use it: releasing the handle leaves it running.
	if err := c.Release(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	if !answers(t.Context(), port) {
		t.Fatal("released while VMs used it, the cache stopped")
	}
	// Another process holds it: no VM left, but it stays.
	if p, _ := inChild(t, root, dir, true); p != port {
		t.Errorf("the holding child got port %d, want %d", p, port)
	}
	if stopped, err := StopUnused(t.Context(), dir, false, wait.Intervals{}); err != nil || stopped || !answers(t.Context(), port) {
		t.Fatalf("StopUnused while another process holds the cache: stopped %v, %v", stopped, err)
	}
}

// TestSharedCacheStopsWhenUnused: with no VM and no process using it, the
// last release stops it, and no process of it is left.
func TestSharedCacheStopsWhenUnused(t *testing.T) {
	needACNG(t)
	root, dir := t.TempDir(), filepath.Join(t.TempDir(), "aptcache")
	port, _ := inChild(t, root, dir, false)
	c, err := Shared(t.Context(), SharedConfig{Root: root, StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != port {
		t.Errorf("port %d, want %d", c.Port, port)
	}
	if err := c.Release(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	if got := leaks.ProcessesWithAll("apt-cacher-ng", root); len(got) != 0 {
		t.Errorf("apt-cacher-ng left after the last release: %v", got)
	}
	if answers(t.Context(), port) {
		t.Errorf("port %d still answers", port)
	}
	// Its slot is free again: a private cache takes slot 0.
	priv, err := Start(t.Context(), root, nil, wait.Intervals{})
	if err != nil {
		t.Fatal(err)
	}
	defer priv.Stop()
	if priv.Dir != filepath.Join(root, "slot-0") {
		t.Errorf("the stopped shared cache did not free its slot: a new cache got %s", priv.Dir)
	}
	// Nothing running: StopUnused has nothing to do.
	if stopped, err := StopUnused(t.Context(), dir, false, wait.Intervals{}); err != nil || stopped {
		t.Errorf("StopUnused with no cache: %v, %v", stopped, err)
	}
}

// TestADeafSharedCacheIsReplaced: a recorded cache whose process runs but
// does not answer (stopped, hung) is ended and replaced on the same port,
// so VMs started earlier reach the new one and no daemon keeps a slot.
func TestADeafSharedCacheIsReplaced(t *testing.T) {
	needACNG(t)
	root, dir := t.TempDir(), filepath.Join(t.TempDir(), "aptcache")
	waits := wait.Intervals{ProcessExit: wait.Interval{Timeout: time.Second, Poll: 20 * time.Millisecond}}
	first, err := Shared(t.Context(), SharedConfig{Root: root, StateDir: dir, Waits: waits})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { StopUnused(context.Background(), dir, false, waits) })
	deaf, err := loadShared(dir)
	if err != nil || deaf.PID == 0 {
		t.Fatalf("record: %+v, %v", deaf, err)
	}
	if err := syscall.Kill(deaf.PID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	first.Stop()
	second, err := Shared(t.Context(), SharedConfig{Root: root, StateDir: dir, Waits: waits})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Stop()
	if running(deaf) {
		t.Errorf("the deaf cache %d still runs", deaf.PID)
	}
	if second.Port != first.Port || !answers(t.Context(), second.Port) {
		t.Errorf("the replacement answers %v on port %d, want port %d", answers(t.Context(), second.Port), second.Port, first.Port)
	}
	if got := leaks.ProcessesWithAll("apt-cacher-ng", root); len(got) != 1 {
		t.Errorf("apt-cacher-ng processes: %v, want the one replacement", got)
	}
}
