package aptcache

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

func TestConfigAllowsOnlyDebianAndNoTunnels(t *testing.T) {
	c := config("/c", "/l", "/s", "/p", 3142)
	for _, want := range []string{"ForceManaged: 1", "PassThroughPattern: ^$", "BindAddress: 127.0.0.1", "Port: 3142"} {
		if !strings.Contains(c, want+"\n") {
			t.Errorf("config lacks %q:\n%s", want, c)
		}
	}
}

// startCache runs the real apt-cacher-ng with the harness's configuration,
// or skips where it is not installed (make deps installs it).
func startCache(t *testing.T) *Cache {
	t.Helper()
	if _, err := exec.LookPath("apt-cacher-ng"); err != nil {
		if _, err := exec.LookPath("/usr/sbin/apt-cacher-ng"); err != nil {
			t.Skip("apt-cacher-ng not installed")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Start(ctx, t.TempDir(), nil, wait.Intervals{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	return c
}

// TestCacheIsNoWayOffTheMachine asks the cache, as a VM would, for an
// apt-like file on a server that is not Debian's archive, and for a CONNECT
// tunnel to it: the cache must refuse both, and the server must see nothing.
func TestCacheIsNoWayOffTheMachine(t *testing.T) {
	var hits atomic.Int32
	// Port 80: apt-cacher-ng only forwards to port 80 unless told otherwise,
	// so that is where an escape would go. Binding it needs root.
	l, err := net.Listen("tcp", "127.0.0.1:80")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.1:80 for the test server: %v", err)
	}
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprintln(w, "leaked")
	}))
	srv.Listener.Close()
	srv.Listener = l
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	c := startCache(t)
	proxy := fmt.Sprintf("127.0.0.1:%d", c.Port)
	for _, target := range []string{"http://localhost/exfil-DATA/x.deb", "http://127.0.0.1/exfil-DATA/x.deb", "http://localhost/debian/dists/bookworm/InRelease"} {
		if status := proxyGet(t, proxy, target); status < 400 {
			t.Errorf("GET %s through the cache: status %d, want a refusal", target, status)
		}
	}
	for _, target := range []string{"localhost:80", "127.0.0.1:80"} {
		if status := proxyConnect(t, proxy, target); status == 200 {
			t.Errorf("CONNECT %s through the cache: status 200, want a refusal", target)
		}
	}
	if hits.Load() != 0 || conns.Load() != 0 {
		t.Errorf("the test server saw %d requests and %d connection events through the cache", hits.Load(), conns.Load())
	}
}

func proxyGet(t *testing.T, proxy, target string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", proxy, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target, strings.Split(strings.TrimPrefix(target, "http://"), "/")[0])
	return readStatus(t, conn)
}

func proxyConnect(t *testing.T, proxy, hostport string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", proxy, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", hostport, hostport)
	return readStatus(t, conn)
}

func readStatus(t *testing.T, conn net.Conn) int {
	t.Helper()
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return 0 // closed without an answer: refused
	}
	var proto string
	var code int
	if _, err := fmt.Sscanf(line, "%s %d", &proto, &code); err != nil {
		t.Fatalf("unreadable status line %q", line)
	}
	return code
}

// needACNG skips where apt-cacher-ng is not installed (make deps installs it).
func needACNG(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("apt-cacher-ng"); err != nil {
		if _, err := exec.LookPath("/usr/sbin/apt-cacher-ng"); err != nil {
			t.Skip("apt-cacher-ng not installed")
		}
	}
}

// TestSlotErrorsSayWhatFailed: only slots that other processes hold are
// "in use"; a cache root that cannot hold a lock is reported as that, with
// the cause, and busy slots are told apart from it.
func TestSlotErrorsSayWhatFailed(t *testing.T) {
	needACNG(t)
	ctx := t.Context()
	// The root is a regular file: no slot can be locked, none is busy.
	root := filepath.Join(t.TempDir(), "apt")
	if err := os.WriteFile(root, []byte("not a directory\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Start(ctx, root, nil, wait.Intervals{})
	if err == nil {
		t.Fatal("Start with a file as its root succeeded")
	}
	if strings.Contains(err.Error(), "in use") || !strings.Contains(err.Error(), "locking cache slot "+root) {
		t.Errorf("error %q: want the slot it could not lock and why, not \"in use\"", err)
	}
	var busy *SlotsBusyError
	if errors.As(err, &busy) {
		t.Errorf("a root that is a file reads as busy slots: %v", err)
	}
	// Every slot held by this process: that is busy.
	root = t.TempDir()
	for i := 0; i < slots; i++ {
		l, err := state.TryLock(filepath.Join(root, fmt.Sprintf("slot-%d.lock", i)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(l.Unlock)
	}
	_, err = Start(ctx, root, nil, wait.Intervals{})
	if !errors.As(err, &busy) || busy.Slots != slots || !strings.Contains(err.Error(), fmt.Sprintf("all %d cache slots under %s are in use", slots, root)) {
		t.Errorf("all slots held: want a SlotsBusyError saying all %d are in use, got %v", slots, err)
	}
}
