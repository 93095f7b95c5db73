package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

// How the host reaches an instance at its private address, as multipass's
// bridge lets it: the address is added to the host's loopback interface,
// and a detached proxy (this binary, started with argv[0] proxyArgv0 and
// envProxy=1) listens on address:8443 and forwards to the VM's 127.0.0.1
// forward of guest port 8443. Guests keep talking to each other over the
// cluster's segment (its switch's unix sockets, or multicast frames on
// 127.0.0.1), which never passes the host's IP stack, so the extra
// loopback address does not touch it.
const (
	envProxy    = "BCMTEST_STANDIN_PROXY"
	proxyArgv0  = "bcmtest-standin-proxy"
	proxySuffix = ".proxy.json"
	// proxiedPort is the guest port made reachable: LXD's API.
	proxiedPort = 8443
)

// proxyRecord is <state>/standin/NAME.proxy.json: which process serves
// which address, so stop and delete can end exactly that process.
type proxyRecord struct {
	PID    int    `json:"pid"`
	Listen string `json:"listen"`
	Target string `json:"target"`
}

func (e *env) proxyPath(name string) string { return filepath.Join(e.dir, name+proxySuffix) }

// connect makes a running instance reachable at its private address: the
// loopback address first, then a fresh proxy in place of any old one.
func (e *env) connect(ctx context.Context, name string, info provider.Info) error {
	target, ok := info.Forwards[proxiedPort]
	if !ok {
		return fmt.Errorf("the VM has no host forward for port %d", proxiedPort)
	}
	if err := e.disconnectProxy(name); err != nil {
		return err
	}
	if err := addLoopback(ctx, info.PrivateIP); err != nil {
		return err
	}
	listen := net.JoinHostPort(info.PrivateIP, strconv.Itoa(proxiedPort))
	pid, err := startProxy(name, listen, target)
	if err != nil {
		return err
	}
	if err := state.SaveJSON(e.proxyPath(name), proxyRecord{PID: pid, Listen: listen, Target: target}); err != nil {
		syscall.Kill(pid, syscall.SIGTERM)
		return err
	}
	e.tracef("%s: reachable at %s (proxy pid %d to %s)", name, listen, pid, target)
	return nil
}

