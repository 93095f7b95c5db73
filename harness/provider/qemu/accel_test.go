package qemu

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
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
	var ae *AccelError
	if !errors.As(err, &ae) || ae.Accel != AccelKVM || !strings.Contains(ae.Reason, "probed earlier this boot") {
		t.Errorf("want an *AccelError for kvm saying the probe ran earlier this boot, got %T: %v", err, err)
	}
	if !strings.Contains(err.Error(), "kvm") || !strings.Contains(err.Error(), "BCMTEST_ACCEL") {
		t.Errorf("error does not name the setting and KVM: %v", err)
	}
	if took > 2*time.Second {
		t.Errorf("forced kvm took %s to fail, want at once", took)
	}
}

// TestProbeWithoutADeviceSaysSo: no device (or one this user cannot open)
// is a reason, found without starting qemu.
func TestProbeWithoutADeviceSaysSo(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "kvm")
	start := time.Now()
	ok, why := probeKVM(context.Background(), dev, "/nonexistent/vmlinuz", "/nonexistent/initrd", wait.Interval{Timeout: time.Minute, Poll: time.Second})
	if ok || why != "no "+dev {
		t.Errorf("probe without %s: %v, %q", dev, ok, why)
	}
	if time.Since(start) > time.Second {
		t.Errorf("probe without a device took %s", time.Since(start))
	}
	if why := kvmUsable(dev); why != "no "+dev {
		t.Errorf("kvmUsable: %q", why)
	}
}

// TestForcedKVMOnThisHost boots the probe guest under KVM (a few seconds,
// set BCMTEST_INTEGRATION=1; run it under the VM lock). Where KVM works,
// forced kvm and auto both pick it and the log says so; where /dev/kvm is
// missing or nested KVM hangs the guest, forced kvm fails within the
// probe's timeout (not a boot timeout) with the reason, and auto logs
// that it falls back to tcg and why.
func TestForcedKVMOnThisHost(t *testing.T) {
	if os.Getenv("BCMTEST_INTEGRATION") != "1" {
		t.Skip("boots a probe guest: set BCMTEST_INTEGRATION=1 (and hold the VM lock)")
	}
	dirs, err := state.Default()
	if err != nil {
		t.Fatal(err)
	}
	img, err := image.Store{Dir: filepath.Join(dirs.Cache, "images")}.Lookup(image.DefaultRecipe())
	if err != nil {
		t.Fatalf("needs the VM image (bcmtest image build): %v", err)
	}
	var log bytes.Buffer
	p, err := New(Config{Dirs: state.Dirs{State: t.TempDir(), Cache: dirs.Cache}, Accel: AccelKVM, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	probe := p.cfg.Intervals.AccelProbe.Timeout
	start := time.Now()
	accel, err := p.chooseAccel(context.Background(), img.Kernel, img.Initrd)
	took := time.Since(start)
	t.Logf("forced kvm: %q, %v after %s; log: %s", accel, err, took.Round(time.Millisecond), log.String())
	works := kvmUsable(kvmDevice) == "" && err == nil
	if works {
		if accel != AccelKVM || !strings.Contains(log.String(), "accel: kvm (forced; guest kernel booted under KVM") {
			t.Errorf("KVM works: forced kvm gave %q, log %q", accel, log.String())
		}
	} else {
		var ae *AccelError
		if !errors.As(err, &ae) || ae.Reason == "" {
			t.Fatalf("forced kvm where KVM does not work: want an *AccelError with a reason, got %q, %v", accel, err)
		}
		if took > probe+10*time.Second {
			t.Errorf("forced kvm took %s to fail, want within the probe's %s", took, probe)
		}
	}
	log.Reset()
	p.cfg.Accel = AccelAuto
	accel, err = p.chooseAccel(context.Background(), img.Kernel, img.Initrd)
	if err != nil {
		t.Fatalf("auto: %v", err)
	}
	want := map[bool]string{true: "accel: kvm (guest kernel booted under KVM", false: "accel: tcg, software emulation ("}[works]
	if accel != map[bool]string{true: AccelKVM, false: AccelTCG}[works] || !strings.Contains(log.String(), want) {
		t.Errorf("auto picked %q, log %q, want a line starting %q", accel, log.String(), want)
	}
}
