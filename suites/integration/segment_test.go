package integration

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/BitcoinCacheMachine/bcmtest/fixtures"
	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
	"github.com/BitcoinCacheMachine/bcmtest/suites/framework"
)

// segmentMoves is how many times the macvlan container moves between the
// two members.
const segmentMoves = 20

// A guest kernel once stalled in virtio_net's receive path a second after
// a macvlan NIC came up on the member a container had moved to. This spec
// repeats that: a macvlan container moved back and forth between the two
// members of a 1+1 cluster while containers on both members ping it and it
// pings them, with every frame on each node's private NIC captured. It
// runs on the segment BCMTEST_SEGMENT chooses (the switch by default, or
// multicast for the comparison) and leaves each node's console, kernel
// log and capture in its artifacts.
var _ = Describe("the cluster's private segment", Label("segment"), func() {
	It(fmt.Sprintf("carries pings both ways while a macvlan container moves %d times between two members", segmentMoves), func(ctx SpecContext) {
		dirs, err := state.Default()
		Expect(err).NotTo(HaveOccurred())
		p, err := qemu.New(qemu.Config{Dirs: dirs, Log: GinkgoWriter})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(p.Close)
		kind := p.SegmentKind()
		name := runID("seg")
		art := segmentArtifacts(name, kind)
		AddReportEntry("segment", kind+"; artifacts in "+art)

		start := time.Now()
		c, err := cluster.Up(ctx, cluster.Spec{
			Name: name, Members: 1, CPUs: framework.NodeCPUs, Memory: framework.NodeMemory, Disk: "12G", PoolSize: "2G",
			CloudInit: fixtures.MustRead(fixtures.BCMDebian), CloudInitName: fixtures.BCMDebian,
			Provider: p, StateDir: dirs.State, Log: GinkgoWriter,
		})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) { Expect(c.Destroy(ctx)).To(Succeed()) }, NodeTimeout(5*time.Minute))
		members := framework.MemberNames(name, 1)
		// Registered after the teardown, so it runs before it, on success
		// and failure alike.
		DeferCleanup(func(ctx SpecContext) {
			logs := CollectNodeKernelLogs(ctx, p, members, art)
			AddReportEntry("node kernel logs", logs)
			reportKernelLinesOfNote(logs)
		}, NodeTimeout(3*time.Minute))
		if kind == qemu.SegmentSwitch {
			Expect(p.SwitchPID(name)).NotTo(BeZero(), "no segment switch runs for %s", name)
		}
		AddReportEntry("cluster up", time.Since(start).Round(time.Second).String())

		captures := map[string]string{}
		stops := map[string]func(context.Context) error{}
		for _, m := range members {
			captures[m] = filepath.Join(art, m+"-segment.pcap")
			stop, err := p.CaptureSegment(ctx, m, captures[m])
			Expect(err).NotTo(HaveOccurred())
			stops[m] = stop
			DeferCleanup(func(ctx SpecContext) { stop(ctx) })
		}

		framework.ImportInstanceImage(ctx, framework.ImportInstanceImageInput{Cluster: c, Alias: "bcm-segment"})
		framework.CreateInstanceNetwork(ctx, framework.CreateInstanceNetworkInput{Cluster: c, Name: "bcmseg0"})
		prefix := framework.RunName("sg")
		peers := []string{prefix + "-p0", prefix + "-p1"}
		mover := prefix + "-mv"
		addr := map[string]string{peers[0]: "10.78.0.10", peers[1]: "10.78.0.11", mover: "10.78.0.50"}
		framework.LaunchInstances(ctx, framework.LaunchInstancesInput{Cluster: c, Image: "bcm-segment", Network: "bcmseg0",
			Instances: []framework.InstanceSpec{
				{Name: peers[0], Target: members[0], Address: addr[peers[0]] + "/24"},
				{Name: peers[1], Target: members[1], Address: addr[peers[1]] + "/24"},
				{Name: mover, Target: members[1], Address: addr[mover] + "/24"},
			}})

		exec := func(inst string, argv ...string) framework.ExecInInstanceInput {
			return framework.ExecInInstanceInput{Cluster: c, Instance: inst, Argv: argv}
		}
		// pingBehind keeps inst pinging to in the background (twice a
		// second) while the moves go on. Retried within instance-network:
		// an exec into a container that has just started was once refused
		// ("websocket: bad handshake") after its pings had passed.
		pingBehind := func(inst, to string) {
			GinkgoHelper()
			Eventually(func() error {
				_, err := framework.RunInInstanceE(ctx, GinkgoT(), exec(inst, "sh", "-c", "ping -i 0.5 "+addr[to]+" >/dev/null 2>&1 </dev/null &"))
				return err
			}, framework.GetIntervals("instance-network")...).WithContext(ctx).Should(Succeed(), "starting %s's background ping of %s", inst, to)
		}
		reaches := func(from, to string) {
			GinkgoHelper()
			Eventually(func(g Gomega) {
				res, err := framework.ExecInInstanceE(ctx, GinkgoT(), exec(from, "ping", "-c", "1", "-W", "2", addr[to]))
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(res.ExitCode).To(Equal(0), "ping %s (%s) from %s: %s%s", addr[to], to, from, res.Stdout, res.Stderr)
			}, framework.GetIntervals("instance-network")...).WithContext(ctx).Should(Succeed(), "%s reaching %s over bcmseg0", from, to)
		}
		for _, peer := range peers {
			pingBehind(peer, mover)
		}

		var took []string
		at := members[1]
		for i := 1; i <= segmentMoves; i++ {
			to := members[0]
			if at == members[0] {
				to = members[1]
			}
			moveStart := time.Now()
			framework.SetInstanceState(ctx, GinkgoT(), framework.InstanceStateInput{Cluster: c, Instance: mover, Action: "stop"})
			Expect(framework.MoveInstanceE(ctx, GinkgoT(), framework.MoveInstanceInput{Cluster: c, Instance: mover, Target: to})).To(Succeed(), "move %d of %s to %s", i, mover, to)
			framework.SetInstanceState(ctx, GinkgoT(), framework.InstanceStateInput{Cluster: c, Instance: mover, Action: "start"})
			framework.WaitForInstance(ctx, framework.WaitForInstanceInput{Cluster: c, Instance: mover, Status: "Running", Location: to})
			for _, peer := range peers {
				reaches(mover, peer)
				reaches(peer, mover)
				pingBehind(mover, peer)
			}
			at = to
			took = append(took, fmt.Sprintf("%d: to %s in %s", i, to, time.Since(moveStart).Round(100*time.Millisecond)))
			GinkgoWriter.Printf("segment: move %d of %s to %s done after %s\n", i, mover, to, time.Since(moveStart).Round(100*time.Millisecond))
		}
		AddReportEntry("moves", strings.Join(took, "\n"))

		var summary []string
		for _, m := range members {
			Expect(stops[m](ctx)).To(Succeed())
			Expect(os.Chmod(captures[m], 0o600)).To(Succeed()) // qemu made it with its umask
			st, err := countDuplicateFrames(captures[m], 20*time.Millisecond)
			Expect(err).NotTo(HaveOccurred())
			summary = append(summary, fmt.Sprintf("%s: %d frames on its private NIC, %d of them a copy of a frame seen there in the 20 ms before", m, st.Frames, st.Duplicates))
		}
		AddReportEntry("segment capture ("+kind+")", strings.Join(summary, "\n"))
		Expect(os.WriteFile(filepath.Join(art, "segment-summary.txt"), []byte(kind+"\n"+strings.Join(summary, "\n")+"\n"+strings.Join(took, "\n")+"\n"), 0o600)).To(Succeed())

		By("checking every node's kernel for lockups, stalls and oopses after the moves")
		framework.ExpectKernelHealthy(ctx, GinkgoT(), framework.KernelHealthInput{Provider: p, Nodes: members})
	}, NodeTimeout(90*time.Minute))
})