// disconnect undoes connect: it ends the proxy and removes the loopback
// address it served and, if given, the VM's current private address.
func (e *env) disconnect(ctx context.Context, name, privateIP string) error {
	rec, _ := e.readProxy(name)
	err := e.disconnectProxy(name)
	ips := map[string]bool{}
	if host, _, serr := net.SplitHostPort(rec.Listen); serr == nil {
		ips[host] = true
	}
	if privateIP != "" {
		ips[privateIP] = true
	}
	for ip := range ips {
		if rerr := removeLoopback(ctx, ip); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	return err
}

func (e *env) readProxy(name string) (proxyRecord, error) {
	var rec proxyRecord
	err := state.LoadJSON(e.proxyPath(name), &rec)
	return rec, err
}

// disconnectProxy ends the instance's proxy, if it still runs, and removes
// its record.
func (e *env) disconnectProxy(name string) error {
	rec, err := e.readProxy(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil && proxyAlive(rec.PID, name) {
		syscall.Kill(rec.PID, syscall.SIGTERM)
		if !e.waitGone(rec.PID, name) {
			syscall.Kill(rec.PID, syscall.SIGKILL)
			if !e.waitGone(rec.PID, name) {
				return fmt.Errorf("the proxy of %s (pid %d) did not exit", name, rec.PID)
			}
		}
	}
	if err := os.Remove(e.proxyPath(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// waitGone waits up to the process-exit interval for a signalled proxy to
// be gone.
func (e *env) waitGone(pid int, name string) bool {
	return wait.For(context.Background(), e.intervals.ProcessExit, func(context.Context) (bool, string, error) {
		return !proxyAlive(pid, name), "proxy still running", nil
	}) == nil
}

// proxyAlive reports whether pid is the proxy of name, not a recycled pid.
// An exited proxy nobody reaped has an empty command line, so it counts as
// gone.
func proxyAlive(pid int, name string) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	argv := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	return len(argv) >= 2 && argv[0] == proxyArgv0 && argv[1] == name
}

// startProxy binds listen here, so a taken address fails this call and not
// a detached process, and hands the socket to a new session of this binary
// that outlives the call. Its stdio is /dev/null: it must not hold the
// caller's pipes open.
func startProxy(name, listen, target string) (int, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return 0, fmt.Errorf("listening on %s: %w", listen, err)
	}
	f, err := l.(*net.TCPListener).File()
	l.Close()
	if err != nil {
		return 0, err
	}
	defer f.Close()
	cmd := exec.Command(self)
	cmd.Args = []string{proxyArgv0, name, listen, target}
	cmd.Env = append(os.Environ(), envProxy+"=1")
	cmd.ExtraFiles = []*os.File{f}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting the proxy for %s: %w", listen, err)
	}
	pid := cmd.Process.Pid
	cmd.Process.Release()
	return pid, nil
}

// loopbackAddr checks that ip is a private IPv4 address, so the stand-in
// never adds or removes anything else (127.0.0.1 above all).
func loopbackAddr(ip string) (string, error) {
	a := net.ParseIP(ip)
	if a == nil || a.To4() == nil || !a.IsPrivate() || a.IsLoopback() {
		return "", fmt.Errorf("%q is not a private IPv4 address", ip)
	}
	return a.String() + "/32", nil
}

func ipCmd(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ip", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

func hasLoopback(ctx context.Context, cidr string) (bool, error) {
	out, err := ipCmd(ctx, "-4", "-o", "addr", "show", "dev", "lo")
	if err != nil {
		return false, fmt.Errorf("ip addr show dev lo: %v: %s", err, out)
	}
	for _, f := range strings.Fields(out) {
		if f == cidr {
			return true, nil
		}
	}
	return false, nil
}

// addLoopback adds ip/32 to lo; an address already there is fine.
func addLoopback(ctx context.Context, ip string) error {
	cidr, err := loopbackAddr(ip)
	if err != nil {
		return err
	}
	if ok, err := hasLoopback(ctx, cidr); err != nil || ok {
		return err
	}
	if out, err := ipCmd(ctx, "addr", "add", cidr, "dev", "lo"); err != nil && !strings.Contains(out, "File exists") {
		return fmt.Errorf("ip addr add %s dev lo (the stand-in needs root): %v: %s", cidr, err, out)
	}
	return nil
}

// removeLoopback removes ip/32 from lo; an address already gone is fine.
func removeLoopback(ctx context.Context, ip string) error {
	cidr, err := loopbackAddr(ip)
	if err != nil {
		return err
	}
	if ok, err := hasLoopback(ctx, cidr); err != nil || !ok {
		return err
	}
	if out, err := ipCmd(ctx, "addr", "del", cidr, "dev", "lo"); err != nil && !strings.Contains(out, "Cannot assign requested address") {
		return fmt.Errorf("ip addr del %s dev lo: %v: %s", cidr, err, out)
	}
	return nil
}

// runProxy is the detached proxy: args are NAME LISTEN TARGET, the
// listening socket is fd 3. It ends on SIGTERM (stop, delete), or by itself
// once the QEMU provider no longer knows the VM (deleted behind the
// stand-in's back), removing the loopback address then, since nobody else
// will.
func runProxy(args []string) int {
	if len(args) != 3 {
		fmt.Fprintln(os.Stderr, "multipass stand-in proxy: want NAME LISTEN TARGET")
		return exitCommandLine
	}
	name, listen, target := args[0], args[1], args[2]
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE)
	f := os.NewFile(3, "listener")
	l, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return exitCommandFail
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	vmGone := make(chan struct{})
	go watchVM(ctx, name, vmGone)
	go func() {
		select {
		case <-ctx.Done():
		case <-vmGone:
		}
		l.Close()
	}()
	for {
		c, err := l.Accept()
		if err != nil {
			break
		}
		go pipe(ctx, c, target)
	}
	select {
	case <-vmGone:
		if host, _, err := net.SplitHostPort(listen); err == nil {
			cctx, cancel := context.WithTimeout(context.Background(), wait.LoadOrDefault().Teardown)
			removeLoopback(cctx, host)
			cancel()
		}
		if e, err := newEnv(); err == nil {
			if rec, err := e.readProxy(name); err == nil && rec.PID == os.Getpid() {
				os.Remove(e.proxyPath(name))
			}
			e.close()
		}
	default:
	}
	return exitOK
}

// watchVM closes gone once the QEMU provider says the VM does not exist.
func watchVM(ctx context.Context, name string, gone chan<- struct{}) {
	e, err := newEnv()
	if err != nil {
		return
	}
	defer e.close()
	p, err := e.qemu()
	if err != nil {
		return
	}
	// A proxy lives as long as its VM; checking at the slowest poll is
	// soon enough to give the address back.
	t := time.NewTicker(e.intervals.PollMax)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := p.Info(ctx, name); errors.Is(err, provider.ErrNotFound) {
			close(gone)
			return
		}
	}
}

// pipe copies both ways between c and a new connection to target, passing
// each side's end of stream on (LXD's TLS needs close-notify to arrive).
func pipe(ctx context.Context, c net.Conn, target string) {
	defer c.Close()
	d := net.Dialer{Timeout: wait.LoadOrDefault().Dial.Timeout}
	u, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return
	}
	defer u.Close()
	done := make(chan struct{}, 2)
	half := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go half(u, c)
	go half(c, u)
	select {
	case <-done:
		select {
		case <-done:
		case <-ctx.Done():
		}
	case <-ctx.Done():
	}
}
