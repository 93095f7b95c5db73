package qemu

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

// Segment kinds: how a cluster's private L2 segment (each VM's second NIC)
// is made. Config.Segment or BCMTEST_SEGMENT chooses.
const (
	// SegmentSwitch is one unprivileged VDE learning switch per cluster,
	// its sockets under the state directory: a frame goes only to the
	// port its destination was learned on (broadcasts to every port),
	// never back to the port it came from, and no two state directories
	// share one. The default.
	SegmentSwitch = "switch"
	// SegmentMulticast is QEMU's socket netdev in multicast mode on
	// 127.0.0.1, one UDP port per cluster: every frame is also reflected
	// to its sender (QEMU sets IP_MULTICAST_LOOP). Kept for comparison.
	SegmentMulticast = "multicast"
)

// SegmentEnv chooses the segment kind when Config.Segment is empty.
const SegmentEnv = "BCMTEST_SEGMENT"

// switchBinary is vde_switch, from Debian's vde2 (vde-switch) package.
const switchBinary = "vde_switch"

// segmentGroup is the multicast group of every multicast segment; those
// segments are kept apart by their port, one per cluster.
const segmentGroup = "230.0.0.1"

// maxSockPath is the longest unix socket path (sun_path is 108 bytes).
const maxSockPath = 107

// segmentKind returns the configured kind, or a clear error for a value
// that is neither.
func segmentKind(configured string) (string, error) {
	v, from := configured, "segment"
	if v == "" {
		v, from = os.Getenv(SegmentEnv), SegmentEnv
	}
	switch v {
	case "", SegmentSwitch:
		return SegmentSwitch, nil
	case SegmentMulticast:
		return SegmentMulticast, nil
	}
	return "", fmt.Errorf("%s %q: must be %s (one learning switch per cluster, the default) or %s (QEMU's multicast socket, which reflects every frame to its sender)",
		from, v, SegmentSwitch, SegmentMulticast)
}

// checkSegmentHost names the package for what the segment kind needs. It
// runs before a launch, not when the provider opens: `down` and sweeps
// must work on a host without it.
func checkSegmentHost(kind string) error {
	if kind != SegmentSwitch {
		return nil
	}
	if _, err := exec.LookPath(switchBinary); err != nil {
		return fmt.Errorf("the qemu provider's cluster segment needs %s (package vde2); install with `make deps`, or set %s=%s", switchBinary, SegmentEnv, SegmentMulticast)
	}
	return nil
}

// segment is what a VM's second NIC is plugged into.
type segment struct {
	Kind string // SegmentSwitch, SegmentMulticast, or "" for none
	Port int    // multicast: the UDP port
	Sock string // switch: the switch's socket directory
}

// netdev is QEMU's -netdev value for the segment. With no segment (a
// snapshot's template) the NIC is the only port of an internal hub: the
// device set is the same as a node's, and its frames go nowhere.
func (s segment) netdev(id string) string {
	switch s.Kind {
	case SegmentSwitch:
		return "vde,id=" + id + ",sock=" + qemuOpt(s.Sock)
	case SegmentMulticast:
		return fmt.Sprintf("socket,id=%s,mcast=%s:%d,localaddr=127.0.0.1", id, segmentGroup, s.Port)
	}
	return "hubport,id=" + id + ",hubid=0"
}

// segmentOf is the segment rec's VM is on. Records written before the
// switch existed name no kind: they are on multicast.
func (p *Provider) segmentOf(rec *record) segment {
	if rec.Segment == SegmentSwitch {
		return segment{Kind: SegmentSwitch, Sock: p.switchDir(rec.Group).sock()}
	}
	return segment{Kind: SegmentMulticast, Port: rec.SegmentPort}
}

// switchDir is the state of one cluster's switch: STATE/qemu/segments/GROUP
// (0700) holding the switch's socket directory, pid file, management
// socket and record.
type switchDir string

func (p *Provider) switchDir(group string) switchDir {
	return switchDir(filepath.Join(p.root, "segments", group))
}

func (d switchDir) sock() string    { return filepath.Join(string(d), "sw") }
func (d switchDir) pidFile() string { return filepath.Join(string(d), "switch.pid") }
func (d switchDir) mgmt() string    { return filepath.Join(string(d), "mgmt") }
func (d switchDir) record() string  { return filepath.Join(string(d), "switch.json") }

// switchRecord is a running switch's bookkeeping, so `down`, `down
// --stale` and sweeps (all of which delete the cluster's VMs) stop it.
type switchRecord struct {
	Group   string    `json:"group"`
	PID     int       `json:"pid"`
	Sock    string    `json:"sock"`
	Started time.Time `json:"started"`
}

