// Package bench measures the provider and cluster harness on real VMs and
// prints numbers (run with `make bench`; BCMTEST_INTEGRATION=1 required).
// Times are wall clock on this host; ratios compare runs made in the same
// process so the host's load affects both sides alike.
package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/fixtures"
	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

func newProvider(b *testing.B) (*qemu.Provider, state.Dirs) {
	b.Helper()
	if os.Getenv("BCMTEST_INTEGRATION") != "1" {
		b.Skip("boots real VMs; set BCMTEST_INTEGRATION=1 (make bench)")
	}
	d, err := state.Default()
	if err != nil {
		b.Fatal(err)
	}
	p, err := qemu.New(qemu.Config{Dirs: d, Log: os.Stderr})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	return p, d
}

// BenchmarkImage reports the warm lookup and the cold build. The cold build
// is rebuilt into a scratch cache only with BCMTEST_BENCH_COLD=1 (minutes);
// otherwise it is the build time the cached image's manifest recorded.
func BenchmarkImage(b *testing.B) {
	p, _ := newProvider(b)
	img, err := p.Image(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	cold := img.Manifest.BuildTime
	if os.Getenv("BCMTEST_BENCH_COLD") == "1" {
		s := image.Store{Dir: filepath.Join(b.TempDir(), "images"), Progress: os.Stderr}
		t := time.Now()
		if _, err := s.Get(b.Context(), p.Recipe()); err != nil {
			b.Fatal(err)
		}
		cold = time.Since(t)
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
	b.ReportMetric(cold.Seconds(), "cold-build-s")
	b.ReportMetric(float64(warm.Microseconds())/float64(b.N), "warm-lookup-us")
	fmt.Printf("image %s: cold build %s, warm lookup %s\n", img.Key, cold.Round(time.Second), (warm / time.Duration(b.N)).Round(time.Microsecond))
}

// launchN launches n VMs at once and returns the slowest launch-to-
// cloud-init-done time.
func launchN(b *testing.B, p *qemu.Provider, group string, n int, ud []byte) time.Duration {
	ctx := b.Context()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var slowest time.Duration
	var info provider.Info
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("%s-%02d", group, i)
		b.Cleanup(func() { p.Delete(context.Background(), name) })
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.Now()
			inf, err := p.Launch(ctx, provider.LaunchInput{Name: name, Group: group, CPUs: 2 / n, MemoryMiB: 1536, DiskGiB: 10, UserData: ud})
			d := time.Since(t)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				b.Error(err)
			}
			info = inf
			if d > slowest {
				slowest = d
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	b.ReportMetric(0, "accel-"+info.Accel)
	return slowest
}

// minimalUserData is a cloud-config that installs nothing: boot and
// cloud-init alone, the number the provider itself is responsible for.
var minimalUserData = []byte("#cloud-config\nwrite_files:\n  - path: /var/lib/bcmtest/marker\n    content: ready\n")

// BenchmarkLaunch reports launch to cloud-init done for one VM with a
// minimal cloud-config, and with the vm-smoke fixture (apt update and jq
// through the apt cache) for one VM and for two at once (each with half
// the vCPUs). The accel probe runs before the clock starts.
func BenchmarkLaunch(b *testing.B) {
	p, _ := newProvider(b)
	if _, err := p.Image(b.Context()); err != nil {
		b.Fatal(err)
	}
	g := fmt.Sprintf("bench%d", os.Getpid()%100000)
	launchN(b, p, g+"w", 1, minimalUserData) // warm-up: accel probe, apt cache start
	minimal := launchN(b, p, g+"m", 1, minimalUserData)
	smoke := fixtures.MustRead(fixtures.VMSmoke)
	one := launchN(b, p, g+"a", 1, smoke)
	two := launchN(b, p, g+"b", 2, smoke)
	b.ReportMetric(minimal.Seconds(), "one-vm-minimal-s")
	b.ReportMetric(one.Seconds(), "one-vm-s")
	b.ReportMetric(two.Seconds(), "two-vms-s")
	fmt.Printf("launch to cloud-init done: one VM (minimal cloud-config) %s, one VM (apt update + jq) %s, two at once %s\n",
		minimal.Round(time.Second), one.Round(time.Second), two.Round(time.Second))
}

func up(b *testing.B, p provider.Provider, d state.Dirs, name string, members, parallel int) *cluster.Cluster {
	c, err := cluster.Up(b.Context(), cluster.Spec{
		Name: name, Members: members, CPUs: 1, Memory: "1536M", Disk: "12G", PoolSize: "2G", MaxParallel: parallel,
		CloudInit: fixtures.MustRead(fixtures.BCMDebian), Provider: p, StateDir: d.State, Log: os.Stderr,
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Destroy(context.Background()); err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkCluster reports cluster-ready time for 0, 1 and 2 members, and
// for 2 members the ratio of one-after-another launch (as the original
// scripts did) to concurrent launch, measured in the same run.
func BenchmarkCluster(b *testing.B) {
	p, d := newProvider(b)
	if _, err := p.Image(b.Context()); err != nil {
		b.Fatal(err)
	}
	base := fmt.Sprintf("bc%d", os.Getpid()%100000)
	var concurrent2 time.Duration
	for _, m := range []int{0, 1, 2} {
		c := up(b, p, d, fmt.Sprintf("%sm%d", base, m), m, 0)
		b.ReportMetric(c.Timings().Total.Seconds(), fmt.Sprintf("ready-%dm-s", m))
		fmt.Printf("cluster with %d member(s): %s\n", m, c.Timings())
		if m == 2 {
			concurrent2 = c.Timings().Launch
		}
	}
	seq := up(b, p, d, base+"seq", 2, 1)
	fmt.Printf("2 members launched one after another: %s\n", seq.Timings())
	ratio := seq.Timings().Launch.Seconds() / concurrent2.Seconds()
	b.ReportMetric(ratio, "sequential/concurrent-launch")
	fmt.Printf("launch phase for 3 nodes: concurrent %s, one after another %s, ratio %.2f\n",
		concurrent2.Round(time.Second), seq.Timings().Launch.Round(time.Second), ratio)
}
