package qemu

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/leaks"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

// segmentEnd is one host-side attachment to a cluster's private segment,
// as a VM's second NIC attaches: it sends and receives whole Ethernet
// frames.
type segmentEnd interface {
	send(frame []byte) error
	// recv returns the next frame, or nil once d passes without one.
	recv(d time.Duration) ([]byte, error)
	close()
}

// mcastEnd attaches to a multicast segment exactly as QEMU's socket netdev
// does (net/socket.c): a UDP socket bound to group:port with
// SO_REUSEADDR, joined on 127.0.0.1, with multicast loop on.
type mcastEnd struct {
	conn net.PacketConn
	to   *net.UDPAddr
}

func attachMulticast(t *testing.T, port int) segmentEnd {
	t.Helper()
	group := net.ParseIP(segmentGroup).To4()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			syscall.Close(fd)
			t.Fatal(err)
		}
	}
	must(syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1))
	sa := &syscall.SockaddrInet4{Port: port}
	copy(sa.Addr[:], group)
	must(syscall.Bind(fd, sa))
	mreq := &syscall.IPMreq{}
	copy(mreq.Multiaddr[:], group)
	copy(mreq.Interface[:], net.IPv4(127, 0, 0, 1).To4())
	must(syscall.SetsockoptIPMreq(fd, syscall.IPPROTO_IP, syscall.IP_ADD_MEMBERSHIP, mreq))
	must(syscall.SetsockoptInt(fd, syscall.IPPROTO_IP, syscall.IP_MULTICAST_LOOP, 1))
	must(syscall.SetsockoptInet4Addr(fd, syscall.IPPROTO_IP, syscall.IP_MULTICAST_IF, [4]byte{127, 0, 0, 1}))
	f := os.NewFile(uintptr(fd), "mcast")
	conn, err := net.FilePacketConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	return &mcastEnd{conn: conn, to: &net.UDPAddr{IP: group, Port: port}}
}

func (m *mcastEnd) send(frame []byte) error {
	_, err := m.conn.WriteTo(frame, m.to)
	return err
}

func (m *mcastEnd) recv(d time.Duration) ([]byte, error) {
	m.conn.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 65536)
	n, _, err := m.conn.ReadFrom(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

func (m *mcastEnd) close() { m.conn.Close() }

// plugEnd attaches to a switch as QEMU's vde netdev does, through
// libvdeplug's own client (vde_plug), whose stdin and stdout carry frames
// each led by its length (2 bytes, big-endian).
type plugEnd struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	frames chan []byte
}

func attachSwitch(t *testing.T, sock string) segmentEnd {
	t.Helper()
	cmd := exec.Command("vde_plug", "vde://"+sock)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("attaching to the switch at %s: %v", sock, err)
	}
	e := &plugEnd{cmd: cmd, in: in, frames: make(chan []byte, 64)}
	go func() {
		defer close(e.frames)
		var hdr [2]byte
		for {
			if _, err := io.ReadFull(out, hdr[:]); err != nil {
				return
			}
			f := make([]byte, binary.BigEndian.Uint16(hdr[:]))
			if _, err := io.ReadFull(out, f); err != nil {
				return
			}
			e.frames <- f
		}
	}()
	return e
}

func (e *plugEnd) send(frame []byte) error {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(frame)))
	_, err := e.in.Write(append(b, frame...))
	return err
}

func (e *plugEnd) recv(d time.Duration) ([]byte, error) {
	select {
	case f, ok := <-e.frames:
		if !ok {
			return nil, errors.New("vde_plug ended")
		}
		return f, nil
	case <-time.After(d):
		return nil, nil
	}
}

func (e *plugEnd) close() {
	e.in.Close()
	e.cmd.Process.Kill()
	e.cmd.Wait()
}

// attachSegment attaches to the segment rec's VM is on.
func attachSegment(t *testing.T, p *Provider, rec *record) segmentEnd {
	t.Helper()
	var e segmentEnd
	switch s := p.segmentOf(rec); s.Kind {
	case SegmentSwitch:
		e = attachSwitch(t, s.Sock)
	default:
		e = attachMulticast(t, s.Port)
	}
	t.Cleanup(e.close)
	return e
}

// testFrame is a broadcast Ethernet frame (local experimental ethertype)
// carrying tag, so a receiver can tell this test's frames from anything
// else on the wire.
func testFrame(src byte, tag string) []byte {
	f := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, src, 0x88, 0xb5}
	return append(f, []byte(tag)...)
}

// await reads e until a frame carrying want arrives (true) or d passes;
// every frame before it that carries one of forbidden is returned.
func await(t *testing.T, e segmentEnd, want []byte, forbidden [][]byte, d time.Duration) (bool, [][]byte) {
	t.Helper()
	var seen [][]byte
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		f, err := e.recv(time.Until(deadline))
		if err != nil {
			t.Fatal(err)
		}
		if f == nil {
			break
		}
		for _, bad := range forbidden {
			if bytes.Contains(f, bad) {
				seen = append(seen, f)
			}
		}
		if want != nil && bytes.Contains(f, want) {
			return true, seen
		}
	}
	return false, seen
}

