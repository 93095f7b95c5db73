package qemu

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

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

// attachSegment attaches to the segment rec's VM is on.
func attachSegment(t *testing.T, p *Provider, rec *record) segmentEnd {
	t.Helper()
	e := attachMulticast(t, rec.SegmentPort)
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

// allocateNode reserves a node of group as Launch does, and deletes it at
// the end of the test.
func allocateNode(t *testing.T, p *Provider, name, group string) *record {
	t.Helper()
	rec, err := p.allocate(provider.LaunchInput{Name: name, Group: group, CPUs: 1, MemoryMiB: 512, DiskGiB: 10}, image.Image{Key: "test-image"}, AccelTCG)
	if err != nil {
		t.Fatalf("allocating %s: %v", name, err)
	}
	t.Cleanup(func() { p.Delete(t.Context(), name) })
	return rec
}

// TestSegmentsOfTwoStateDirsNeverMeet: two state directories (two users,
// two CI jobs) each bring up a cluster called CLUS1 on one host. A frame
// one cluster's node puts on its segment reaches that cluster's other node
// and never the other cluster.
func TestSegmentsOfTwoStateDirsNeverMeet(t *testing.T) {
	testSegmentsNeverMeet(t, Config{})
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
		if err := c.from.send(testFrame(1, string(leak))); err != nil {
			t.Fatal(err)
		}
		if ok, _ := await(t, c.peer, leak, nil, 5*time.Second); !ok {
			t.Fatalf("%s: a frame sent on one node's segment did not reach its own cluster's other node", c.name)
		}
		// Then the other cluster's own frame: it reaches its peer, and
		// nothing of the first cluster's arrived before it.
		mark := []byte("own-of-" + c.name)
		if err := c.oth.send(testFrame(2, string(mark))); err != nil {
			t.Fatal(err)
		}
		ok, seen := await(t, c.other, mark, [][]byte{leak}, 5*time.Second)
		if !ok {
			t.Fatalf("%s: the other cluster's segment did not carry its own frame", c.name)
		}
		if len(seen) > 0 {
			t.Fatalf("%s: a frame sent on one state dir's CLUS1 segment arrived on the other's (%d times): the two clusters share a wire", c.name, len(seen))
		}
	}
}