// switchPID is the pid of d's switch if it runs (its command line names
// d's socket directory: a recycled pid is not it), else 0.
func (d switchDir) switchPID() int {
	b, err := os.ReadFile(d.pidFile())
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return 0
	}
	args := strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
	if filepath.Base(args[0]) != switchBinary {
		return 0
	}
	for _, a := range args {
		if a == d.sock() {
			return pid
		}
	}
	return 0
}

// checkSwitchPaths refuses a state directory whose switch sockets would
// not fit a unix socket path or would split QEMU's option.
func checkSwitchPaths(d switchDir) error {
	// The longest socket in it is a port's, "NNN.NNNNN" beside ctl.
	if n := len(d.sock()) + len("/000.00000"); n > maxSockPath {
		return fmt.Errorf("segment sockets under %s: the path is %d bytes, over the %d a unix socket allows; use a shorter BCMTEST_STATE_DIR", d.sock(), n, maxSockPath)
	}
	if strings.Contains(d.sock(), ",") {
		return fmt.Errorf("segment sockets under %s: a comma in the path would split QEMU's -netdev option; use a BCMTEST_STATE_DIR without one", d.sock())
	}
	return nil
}

// ensureSwitch starts group's switch unless it runs. The caller holds the
// allocation lock, so no Delete stops it in between.
func (p *Provider) ensureSwitch(ctx context.Context, group string) error {
	d := p.switchDir(group)
	if d.switchPID() != 0 {
		return nil
	}
	if err := checkSegmentHost(SegmentSwitch); err != nil {
		return err
	}
	if err := checkSwitchPaths(d); err != nil {
		return err
	}
	if err := state.MkdirPrivate(string(d)); err != nil {
		return fmt.Errorf("starting the switch of %s: %w", group, err)
	}
	// What a dead switch left: its sockets would only confuse the new one.
	for _, f := range []string{d.sock(), d.pidFile(), d.mgmt(), d.record()} {
		os.RemoveAll(f)
	}
	logf, err := os.OpenFile(filepath.Join(string(d), "switch.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("starting the switch of %s: %w", group, err)
	}
	defer logf.Close()
	// --daemon: it outlives this process (a kept cluster's nodes still
	// talk), in a session of its own so a terminal's Ctrl-C reaches the
	// harness, which stops it with the cluster; --rcfile /dev/null: no
	// host or user configuration changes it.
	cmd := exec.CommandContext(ctx, switchBinary, "--sock", d.sock(), "--dirmode", "0700", "--mode", "0600",
		"--mgmt", d.mgmt(), "--mgmtmode", "0600", "--rcfile", "/dev/null", "--daemon", "--pidfile", d.pidFile())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("starting the switch of %s (%s): %w: %s", group, switchBinary, err, provider.Tail(readFile(filepath.Join(string(d), "switch.log")), 5))
	}
	iv := p.cfg.Intervals.ProcessStart
	wctx, cancel := context.WithTimeout(ctx, iv.Timeout)
	defer cancel()
	err = wait.Until(wctx, iv.Poll, 10*iv.Poll, func(context.Context) (bool, string, error) {
		_, serr := os.Stat(filepath.Join(d.sock(), "ctl"))
		return d.switchPID() != 0 && serr == nil, "waiting for the switch's pid file and control socket", nil
	})
	if err != nil {
		p.stopSwitch(ctx, d)
		return fmt.Errorf("starting the switch of %s: %w: %s", group, err, provider.Tail(readFile(filepath.Join(string(d), "switch.log")), 5))
	}
	rec := switchRecord{Group: group, PID: d.switchPID(), Sock: d.sock(), Started: time.Now().UTC()}
	if err := state.SaveJSON(d.record(), rec); err != nil {
		p.stopSwitch(ctx, d)
		return fmt.Errorf("starting the switch of %s: %w", group, err)
	}
	p.logf("%s: segment switch started (pid %d, %s)", group, rec.PID, d.sock())
	return nil
}

// stopSwitch ends d's switch (SIGTERM: it removes its sockets; then
// SIGKILL) and removes d.
func (p *Provider) stopSwitch(ctx context.Context, d switchDir) error {
	iv := p.cfg.Intervals.ProcessExit
	gone := func() bool {
		wctx, cancel := context.WithTimeout(ctx, iv.Timeout)
		defer cancel()
		return wait.Until(wctx, iv.Poll, 10*iv.Poll, func(context.Context) (bool, string, error) {
			return d.switchPID() == 0, "segment switch still running", nil
		}) == nil
	}
	if pid := d.switchPID(); pid != 0 {
		syscall.Kill(pid, syscall.SIGTERM)
		if !gone() {
			syscall.Kill(pid, syscall.SIGKILL)
			if !gone() {
				return fmt.Errorf("the segment switch under %s (pid %d) did not exit", string(d), pid)
			}
		}
	}
	if err := os.RemoveAll(string(d)); err != nil {
		return fmt.Errorf("removing the segment switch's state %s: %w", string(d), err)
	}
	return nil
}

