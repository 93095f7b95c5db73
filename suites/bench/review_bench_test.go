package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/fixtures"
	"github.com/BitcoinCacheMachine/bcmtest/harness/inventory"
)

// BenchmarkCloudInitDiff reports the wall time of `bcmtest cloudinit diff`
// of a file against itself next to `cloudinit check` of the same file, one
// after the other in this process: two nodes booted at once from the
// snapshot should cost little more than one (the issue asks for <= 1.3).
func BenchmarkCloudInitDiff(b *testing.B) {
	dirs(b)
	tmp := b.TempDir()
	bin := filepath.Join(tmp, "bcmtest")
	if out, err := exec.CommandContext(b.Context(), "go", "build", "-o", bin, "github.com/BitcoinCacheMachine/bcmtest/cmd/bcmtest").CombinedOutput(); err != nil {
		b.Fatalf("building bcmtest: %v\n%s", err, out)
	}
	file := filepath.Join(tmp, "vm-smoke.yaml")
	if err := os.WriteFile(file, fixtures.MustRead(fixtures.VMSmoke), 0o644); err != nil {
		b.Fatal(err)
	}
	run := func(args ...string) time.Duration {
		cmd := exec.CommandContext(b.Context(), bin, args...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		t := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("bcmtest %v: %v", args, err)
		}
		return time.Since(t)
	}
	// The diff's nodes have 1 vCPU each on a host of fewer than 4 cores (two
	// 2-vCPU guests under software emulation take turns on 2 cores); check's
	// node has 2. check at the diff's node shape says how much of the diff's
	// time is its second node and collector rather than the smaller node.
	small := []string{"--cpus", "1", "--memory", "1536M"}
	// A first check of each shape makes its snapshot, so no measured run
	// pays for one.
	run("cloudinit", "check", file)
	run(append([]string{"cloudinit", "check"}, append(small, file)...)...)
	check := run("cloudinit", "check", file)
	checkSmall := run(append([]string{"cloudinit", "check"}, append(small, file)...)...)
	diff := run("cloudinit", "diff", "--out", filepath.Join(tmp, "diff"), file, file)
	// Where the diff's time after the boots goes: the collector's own
	// per-section times on one node.
	if raw, err := os.ReadFile(filepath.Join(tmp, "diff", "new.collector.txt")); err == nil {
		fmt.Printf("collector sections on the NEW node (ms):\n%s", inventory.Sections(string(raw))["timing"])
	}
	ratio := diff.Seconds() / check.Seconds()
	ratioSmall := diff.Seconds() / checkSmall.Seconds()
	b.ReportMetric(check.Seconds(), "check-s")
	b.ReportMetric(checkSmall.Seconds(), "check-1vcpu-s")
	b.ReportMetric(diff.Seconds(), "diff-s")
	b.ReportMetric(ratio, "diff/check")
	b.ReportMetric(ratioSmall, "diff/check-1vcpu")
	fmt.Printf("cloudinit check %s (2 vCPU), cloudinit diff %s (its default shape on this %d-core host): ratio %.2f (target <= 1.3)\n",
		check.Round(time.Second), diff.Round(time.Second), runtime.NumCPU(), ratio)
	fmt.Printf("cloudinit check --cpus 1 --memory 1536M %s: diff against it %.2f\n", checkSmall.Round(time.Second), ratioSmall)
}
