// Package bench measures the provider and cluster harness on real VMs and
// prints numbers (run with `make bench`; BCMTEST_INTEGRATION=1 required).
// Times are wall clock on this host; every ratio compares runs made in the
// same process, one after another, so the host's load affects both sides.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/fixtures"
	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
	"github.com/BitcoinCacheMachine/bcmtest/suites/framework"
)

func dirs(b *testing.B) state.Dirs {
	b.Helper()
	if os.Getenv("BCMTEST_INTEGRATION") != "1" {
		b.Skip("boots real VMs; set BCMTEST_INTEGRATION=1 (make bench)")
	}
	d, err := state.Default()
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// newProvider returns a qemu provider; cold boots every VM cold.
func newProvider(b *testing.B, d state.Dirs, cold bool) *qemu.Provider {
	b.Helper()
	p, err := qemu.New(qemu.Config{Dirs: d, Log: os.Stderr, NoSnapshot: cold})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	if _, err := p.Image(b.Context()); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkImage reports the warm image lookup, and the cold build into a
// scratch cache when BCMTEST_BENCH_COLD=1 (minutes; not measured otherwise).
func BenchmarkImage(b *testing.B) {
	d := dirs(b)
	p := newProvider(b, d, true)
	if os.Getenv("BCMTEST_BENCH_COLD") == "1" {
		s := image.Store{Dir: filepath.Join(b.TempDir(), "images"), Progress: os.Stderr}
		t := time.Now()
		img, err := s.Get(b.Context(), p.Recipe())
		if err != nil {
			b.Fatal(err)
		}
		cold := time.Since(t)
		b.ReportMetric(cold.Seconds(), "cold-build-s")
		fmt.Printf("image: cold build %s\n", cold.Round(time.Second))
		for _, st := range img.Manifest.Stages {
			b.ReportMetric(st.Took.Seconds(), "cold-"+strings.ReplaceAll(st.Stage, " ", "-")+"-s")
		}
		fmt.Printf("image: cold build by stage: %s\n", image.StageTimes(img.Manifest.Stages))
	} else {
		fmt.Println("image: cold build not measured (set BCMTEST_BENCH_COLD=1)")
	}
	b.ResetTimer()
	var warm time.Duration
	for i := 0; i < b.N; i++ {
		t := time.Now()
		if _, err := p.Image(b.Context()); err != nil {
			b.Fatal(err)
		}
		warm += time.Since(t)
	}
	b.ReportMetric(float64(warm.Microseconds())/float64(b.N), "warm-lookup-us")
	fmt.Printf("image: warm lookup %s\n", (warm / time.Duration(b.N)).Round(time.Microsecond))
}

// scratchCache is a cache directory that shares the real one's images and
// apt cache but has no snapshots, so a snapshot is made, and timed, anew.
func scratchCache(b *testing.B, d state.Dirs) state.Dirs {
	b.Helper()
	tmp := b.TempDir()
	for _, sub := range []string{"images", "apt"} {
		if err := os.MkdirAll(filepath.Join(d.Cache, sub), 0o700); err != nil {
			b.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(d.Cache, sub), filepath.Join(tmp, sub)); err != nil {
			b.Fatal(err)
		}
	}
	return state.Dirs{State: d.State, Cache: tmp}
}

// BenchmarkSnapshot reports how long making one shape's booted snapshot
// takes (once per shape; later lookups take microseconds).
func BenchmarkSnapshot(b *testing.B) {
	d := dirs(b)
	p := newProvider(b, scratchCache(b, d), false)
	in := provider.LaunchInput{Name: "bench-snap", CPUs: 1, MemoryMiB: 1536, DiskGiB: 12, UserData: minimalUserData}
	t := time.Now()
	if err := p.Prepare(b.Context(), in); err != nil {
		b.Fatal(err)
	}
	made := time.Since(t)
	t = time.Now()
	if err := p.Prepare(b.Context(), in); err != nil {
		b.Fatal(err)
	}
	lookup := time.Since(t)
	snaps, err := p.Snapshots()
	if err != nil || len(snaps) != 1 {
		b.Fatalf("snapshots after Prepare: %v, %v", snaps, err)
	}
	b.ReportMetric(made.Seconds(), "snapshot-create-s")
	b.ReportMetric(float64(snaps[0].Manifest.SizeBytes)/(1<<20), "snapshot-MiB")
	fmt.Printf("snapshot (1 vCPU, 1536 MiB): made in %s (%.0f MiB), then found in %s\n",
		made.Round(100*time.Millisecond), float64(snaps[0].Manifest.SizeBytes)/(1<<20), lookup.Round(time.Millisecond))
}

// minimalUserData is a cloud-config that installs nothing: boot and
// cloud-init alone, the number the provider itself is responsible for.
var minimalUserData = []byte("#cloud-config\nwrite_files:\n  - path: /var/lib/bcmtest/marker\n    content: ready\n")

// bootTimes launches one VM and returns launch-to-cloud-init-done and
// qemu-start-to-cloud-init's-first-stage (init-local) start.
func bootTimes(b *testing.B, p *qemu.Provider, name string, ud []byte) (done, firstStage time.Duration) {
	b.Helper()
	ctx := b.Context()
	b.Cleanup(func() { p.Delete(context.Background(), name) })
	t := time.Now()
	if _, err := p.Launch(ctx, provider.LaunchInput{Name: name, CPUs: 2, MemoryMiB: 1536, DiskGiB: 10, UserData: ud}); err != nil {
		b.Fatal(err)
	}
	done = time.Since(t)
	started, err := p.StartedAt(name)
	if err != nil {
		b.Fatal(err)
	}
	out, err := provider.Run(ctx, p, name, "cat", "/run/cloud-init/status.json")
	if err != nil {
		b.Fatal(err)
	}
	var st struct {
		V1 struct {
			InitLocal struct {
				Start float64 `json:"start"`
			} `json:"init-local"`
		} `json:"v1"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.V1.InitLocal.Start == 0 {
		b.Fatalf("no init-local start in cloud-init's status on %s: %v", name, err)
	}
	// The guest clock is the host's (set from the RTC), so the guest's
	// stage start and the host's qemu start compare directly.
	firstStage = time.Unix(0, int64(st.V1.InitLocal.Start*1e9)).Sub(started)
	return done, firstStage
}

// longestAptFetch runs `apt-get update` in the VM, stamping each line, and
// returns the longest gap before a fetch line (Get/Hit/Ign/Err): the
// longest single fetch through the cache; and the whole update, from its
// start to its last line.
func longestAptFetch(b *testing.B, p *qemu.Provider, name string) (longest time.Duration, which string, whole time.Duration) {
	b.Helper()
	out, err := provider.Run(b.Context(), p, name, "sh", "-c",
		`start=$(date +%s.%N); echo "$start START"; apt-get update 2>&1 | while IFS= read -r l; do echo "$(date +%s.%N) $l"; done`)
	if err != nil {
		b.Fatal(err)
	}
	var prev, first, last float64
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		ts, rest, _ := strings.Cut(l, " ")
		t, err := strconv.ParseFloat(ts, 64)
		if err != nil {
			continue
		}
		if rest == "START" {
			first = t
		}
		last = t
		if prev != 0 && (strings.HasPrefix(rest, "Get:") || strings.HasPrefix(rest, "Hit:") || strings.HasPrefix(rest, "Ign:") || strings.HasPrefix(rest, "Err:")) {
			if d := time.Duration((t - prev) * 1e9); d > longest {
				longest, which = d, rest
			}
		}
		if rest == "START" || strings.HasPrefix(rest, "Get:") || strings.HasPrefix(rest, "Hit:") || strings.HasPrefix(rest, "Ign:") || strings.HasPrefix(rest, "Err:") {
			prev = t
		}
	}
	if first == 0 {
		b.Fatalf("apt-get update in %s printed no start stamp:\n%s", name, out)
	}
	return longest, which, time.Duration((last - first) * 1e9)
}

// BenchmarkBoot compares one node restored from the booted snapshot with
// one booted cold (qemu start to cloud-init's first stage), times one VM
// with the vm-smoke fixture (apt update and jq through the cache) three
// times from the snapshot, and the longest apt fetch inside a VM once the
// cache is warm.
func BenchmarkBoot(b *testing.B) {
	d := dirs(b)
	snap := newProvider(b, d, false)
	cold := newProvider(b, d, true)
	g := fmt.Sprintf("bb%d", os.Getpid()%100000)
	// Outside the clock: the accel probe, the apt cache and this shape's snapshot.
	if err := snap.Prepare(b.Context(), provider.LaunchInput{CPUs: 2, MemoryMiB: 1536}); err != nil {
		b.Fatal(err)
	}
	_, restoreFirst := bootTimes(b, snap, g+"r", minimalUserData)
	_, coldFirst := bootTimes(b, cold, g+"c", minimalUserData)
	ratio := restoreFirst.Seconds() / coldFirst.Seconds()
	b.ReportMetric(restoreFirst.Seconds(), "restore-to-first-stage-s")
	b.ReportMetric(coldFirst.Seconds(), "cold-to-first-stage-s")
	b.ReportMetric(ratio, "restore/cold-first-stage")
	fmt.Printf("qemu start to cloud-init's first stage: restored %s, cold %s, ratio %.3f (goal <= 0.15)\n",
		restoreFirst.Round(100*time.Millisecond), coldFirst.Round(100*time.Millisecond), ratio)
	snap.Delete(context.Background(), g+"r")
	cold.Delete(context.Background(), g+"c")

	smoke := fixtures.MustRead(fixtures.VMSmoke)
	var runs []time.Duration
	for i := 0; i < 3; i++ {
		name := fmt.Sprintf("%ss%d", g, i)
		done, _ := bootTimes(b, snap, name, smoke)
		runs = append(runs, done)
		if i < 2 {
			snap.Delete(context.Background(), name)
		}
	}
	sorted := append([]time.Duration(nil), runs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	b.ReportMetric(sorted[1].Seconds(), "one-vm-smoke-median-s")
	fmt.Printf("one VM, vm-smoke fixture, launch to cloud-init done (snapshot): %v, median %s (goal <= 40s)\n",
		roundAll(runs), sorted[1].Round(100*time.Millisecond))

	last := fmt.Sprintf("%ss2", g)
	longest, which, whole := longestAptFetch(b, snap, last) // the cache is warm from cloud-init's own update
	b.ReportMetric(longest.Seconds(), "longest-apt-fetch-s")
	b.ReportMetric(whole.Seconds(), "apt-update-s")
	fmt.Printf("longest single apt fetch inside a VM, warm cache: %s (%s) (goal <= 2s)\n", longest.Round(10*time.Millisecond), which)
	fmt.Printf("whole apt-get update inside that VM: %s (goal <= 5s)\n", whole.Round(10*time.Millisecond))
}

func roundAll(ds []time.Duration) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Round(100*time.Millisecond).String())
	}
	return out
}

func up(b *testing.B, p provider.Provider, d state.Dirs, name string, members, parallel int) cluster.Timings {
	b.Helper()
	c, err := cluster.Up(b.Context(), cluster.Spec{
		Name: name, Members: members, CPUs: 1, Memory: "1536M", Disk: "12G", PoolSize: "2G", MaxParallel: parallel,
		CloudInit: fixtures.MustRead(fixtures.BCMDebian), Provider: p, StateDir: d.State, Log: os.Stderr,
	})
	if err != nil {
		b.Fatal(err)
	}
	t := c.Timings()
	if err := c.Destroy(context.Background()); err != nil {
		b.Fatal(err)
	}
	return t
}

// bringUp is Up's time without the image phase: the image and a shape's
// snapshot are made once and then found in the cache.
func bringUp(t cluster.Timings) time.Duration { return t.Total - t.Image }

// BenchmarkCluster brings up clusters of 1+0, 1+1 and 1+2 nodes restored
// from snapshots and booted cold, alternating, and reports ready times,
// the snapshot/cold ratio at 1+1 and the seconds each extra member adds.
// It also brings 1+2 up from snapshots with one launch at a time, to
// compare launch concurrency.
func BenchmarkCluster(b *testing.B) {
	d := dirs(b)
	snap := newProvider(b, d, false)
	cold := newProvider(b, d, true)
	if err := snap.Prepare(b.Context(), provider.LaunchInput{CPUs: 1, MemoryMiB: 1536}); err != nil {
		b.Fatal(err)
	}
	base := fmt.Sprintf("bc%d", os.Getpid()%100000)
	times := map[string]time.Duration{}
	for _, m := range []int{0, 1, 2} {
		for _, side := range []struct {
			name string
			p    *qemu.Provider
		}{{"cold", cold}, {"snap", snap}} {
			t := up(b, side.p, d, fmt.Sprintf("%s%s%d", base, side.name[:1], m), m, 0)
			key := fmt.Sprintf("%s-%dm", side.name, m)
			times[key] = bringUp(t)
			b.ReportMetric(times[key].Seconds(), "ready-"+key+"-s")
			fmt.Printf("cluster 1+%d, %s: %s\n", m, side.name, t)
		}
	}
	r11 := times["snap-1m"].Seconds() / times["cold-1m"].Seconds()
	perSnap := (times["snap-2m"] - times["snap-0m"]) / 2
	perCold := (times["cold-2m"] - times["cold-0m"]) / 2
	rPer := perSnap.Seconds() / perCold.Seconds()
	b.ReportMetric(r11, "ready-1+1-snap/cold")
	b.ReportMetric(perSnap.Seconds(), "per-member-snap-s")
	b.ReportMetric(perCold.Seconds(), "per-member-cold-s")
	b.ReportMetric(rPer, "per-member-snap/cold")
	fmt.Printf("cluster ready 1+1: snapshot %s, cold %s, ratio %.2f (goal <= 0.6)\n",
		times["snap-1m"].Round(time.Second), times["cold-1m"].Round(time.Second), r11)
	fmt.Printf("seconds each extra member adds (1+0 vs 1+2): snapshot %.1f, cold %.1f, ratio %.2f (goal <= 0.5)\n",
		perSnap.Seconds(), perCold.Seconds(), rPer)

	seq := bringUp(up(b, snap, d, base+"q2", 2, 1))
	b.ReportMetric(seq.Seconds()/times["snap-2m"].Seconds(), "one-at-a-time/concurrent-2m")
	fmt.Printf("cluster 1+2 from snapshots: all three launched at once (the default bound) %s, one at a time %s\n",
		times["snap-2m"].Round(time.Second), seq.Round(time.Second))
}

// BenchmarkCurrentSnapshot times one node with BCM's file (package_update,
// package_upgrade) from launch to cloud-init done, restored from a current
// snapshot and from one made before an archive update, one after the
// other. The update is simulated (framework.SimulatedUpdate's packages a
// revision older in the stale snapshot's template), since the archive
// here may have none since the image was built. Both snapshots are made
// in a scratch cache, outside the clock.
func BenchmarkCurrentSnapshot(b *testing.B) {
	d := scratchCache(b, dirs(b))
	newP := func(sim qemu.SimulatedUpdate) *qemu.Provider {
		p, err := qemu.New(qemu.Config{Dirs: d, Log: os.Stderr, Simulate: sim})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { p.Close() })
		if err := p.Prepare(b.Context(), provider.LaunchInput{CPUs: 2, MemoryMiB: 1536}); err != nil {
			b.Fatal(err)
		}
		return p
	}
	current := newP(qemu.SimulatedUpdate{})
	stale := newP(qemu.SimulatedUpdate{Packages: framework.SimulatedUpdate, Stale: true})
	g := fmt.Sprintf("bs%d", os.Getpid()%100000)
	bcm := fixtures.MustRead(fixtures.BCMDebian)
	cur, _ := bootTimes(b, current, g+"c", bcm)
	current.Delete(context.Background(), g+"c")
	old, _ := bootTimes(b, stale, g+"s", bcm)
	stale.Delete(context.Background(), g+"s")
	b.ReportMetric(cur.Seconds(), "bcm-current-snapshot-s")
	b.ReportMetric(old.Seconds(), "bcm-stale-snapshot-s")
	b.ReportMetric(old.Seconds()/cur.Seconds(), "stale/current")
	fmt.Printf("one node, BCM's file, launch to cloud-init done: current snapshot %s, snapshot from before an update of %s %s (%.2fx)\n",
		cur.Round(100*time.Millisecond), strings.Join(framework.SimulatedUpdate, ", "), old.Round(100*time.Millisecond), old.Seconds()/cur.Seconds())
}
