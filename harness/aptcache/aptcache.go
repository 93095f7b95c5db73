// Package aptcache runs a private apt-cacher-ng on loopback for the VMs of
// one harness process. VMs reach it only through a QEMU guest forward, so a
// cloud-init file's packages really come from Debian's archive, and repeated
// runs are served from the cache directory.
package aptcache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

// Cache is a running apt-cacher-ng: this process's own (Start), or a
// handle on its state directory's shared one (Shared).
type Cache struct {
	Port int
	Dir  string
	cmd  *exec.Cmd
	lock *state.Lock
	done chan struct{}
	// waits are the named intervals: apt-cache-start bounds the wait for
	// the daemon to answer, process-exit its SIGTERM before SIGKILL.
	waits wait.Intervals
	// user is this handle's hold on the shared cache (nil for a private
	// one); stateDir is where the shared cache's record lives.
	user     *os.File
	stateDir string
}

// Mirror is the upstream the cache fetches from.
const Mirror = "http://deb.debian.org/debian/"

// slots bounds how many harness processes each get their own cache dir.
const slots = 8

// Start runs apt-cacher-ng with its own config, cache and log directories
// under root (one of several slots, so concurrent runs never share a cache
// directory) on an ephemeral 127.0.0.1 port, and waits until it answers
// (waits' apt-cache-start; zero waits take the defaults).
func Start(ctx context.Context, root string, log io.Writer, waits wait.Intervals) (*Cache, error) {
	bin, err := binary()
	if err != nil {
		return nil, err
	}
	lock, dir, err := takeSlot(root)
	if err != nil {
		return nil, fmt.Errorf("starting the apt cache: %w", err)
	}
	c := &Cache{Dir: dir, lock: lock, done: make(chan struct{}), waits: waits.WithDefaults()}
	if err := c.start(ctx, bin, log, daemon{}); err != nil {
		lock.Unlock()
		return nil, err
	}
	return c, nil
}

// binary finds apt-cacher-ng.
func binary() (string, error) {
	bin, err := exec.LookPath("apt-cacher-ng")
	if err == nil {
		return bin, nil
	}
	if _, serr := os.Stat("/usr/sbin/apt-cacher-ng"); serr == nil {
		return "/usr/sbin/apt-cacher-ng", nil
	}
	return "", errors.New("starting the apt cache: apt-cacher-ng not found (install package apt-cacher-ng; run `make deps`)")
}

// daemon says how start runs apt-cacher-ng: by default as this process's
// child, ended with it; detached, in a session of its own that outlives
// this process, holding slot (its slot's lock) for as long as it runs.
type daemon struct {
	detached bool
	slot     *os.File
	// port is tried first when free (the port a shared cache had, which
	// running VMs forward to); 0 picks any.
	port int
}

// SlotsBusyError says other processes hold every cache slot under Root.
type SlotsBusyError struct {
	Root  string
	Slots int
}

func (e *SlotsBusyError) Error() string {
	return fmt.Sprintf("all %d cache slots under %s are in use; try again when another run has finished", e.Slots, e.Root)
}

// takeSlot locks the first free slot under root. Only a slot another
// process holds is skipped: any other failure (the root is not a
// directory, no permission) is the error, since every slot would meet it.
func takeSlot(root string) (*state.Lock, string, error) {
	for i := 0; i < slots; i++ {
		dir := filepath.Join(root, "slot-"+strconv.Itoa(i))
		lock, err := state.TryLock(dir + ".lock")
		if err == nil {
			return lock, dir, nil
		}
		if !errors.Is(err, state.ErrLocked) {
			return nil, "", fmt.Errorf("locking cache slot %s: %w", dir, err)
		}
	}
	return nil, "", &SlotsBusyError{Root: root, Slots: slots}
}