// stopUnusedSwitches stops every switch whose cluster has no VM left in
// this state directory: the last node's Delete, or a run killed between
// removing that node and stopping its switch. The caller holds the
// allocation lock, so no Launch is between recording a VM and starting
// its switch.
func (p *Provider) stopUnusedSwitches(ctx context.Context) error {
	recs, _, err := loadRecords(p.vmsDir)
	if err != nil {
		return err
	}
	used := map[string]bool{}
	for _, r := range recs {
		used[r.Group] = true
	}
	entries, err := os.ReadDir(filepath.Join(p.root, "segments"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing segment switches: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || used[e.Name()] {
			continue
		}
		d := p.switchDir(e.Name())
		pid := d.switchPID()
		if err := p.stopSwitch(ctx, d); err != nil {
			errs = append(errs, err)
		} else if pid != 0 {
			p.logf("%s: segment switch stopped (pid %d)", e.Name(), pid)
		}
	}
	return errors.Join(errs...)
}

// SwitchPID is the pid of group's segment switch, 0 when none runs.
func (p *Provider) SwitchPID(group string) int { return p.switchDir(group).switchPID() }

// SegmentKind is the kind of segment this provider gives new clusters.
func (p *Provider) SegmentKind() string { return p.cfg.Segment }

// multicastPort picks a UDP port for a group's multicast segment: stable
// for this state directory and group, and distinct from every port this
// state directory's other groups use and every UDP port bound on the host
// (another state directory's running segment), so two clusters of one
// name never share a wire while both run.
func multicastPort(stateDir, group string, used map[int]string) int {
	taken := hostUDPPorts()
	port := fnvPort(stateDir, group)
	for i := 0; i < 10000; i++ {
		g, ours := used[port]
		if (ours && g == group) || (!ours && !taken[port]) {
			return port
		}
		port = 20000 + (port-20000+1)%10000
	}
	return port
}

// fnvPort is the port a group of a state directory tries first.
func fnvPort(stateDir, group string) int {
	h := fnv.New32a()
	h.Write([]byte(stateDir + "\x00" + group))
	return 20000 + int(h.Sum32()%10000)
}

// hostUDPPorts is every local UDP port bound on the host (IPv4).
func hostUDPPorts() map[int]bool {
	out := map[int]bool{}
	f, err := os.Open("/proc/net/udp")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		_, port, ok := strings.Cut(fields[1], ":")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(port, 16, 32); err == nil {
			out[int(n)] = true
		}
	}
	return out
}

// snapLen is how much of each frame a capture keeps: the headers, and
// enough of the payload to tell two frames apart.
const snapLen = 128

// CaptureSegment records every frame node name's private NIC sends and
// receives into file (pcap, the first snapLen bytes of each) with QEMU's
// filter-dump, until the returned stop is called.
func (p *Provider) CaptureSegment(ctx context.Context, name, file string) (stop func(context.Context) error, err error) {
	id := "bcmtest-segdump"
	if err := p.qmpOn(ctx, name, "object-add", map[string]any{"qom-type": "filter-dump", "id": id, "netdev": "n1", "file": file, "queue": "all", "maxlen": snapLen}); err != nil {
		return nil, fmt.Errorf("capturing the segment of %s: %w", name, err)
	}
	return func(ctx context.Context) error {
		if err := p.qmpOn(ctx, name, "object-del", map[string]any{"id": id}); err != nil {
			return fmt.Errorf("ending the segment capture of %s: %w", name, err)
		}
		return nil
	}, nil
}

// ensureSegment makes sure rec's segment is there before its qemu starts:
// the group's switch, started under the allocation lock. It first stops
// the switches no VM uses any more (what a killed run left).
func (p *Provider) ensureSegment(ctx context.Context, rec *record) error {
	return p.withAllocateLock(func() error {
		if err := p.stopUnusedSwitches(ctx); err != nil {
			p.logf("%s: %v", rec.Name, err)
		}
		if rec.Segment != SegmentSwitch {
			return nil
		}
		return p.ensureSwitch(ctx, rec.Group)
	})
}

// withAllocateLock runs f holding the lock allocate takes: VM records and
// switches change under it.
func (p *Provider) withAllocateLock(f func() error) error {
	lock, err := state.LockFile(filepath.Join(p.root, "allocate.lock"))
	if err != nil {
		return err
	}
	defer lock.Unlock()
	return f()
}
