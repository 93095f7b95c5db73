package progress

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
)

// clock is a test clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 2, 3, 15, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// plain is a plain-mode Progress on a buffer; lines returns what it printed
// since the last call.
type plain struct {
	*Progress
	buf  *bytes.Buffer
	seen int
	c    *clock
}

func newPlain(t *testing.T) *plain {
	t.Helper()
	c := newClock()
	var buf bytes.Buffer
	p := New(&buf, Options{Mode: Plain, Now: c.Now})
	t.Cleanup(p.Close)
	return &plain{Progress: p, buf: &buf, c: c}
}

func (p *plain) lines() []string {
	s := p.buf.String()[p.seen:]
	p.seen = p.buf.Len()
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func (p *plain) expect(t *testing.T, what string, want ...string) {
	t.Helper()
	got := p.lines()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s: printed\n  %s\nwant\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func ev(node string, ph cluster.Phase, elapsed time.Duration) cluster.Event {
	return cluster.Event{Cluster: "CLUS1", Node: node, Phase: ph, Elapsed: elapsed}
}

func TestPlainLinesFollowAClusterUp(t *testing.T) {
	p := newPlain(t)
	p.Expect("CLUS1", []string{"CLUS1-00", "CLUS1-01"})
	p.expect(t, "expecting prints nothing")

	p.Cluster(ev("", cluster.PhaseImage, 0))
	p.expect(t, "image", "15:04:05 CLUS1: image (0s)")
	p.c.add(2 * time.Second)
	p.Cluster(ev("CLUS1-00", cluster.PhaseLaunching, 2*time.Second))
	p.Boot("CLUS1-00", provider.BootQEMUStarted)
	p.c.add(3 * time.Second)
	p.Boot("CLUS1-00", provider.BootKernel)
	p.Cluster(ev("CLUS1-01", cluster.PhaseLaunching, 5*time.Second))
	p.expect(t, "launches",
		"15:04:07 CLUS1-00: launching (0s)",
		"15:04:07 CLUS1-00: qemu started (0s)",
		"15:04:10 CLUS1-00: kernel (3s)",
		"15:04:10 CLUS1-01: launching (0s)")

	p.c.add(59 * time.Second)
	p.Boot("CLUS1-00", provider.BootModulesFinal)
	p.Boot("CLUS1-00", provider.BootSSH) // late: no step back
	p.Boot("CLUS1-00", provider.BootDone)
	p.Cluster(ev("CLUS1-00", cluster.PhaseBooted, 64*time.Second)) // the same as cloud-init done
	p.Cluster(ev("CLUS1-00", cluster.PhaseBootstrapping, 64*time.Second))
	p.expect(t, "node 00 boots and bootstraps",
		"15:05:09 CLUS1-00: cloud-init modules-final (1m02s)",
		"15:05:09 CLUS1-00: cloud-init done (1m02s)",
		"15:05:09 CLUS1-00: bootstrapping (1m02s)")

	p.c.add(10 * time.Second)
	p.Cluster(ev("CLUS1-01", cluster.PhaseBooted, 74*time.Second)) // no OnPhase (multipass)
	p.Cluster(ev("CLUS1-01", cluster.PhaseJoining, 74*time.Second))
	p.c.add(20 * time.Second)
	p.Cluster(ev("CLUS1-01", cluster.PhaseJoined, 94*time.Second))
	p.Cluster(ev("", cluster.PhaseReadiness, 94*time.Second))
	p.c.add(5 * time.Second)
	p.Cluster(ev("", cluster.PhaseReady, 99*time.Second))
	p.expect(t, "formation",
		"15:05:19 CLUS1-01: cloud-init done (1m09s)",
		"15:05:19 CLUS1-00: bootstrapped (1m12s)",
		"15:05:19 CLUS1-01: joining (1m09s)",
		"15:05:39 CLUS1-01: joined (1m29s)",
		"15:05:39 CLUS1: readiness (1m34s)",
		"15:05:44 CLUS1: ready (1m39s)")

	// Done is done: nothing after, and no "still in" lines.
	p.c.add(time.Hour)
	p.Boot("CLUS1-01", provider.BootDone)
	p.Tick()
	p.expect(t, "after ready")
}

func TestPlainStillInAtMostOncePerQuietPeriod(t *testing.T) {
	p := newPlain(t)
	p.Launching("cicheck-1")
	p.Boot("cicheck-1", provider.BootModulesFinal)
	p.expect(t, "start", "15:04:05 cicheck-1: launching (0s)", "15:04:05 cicheck-1: cloud-init modules-final (0s)")

	for _, step := range []struct {
		by   time.Duration
		want []string
	}{
		{29 * time.Second, nil},
		{time.Second, []string{"15:04:35 cicheck-1: still in cloud-init modules-final (30s)"}},
		{time.Second, nil}, // a tick again right after: nothing
		{15 * time.Second, nil},
		{14 * time.Second, []string{"15:05:05 cicheck-1: still in cloud-init modules-final (1m00s)"}},
		{45 * time.Second, []string{"15:05:50 cicheck-1: still in cloud-init modules-final (1m45s)"}},
	} {
		p.c.add(step.by)
		p.Tick()
		p.Tick()
		p.expect(t, "tick after "+step.by.String(), step.want...)
	}

	// A phase change restarts the quiet period.
	p.c.add(20 * time.Second)
	p.Boot("cicheck-1", provider.BootDone)
	p.c.add(20 * time.Second)
	p.Tick()
	p.expect(t, "phase change", "15:06:10 cicheck-1: cloud-init done (2m05s)")
	p.c.add(10 * time.Second)
	p.Tick()
	p.expect(t, "30s after the change", "15:06:40 cicheck-1: still in cloud-init done (2m35s)")
}

func TestPlainClusterIsStillOnlyWhenNothingElseRuns(t *testing.T) {
	p := newPlain(t)
	p.Cluster(ev("", cluster.PhaseImage, 0))
	p.ImageStage(image.Stage{Stage: "apt-get update"})
	p.lines()
	p.c.add(30 * time.Second)
	p.Tick()
	p.expect(t, "image building", "15:04:35 image: still in apt-get update (30s)")

	p.Write([]byte("image 3f2a: built in 31s (kernel 6.1.0-28-amd64)\n"))
	p.c.add(30 * time.Second)
	p.Tick()
	p.expect(t, "image built, cluster still in image",
		"15:04:35 image 3f2a: built in 31s (kernel 6.1.0-28-amd64)",
		"15:05:05 CLUS1: still in image (1m00s)")
}

func TestPlainImageBuild(t *testing.T) {
	p := newPlain(t)
	// What the image store writes: its own lines and mmdebstrap's stages.
	p.Write([]byte("image 3f2a: building Debian bookworm image with mmdebstrap (takes minutes)\n"))
	var mm image.MmdebstrapParser
	step := func(d time.Duration, lines ...string) {
		p.c.add(d)
		for _, l := range lines {
			if s, ok := mm.Line(l); ok {
				p.ImageStage(s)
			}
		}
	}
	step(time.Second, "I: automatically chosen mode: root", "I: running apt-get update...")
	step(4*time.Second, "I: installing remaining packages inside the chroot...", "0 upgraded, 2 newly installed, 0 to remove and 0 not upgraded.",
		"Unpacking lxd (5.0.2-5) ...")
	p.c.add(30 * time.Second)
	p.Tick()
	step(time.Second, "Unpacking zfsutils-linux (2.1.11-1+deb12u1) ...", "Setting up lxd (5.0.2-5) ...")
	p.Write([]byte("image 3f2a: unpacking root tree (3m31s)\n"))
	p.c.add(10 * time.Second)
	p.Write([]byte("15:05:00 image 3f2a: writing 8 GiB ext4 root filesystem (3m40s)\n"))
	p.Write([]byte("image 3f2a: built in 4m2s"))
	p.Write([]byte(" (kernel 6.1.0-28-amd64)\n"))
	p.expect(t, "image build",
		"15:04:05 image 3f2a: building Debian bookworm image with mmdebstrap (takes minutes)",
		"15:04:06 image: bootstrap: apt-get update (1s)",
		"15:04:10 image: packages: installing remaining packages (5s)",
		"15:04:40 image: still in packages: installing remaining packages, 1/2 unpacked, 0/2 set up (35s)",
		"15:04:41 image: packing: unpacking root tree (36s)",
		"15:04:51 image: packing: writing 8 GiB ext4 root filesystem (46s)",
		"15:04:51 image 3f2a: built in 4m2s (kernel 6.1.0-28-amd64)")
}

func TestPlainLogLinesAreStampedOnce(t *testing.T) {
	p := newPlain(t)
	p.Write([]byte("provider: qemu (auto)\n09:10:11 CLUS1-00: qemu started, cold boot\npartial"))
	p.expect(t, "log", "15:04:05 provider: qemu (auto)", "09:10:11 CLUS1-00: qemu started, cold boot")
	p.Close()
	p.expect(t, "close prints the partial line", "15:04:05 partial")
	p.Write([]byte("after close\n"))
	p.Boot("x", provider.BootDone)
	p.expect(t, "after close", "15:04:05 after close")
}

func TestBarsTakeEventsWithoutPanicking(t *testing.T) {
	c := newClock()
	var buf bytes.Buffer
	p := New(&buf, Options{Mode: Bars, Now: c.Now, Width: 120})
	if !p.Bars() {
		t.Fatal("Mode Bars draws no bars")
	}
	p.Expect("CLUS1", []string{"CLUS1-00", "CLUS1-01"})
	p.Write([]byte("image 3f2a: building Debian bookworm image with mmdebstrap (takes minutes)\n"))
	p.ImageStage(image.Stage{Stage: "installing remaining packages", Total: 3, Unpacked: 1})
	p.Write([]byte("image 3f2a: built in 4m2s (kernel 6.1.0-28-amd64)\n"))
	p.Cluster(ev("", cluster.PhaseImage, 0))
	for _, n := range []string{"CLUS1-00", "CLUS1-01"} {
		p.Cluster(ev(n, cluster.PhaseLaunching, 0))
		for _, ph := range []provider.BootPhase{provider.BootQEMUStarted, provider.BootKernel, provider.BootSystemd, provider.BootSeedPresent,
			provider.BootInitLocal, provider.BootInit, provider.BootSSH, provider.BootModulesConfig, provider.BootModulesFinal, provider.BootDone} {
			c.add(time.Second)
			p.Boot(n, ph)
		}
		p.Cluster(ev(n, cluster.PhaseBooted, 0))
	}
	p.Write([]byte("CLUS1: bootstrapped CLUS1-00 in 20s\n"))
	p.Cluster(ev("CLUS1-00", cluster.PhaseBootstrapping, 0))
	p.Cluster(ev("CLUS1-01", cluster.PhaseJoining, 0))
	p.Tick() // no lines on bars
	p.Close()
	p.Close()
	p.Write([]byte("after the bars\n"))
	out := buf.String()
	for _, w := range []string{"CLUS1-00", "CLUS1-01", "CLUS1 ", "image", "joining", "15:04:25 CLUS1: bootstrapped CLUS1-00 in 20s", "after the bars"} {
		if !strings.Contains(out, w) {
			t.Errorf("the bars' output lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "still in") {
		t.Errorf("bars printed a still-in line:\n%s", out)
	}
}

func TestElapsed(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", -time.Second: "0s", 9400 * time.Millisecond: "9s", 62 * time.Second: "1m02s",
		time.Hour + 2*time.Minute + 3*time.Second: "1h02m03s", 59*time.Second + 600*time.Millisecond: "1m00s",
	} {
		if got := Elapsed(d); got != want {
			t.Errorf("Elapsed(%s) = %s, want %s", d, got, want)
		}
	}
}
