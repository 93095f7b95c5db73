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
	"sync"
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

// netnsEnv marks the test binary re-run inside a network namespace of its
// own (see inOwnNetns).
const netnsEnv = "BCMTEST_APTCACHE_NETNS"

// inOwnNetns runs test again in this binary inside a user, network and
// mount namespace of its own (`unshare -rnm`, no root needed): only a
// loopback, so nothing can leave it, a port 80 of its own, and an
// /etc/hosts that names 127.0.0.1 as Debian's archive, so that whatever
// the cache would fetch upstream reaches the test server instead. It
// returns false when the namespace cannot be made here (the caller skips).
func inOwnNetns(t *testing.T, test string) bool {
	t.Helper()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Logf("unshare not found: %v", err)
		return false
	}
	hosts := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost deb.debian.org security.debian.org\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const entered = "entered its own network namespace"
	script := `ip link set lo up && mount --bind "$0" /etc/hosts && echo "` + entered + `" && exec "$@"`
	cmd := exec.CommandContext(t.Context(), "unshare", "-rnm", "sh", "-c", script, hosts,
		os.Args[0], "-test.run", "^"+test+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	out, err := cmd.CombinedOutput()
	if !strings.Contains(string(out), entered) {
		t.Logf("no network namespace of its own here (%v):\n%s", err, out)
		return false
	}
	if err != nil || !strings.Contains(string(out), "--- PASS: "+test) {
		t.Fatalf("%s in its own network namespace: %v\n%s", test, err, out)
	}
	t.Logf("%s", out)
	return true
}

// TestCacheIsNoWayOffTheMachine asks the cache, as a VM would, for an
// apt-like file on a server that is not Debian's archive, and for a CONNECT
// tunnel to it: the cache must refuse both, and the server must see
// nothing. It runs in a network namespace of its own, where the test
// server on port 80 (where apt-cacher-ng forwards) also stands in for
// Debian's archive: a request the cache remaps to the archive reaches it
// as Host deb.debian.org, one that escapes as Host localhost, and a
// refusal not at all.
func TestCacheIsNoWayOffTheMachine(t *testing.T) {
	needACNG(t)
	if os.Getenv(netnsEnv) == "" {
		if !inOwnNetns(t, "TestCacheIsNoWayOffTheMachine") {
			t.Skip("needs a network namespace of its own (unshare -rnm)")
		}
		return
	}
	var mu sync.Mutex
	var reached []string // "Host path" of every request the server saw
	l, err := net.Listen("tcp", "127.0.0.1:80")
	if err != nil {
		t.Fatalf("listening on 127.0.0.1:80 in the test's own network namespace: %v", err)
	}
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reached = append(reached, r.Host+" "+r.URL.Path)
		mu.Unlock()
		fmt.Fprintln(w, "served by the test server")
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
	seen := func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := reached
		reached = nil
		return out
	}

	c := startCache(t)
	proxy := fmt.Sprintf("127.0.0.1:%d", c.Port)
	for _, target := range []string{"http://localhost/exfil-DATA/x.deb", "http://127.0.0.1/exfil-DATA/x.deb", "http://localhost/debian/dists/bookworm/InRelease"} {
		status := proxyGet(t, proxy, target)
		got := seen()
		switch {
		case len(got) == 0 && status >= 400:
			// refused: nothing left the cache
		case len(got) == 0:
			t.Errorf("GET %s through the cache: status %d and nothing reached the server; want a refusal (4xx or 5xx)", target, status)
		case strings.HasPrefix(got[0], "deb.debian.org "):
			t.Errorf("GET %s through the cache: remapped to Debian's archive (the archive's stand-in saw %q, status %d), not refused", target, got, status)
		default:
			t.Errorf("GET %s through the cache: escaped to the named host (the server saw %q, status %d)", target, got, status)
		}
	}
	for _, target := range []string{"localhost:80", "127.0.0.1:80"} {
		if status := proxyConnect(t, proxy, target); status == 200 {
			t.Errorf("CONNECT %s through the cache: status 200, want a refusal", target)
		}
	}
	if got, n := seen(), conns.Load(); len(got) != 0 || n != 0 {
		t.Errorf("the test server saw requests %q and %d connections through the cache", got, n)
	}
	// The control: what the cache may fetch does reach the server, so the
	// silence above is the cache sending nothing, not a server it cannot
	// reach.
	if status, got := proxyGet(t, proxy, "http://deb.debian.org/debian/dists/bookworm/Release"), seen(); status != 200 ||
		len(got) != 1 || got[0] != "deb.debian.org /debian/dists/bookworm/Release" {
		t.Errorf("control: GET of Debian's archive through the cache: status %d, the archive's stand-in saw %q; want 200 and the one request", status, got)
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