// probeClient asks a cache whether it answers without keeping the
// connection: an idle connection the daemon holds would leave its port
// busy for a while after the daemon ends, when a replacement wants it.
var probeClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// portFree says whether port can be bound on 127.0.0.1 now.
func portFree(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// freePort picks a free port below 32768: apt-cacher-ng cannot bind ports
// above that ("Error resolving address for binding"), and the kernel hands
// out ephemeral ports from 32768 up.
func freePort() (int, error) {
	for i := 0; i < 200; i++ {
		port := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		l.Close()
		return port, nil
	}
	return 0, errors.New("no free port in 20000-31999")
}

func (c *Cache) start(ctx context.Context, bin string, log io.Writer, how daemon) error {
	conf, cacheDir, logDir := filepath.Join(c.Dir, "conf"), filepath.Join(c.Dir, "cache"), filepath.Join(c.Dir, "log")
	for _, d := range []string{conf, cacheDir, logDir} {
		if err := state.MkdirPrivate(d); err != nil {
			return err
		}
	}
	port := how.port
	if port == 0 || !portFree(port) {
		var err error
		if port, err = freePort(); err != nil {
			return fmt.Errorf("starting the apt cache: finding a free port: %w", err)
		}
	}
	c.Port = port
	acng := config(cacheDir, logDir, filepath.Join(c.Dir, "socket"), filepath.Join(c.Dir, "pid"), port)
	if err := os.WriteFile(filepath.Join(conf, "acng.conf"), []byte(acng), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(conf, "backends_debian"), []byte(Mirror+"\n"), 0o644); err != nil {
		return err
	}
	cmd := exec.Command(bin, "-c", conf, "ForeGround=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if how.detached {
		// Its own session (so its process group is its pid), no death
		// signal: it outlives this process, and holds its slot's lock.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		cmd.ExtraFiles = []*os.File{how.slot}
	}
	lf, err := os.OpenFile(filepath.Join(c.Dir, "daemon.log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("starting apt-cacher-ng: %w", err)
	}
	c.cmd = cmd
	go func() { cmd.Wait(); lf.Close(); close(c.done) }()
	url := fmt.Sprintf("http://127.0.0.1:%d/acng-report.html", port)
	err = wait.For(ctx, c.waits.AptCacheStart, func(ctx context.Context) (bool, string, error) {
		select {
		case <-c.done:
			b, _ := os.ReadFile(filepath.Join(c.Dir, "daemon.log"))
			return false, "", fmt.Errorf("apt-cacher-ng exited at start: %s", b)
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := probeClient.Do(req)
		if err != nil {
			return false, err.Error(), nil
		}
		resp.Body.Close()
		return resp.StatusCode < 500, resp.Status, nil
	})
	if err != nil {
		c.kill()
		return fmt.Errorf("starting the apt cache on 127.0.0.1:%d: %w", port, err)
	}
	if log != nil {
		fmt.Fprintf(log, "apt cache: apt-cacher-ng on 127.0.0.1:%d, cache %s\n", port, cacheDir)
	}
	return nil
}

// config is the daemon's whole configuration. VMs reach the cache, so it
// must not be a way off the machine: ForceManaged refuses every host that no
// Remap line names (only Debian's archive and its security suite are
// named), and a PassThroughPattern that matches no host:port refuses every
// CONNECT tunnel. The report page answers the harness's readiness probe.
func config(cacheDir, logDir, socket, pidFile string, port int) string {
	return fmt.Sprintf(`CacheDir: %s
LogDir: %s
SupportDir: /usr/lib/apt-cacher-ng
Port: %d
BindAddress: 127.0.0.1
SocketPath: %s
PidFile: %s
Remap-debrep: file:deb_mirror*.gz /debian ; file:backends_debian
Remap-secdeb: security.debian.org security.debian.org/debian-security deb.debian.org/debian-security /debian-security ; deb.debian.org/debian-security
ForceManaged: 1
PassThroughPattern: ^$
ReportPage: acng-report.html
ExThreshold: 4
`, cacheDir, logDir, port, socket, pidFile)
}

// Stop terminates the daemon and releases the slot. Safe to call twice.
// A handle on the shared cache only lets go of it (see Release).
func (c *Cache) Stop() error {
	if c == nil {
		return nil
	}
	if c.stateDir != "" {
		c.letGo()
		return nil
	}
	c.kill()
	c.lock.Unlock()
	return nil
}

// kill ends the daemon this process started, SIGTERM to its process group
// and SIGKILL after process-exit, and reaps it.
func (c *Cache) kill() {
	if c.cmd != nil && c.cmd.Process != nil {
		syscall.Kill(-c.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(c.waits.ProcessExit.Timeout):
			syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
			<-c.done
		}
		c.cmd = nil
	}
}