// newTestProvider is a provider on its own state directory, as another
// user or CI job on the same host has.
func newTestProvider(t *testing.T, cfg Config) *Provider {
	t.Helper()
	root := t.TempDir()
	cfg.Dirs = state.Dirs{State: filepath.Join(root, "s"), Cache: filepath.Join(root, "c")}
	p, err := New(cfg)
	if err != nil {
		t.Skipf("no qemu provider on this host: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// allocateNode reserves a node of group and its segment as Launch does
// before qemu starts, and deletes it at the end of the test.
func allocateNode(t *testing.T, p *Provider, name, group string) *record {
	t.Helper()
	rec, err := p.allocate(provider.LaunchInput{Name: name, Group: group, CPUs: 1, MemoryMiB: 512, DiskGiB: 10}, image.Image{Key: "test-image"}, AccelTCG)
	if err != nil {
		t.Fatalf("allocating %s: %v", name, err)
	}
	t.Cleanup(func() { p.Delete(context.Background(), name) })
	if err := p.ensureSegment(t.Context(), rec); err != nil {
		t.Fatalf("the segment of %s: %v", name, err)
	}
	return rec
}

// sendUntilSeen sends a frame tagged tag from one end until to receives it
// (an end may still be connecting), and returns the frames carrying one of
// forbidden that to received first.
func sendUntilSeen(t *testing.T, from, to segmentEnd, src byte, tag string, forbidden [][]byte) [][]byte {
	t.Helper()
	var seen [][]byte
	for try := 0; try < 20; try++ {
		if err := from.send(testFrame(src, tag)); err != nil {
			t.Fatal(err)
		}
		ok, bad := await(t, to, []byte(tag), forbidden, 250*time.Millisecond)
		seen = append(seen, bad...)
		if ok {
			return seen
		}
	}
	t.Fatalf("a frame tagged %q never reached its own cluster's other node", tag)
	return nil
}

// TestSegmentsOfTwoStateDirsNeverMeet: two state directories (two users,
// two CI jobs) each bring up a cluster called CLUS1 on one host. A frame
// one cluster's node puts on its segment reaches that cluster's other node
// and never the other cluster.
func TestSegmentsOfTwoStateDirsNeverMeet(t *testing.T) {
	testSegmentsNeverMeet(t, Config{Segment: SegmentSwitch})
}

// TestMulticastSegmentsOfTwoStateDirsNeverMeet: the same on the multicast
// segment kept for comparison, whose port is unique on the host.
func TestMulticastSegmentsOfTwoStateDirsNeverMeet(t *testing.T) {
	testSegmentsNeverMeet(t, Config{Segment: SegmentMulticast})
}

func testSegmentsNeverMeet(t *testing.T, cfg Config) {
	pa, pb := newTestProvider(t, cfg), newTestProvider(t, cfg)
	a0 := attachSegment(t, pa, allocateNode(t, pa, "CLUS1-00", "CLUS1"))
	a1 := attachSegment(t, pa, allocateNode(t, pa, "CLUS1-01", "CLUS1"))
	b0 := attachSegment(t, pb, allocateNode(t, pb, "CLUS1-00", "CLUS1"))
	b1 := attachSegment(t, pb, allocateNode(t, pb, "CLUS1-01", "CLUS1"))
	for _, c := range []struct {
		name                   string
		from, peer, other, oth segmentEnd
	}{{"A to B", a0, a1, b0, b1}, {"B to A", b1, b0, a1, a0}} {
		leak := []byte("sent-on-" + c.name)
		// The sender's peer receives it: the wire works and the test can
		// see a frame when there is one.
		sendUntilSeen(t, c.from, c.peer, 1, string(leak), nil)
		// Then the other cluster's own frame: it reaches its peer, and
		// nothing of the first cluster's arrived before it.
		seen := sendUntilSeen(t, c.oth, c.other, 2, "own-of-"+c.name, [][]byte{leak})
		if len(seen) > 0 {
			t.Fatalf("%s: a frame sent on one state dir's CLUS1 segment arrived on the other's (%d times): the two clusters share a wire", c.name, len(seen))
		}
	}
}

// switchLeft lists the host's processes serving group's switch in p's
// state directory, looked up on the host itself (not in the harness's
// records).
func switchLeft(p *Provider, group string) []string {
	return leaks.Processes(p.switchDir(group).sock())
}

func TestSwitchStopsWithItsClustersLastVM(t *testing.T) {
	p := newTestProvider(t, Config{Segment: SegmentSwitch})
	for _, n := range []string{"CLUS1-00", "CLUS1-01", "CLUS1-02"} {
		allocateNode(t, p, n, "CLUS1")
	}
	allocateNode(t, p, "CLUS10-00", "CLUS10")
	if len(switchLeft(p, "CLUS1")) != 1 || len(switchLeft(p, "CLUS10")) != 1 {
		t.Fatalf("want one switch per cluster, have %v and %v", switchLeft(p, "CLUS1"), switchLeft(p, "CLUS10"))
	}
	if err := p.Delete(t.Context(), "CLUS1-00"); err != nil {
		t.Fatal(err)
	}
	if len(switchLeft(p, "CLUS1")) != 1 {
		t.Fatal("the switch stopped while two of its VMs remain")
	}
	// The last two go at once, as a cluster's teardown deletes them.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, n := range []string{"CLUS1-01", "CLUS1-02"} {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = p.Delete(t.Context(), n) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if left := switchLeft(p, "CLUS1"); len(left) > 0 {
		t.Fatalf("CLUS1's switch outlived its last VM: %v", left)
	}
	if _, err := os.Stat(string(p.switchDir("CLUS1"))); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("CLUS1's switch state left: %v", err)
	}
	if len(switchLeft(p, "CLUS10")) != 1 {
		t.Error("deleting CLUS1 stopped CLUS10's switch")
	}
}

func TestDownSweepsAndTheNextLaunchStopTheSwitch(t *testing.T) {
	p := newTestProvider(t, Config{Segment: SegmentSwitch})
	stateDir := p.cfg.Dirs.State

	allocateNode(t, p, "DOWN-00", "DOWN")
	allocateNode(t, p, "DOWN-01", "DOWN")
	if _, err := cluster.Down(t.Context(), p, stateDir, "DOWN", io.Discard); err != nil {
		t.Fatal(err)
	}
	if left := switchLeft(p, "DOWN"); len(left) > 0 {
		t.Errorf("bcmtest down left the switch: %v", left)
	}

	// A run killed mid-way: its VM's owner is dead.
	rec := allocateNode(t, p, "STALE-00", "STALE")
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	rec.Owner = dead.Process.Pid
	if err := rec.save(); err != nil {
		t.Fatal(err)
	}
	removed, err := cluster.SweepStale(t.Context(), p, stateDir, io.Discard)
	if err != nil || len(removed) != 1 {
		t.Fatalf("sweep removed %v: %v", removed, err)
	}
	if left := switchLeft(p, "STALE"); len(left) > 0 {
		t.Errorf("a sweep left the switch: %v", left)
	}

	// A run killed after removing its last VM, before stopping the switch.
	rec = allocateNode(t, p, "ORPH-00", "ORPH")
	if err := os.RemoveAll(rec.Dir); err != nil {
		t.Fatal(err)
	}
	if len(switchLeft(p, "ORPH")) != 1 {
		t.Fatal("the orphan's switch is not running: the test proves nothing")
	}
	allocateNode(t, p, "NEXT-00", "NEXT")
	if left := switchLeft(p, "ORPH"); len(left) > 0 {
		t.Errorf("the next launch left a switch no VM uses: %v", left)
	}
}

func TestSegmentSettingIsChecked(t *testing.T) {
	for _, v := range []string{"", "switch", "multicast"} {
		t.Setenv(SegmentEnv, v)
		if _, err := segmentKind(""); err != nil {
			t.Errorf("%s=%q: %v", SegmentEnv, v, err)
		}
	}
	t.Setenv(SegmentEnv, "vde")
	_, err := segmentKind("")
	if err == nil || !strings.Contains(err.Error(), SegmentEnv+` "vde": must be switch`) {
		t.Errorf("a bad %s: %v", SegmentEnv, err)
	}
	if k, _ := segmentKind(SegmentMulticast); k != SegmentMulticast {
		t.Errorf("Config.Segment not used over the environment: %s", k)
	}
}

func TestSwitchPathsThatCannotWorkAreRefused(t *testing.T) {
	long := switchDir("/" + strings.Repeat("d", 100) + "/segments/CLUS1")
	if err := checkSwitchPaths(long); err == nil || !strings.Contains(err.Error(), "unix socket") {
		t.Errorf("a %d-byte socket path: %v", len(long.sock()), err)
	}
	if err := checkSwitchPaths(switchDir("/ci,cache/segments/CLUS1")); err == nil || !strings.Contains(err.Error(), "comma") {
		t.Errorf("a comma in the path: %v", err)
	}
	if err := checkSwitchPaths(switchDir("/root/.local/state/bcmtest/qemu/segments/CLUS1")); err != nil {
		t.Error(err)
	}
}

func TestAMissingSwitchIsNamedWithItsPackage(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := checkSegmentHost(SegmentSwitch)
	if err == nil || !strings.Contains(err.Error(), "vde_switch (package vde2)") || !strings.Contains(err.Error(), SegmentEnv+"="+SegmentMulticast) {
		t.Errorf("no vde_switch on PATH: %v", err)
	}
	if err := checkSegmentHost(SegmentMulticast); err != nil {
		t.Errorf("the multicast segment needs no switch: %v", err)
	}
}
