package qemu

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

// TestForcedKVMFailsAtOnceWhereTheProbeFailed: BCMTEST_ACCEL=kvm on a host
// whose KVM probe already failed this boot is an error at once, naming
// KVM and why, instead of a VM that hangs until its boot timeout.
func TestForcedKVMFailsAtOnceWhereTheProbeFailed(t *testing.T) {
	var log bytes.Buffer
	p, err := New(Config{Dirs: state.Dirs{State: t.TempDir(), Cache: t.TempDir()}, Accel: AccelKVM, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	imgDir := filepath.Join(t.TempDir(), "bookworm-0123456789ab")
	kernel, initrd := filepath.Join(imgDir, "vmlinuz"), filepath.Join(imgDir, "initrd.img")
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		t.Skipf("no boot id: %v", err)
	}
	// What an earlier auto probe on this boot recorded: KVM did not work.
	probe := strings.TrimSpace(string(boot)) + " " + filepath.Base(imgDir) + "\n" + AccelTCG + "\n"
	if err := os.WriteFile(filepath.Join(p.root, "accel-probe"), []byte(probe), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	accel, err := p.chooseAccel(context.Background(), kernel, initrd)
	took := time.Since(start)
	if err == nil {
		t.Fatalf("forced kvm where the probe failed: got accel %q and no error", accel)
	}
	if !strings.Contains(err.Error(), "kvm") || !strings.Contains(err.Error(), "BCMTEST_ACCEL") {
		t.Errorf("error does not name the setting and KVM: %v", err)
	}
	if took > 2*time.Second {
		t.Errorf("forced kvm took %s to fail, want at once", took)
	}
}