// segmentArtifacts is the spec's own artifacts directory (0700):
// BCMTEST_ARTIFACTS, else the repository's artifacts/, then
// segment-KIND-NAME.
func segmentArtifacts(name, kind string) string {
	GinkgoHelper()
	root := os.Getenv("BCMTEST_ARTIFACTS")
	if root == "" {
		root = filepath.Join("..", "..", "artifacts")
	}
	dir, err := filepath.Abs(filepath.Join(root, "segment-"+kind+"-"+name))
	Expect(err).NotTo(HaveOccurred())
	Expect(state.MkdirPrivate(dir)).To(Succeed())
	return dir
}

// NodeKernelLog is what the spec keeps of one node's kernel: where its
// serial console is written on the host, the copy in the artifacts, and
// its kernel log as the node's journal has it.
type NodeKernelLog struct {
	Node string `json:"node"`
	// ConsolePath is the live serial console on the host; ConsoleCopy
	// its copy in the artifacts, taken before teardown.
	ConsolePath string `json:"console_path"`
	ConsoleCopy string `json:"console_copy"`
	// KernelLog is the node's `journalctl -k -b` (monotonic timestamps)
	// in the artifacts; KernelLogError says why it could not be read (a
	// node that does not answer), with the console copy still there.
	KernelLog      string `json:"kernel_log,omitempty"`
	KernelLogError string `json:"kernel_log_error,omitempty"`
}

// CollectNodeKernelLogs copies each node's serial console and kernel log
// into dir and writes dir/kernel-logs.json listing them: the input of a
// kernel health check at teardown. It never fails the spec: a node too
// stuck to answer is what the logs are for.
func CollectNodeKernelLogs(ctx context.Context, p *qemu.Provider, nodes []string, dir string) []NodeKernelLog {
	var out []NodeKernelLog
	for _, n := range nodes {
		l := NodeKernelLog{Node: n}
		if path, err := p.ConsolePath(n); err == nil {
			l.ConsolePath = path
			if b, err := os.ReadFile(path); err == nil {
				l.ConsoleCopy = filepath.Join(dir, n+"-console.log")
				os.WriteFile(l.ConsoleCopy, b, 0o600)
			}
		}
		ectx, cancel := context.WithTimeout(ctx, framework.Intervals().DiagExec.Timeout)
		res, err := p.Exec(ectx, n, provider.ExecInput{Argv: []string{"journalctl", "-k", "-b", "--no-pager", "-o", "short-monotonic"}})
		cancel()
		switch {
		case err != nil:
			l.KernelLogError = err.Error()
		case res.ExitCode != 0:
			l.KernelLogError = fmt.Sprintf("journalctl -k exited %d: %s", res.ExitCode, res.Stderr)
		default:
			l.KernelLog = filepath.Join(dir, n+"-kernel.log")
			os.WriteFile(l.KernelLog, res.Stdout, 0o600)
		}
		out = append(out, l)
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	os.WriteFile(filepath.Join(dir, "kernel-logs.json"), b, 0o600)
	return out
}

// kernelTrouble is what this spec looks out for while no health check
// runs: it only reports the lines, it does not judge them.
var kernelTrouble = regexp.MustCompile(`soft lockup|self-detected stall|rcu_preempt detected stalls|blocked for more than|Call Trace|NETDEV WATCHDOG|BUG:|Oops`)

func reportKernelLinesOfNote(logs []NodeKernelLog) {
	var lines []string
	for _, l := range logs {
		for _, f := range []string{l.ConsoleCopy, l.KernelLog} {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(b), "\n") {
				if kernelTrouble.MatchString(line) {
					lines = append(lines, l.Node+" "+filepath.Base(f)+": "+strings.TrimSpace(line))
				}
			}
		}
	}
	AddReportEntry(fmt.Sprintf("kernel lines of note (%d)", len(lines)), strings.Join(lines, "\n"))
	GinkgoWriter.Printf("kernel lines of note: %d\n%s\n", len(lines), strings.Join(lines, "\n"))
}

// frameStats counts a capture's frames and those that repeat a frame seen
// just before, byte for byte: on a segment that reflects, each frame a
// node sends comes back to it.
type frameStats struct{ Frames, Duplicates int }

// countDuplicateFrames reads a pcap file (as QEMU's filter-dump writes it:
// little-endian, microseconds) and counts frames equal to one seen within
// window before.
func countDuplicateFrames(path string, window time.Duration) (frameStats, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return frameStats{}, err
	}
	if len(b) < 24 || binary.LittleEndian.Uint32(b) != 0xa1b2c3d4 {
		return frameStats{}, fmt.Errorf("reading capture %s: not a little-endian pcap file", path)
	}
	var st frameStats
	// The frames of the last window, oldest first, and how often each is
	// among them.
	type seen struct {
		at  time.Duration
		key string
	}
	var recent []seen
	count := map[string]int{}
	for off := 24; off+16 <= len(b); {
		sec, usec := binary.LittleEndian.Uint32(b[off:]), binary.LittleEndian.Uint32(b[off+4:])
		n := int(binary.LittleEndian.Uint32(b[off+8:]))
		off += 16
		if off+n > len(b) {
			break // the last record, cut short as the capture stopped
		}
		at := time.Duration(sec)*time.Second + time.Duration(usec)*time.Microsecond
		key := string(b[off : off+n])
		off += n
		st.Frames++
		for len(recent) > 0 && at-recent[0].at > window {
			if count[recent[0].key]--; count[recent[0].key] == 0 {
				delete(count, recent[0].key)
			}
			recent = recent[1:]
		}
		if count[key] > 0 {
			st.Duplicates++
		}
		count[key]++
		recent = append(recent, seen{at, key})
	}
	return st, nil
}
