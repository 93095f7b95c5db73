package qemu

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

// Accel choices. AccelAuto probes KVM and falls back to TCG.
const (
	AccelAuto = "auto"
	AccelKVM  = "kvm"
	AccelTCG  = "tcg"
)

// probeKVM boots the image's kernel under KVM for a few seconds and reports
// whether it got past real-mode setup. /dev/kvm existing proves nothing on
// nested hosts, where guests hang right after "Probing EDD".
func probeKVM(ctx context.Context, kernel, initrd string, probe wait.Interval) (bool, string) {
	if _, err := os.Stat("/dev/kvm"); err != nil {
		return false, "no /dev/kvm"
	}
	ctx, cancel := context.WithTimeout(ctx, probe.Timeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, qemuBinary, "-accel", "kvm", "-m", "256", "-nodefaults", "-no-user-config",
		"-display", "none", "-serial", "stdio", "-no-reboot", "-kernel", kernel, "-initrd", initrd,
		"-append", "console=ttyS0 earlyprintk=ttyS0 panic=-1")
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return false, err.Error()
	}
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(probe.Poll)
	defer tick.Stop()
	for {
		select {
		case <-done:
			if strings.Contains(out.String(), "Linux version") {
				return true, "guest kernel booted under KVM"
			}
			return false, "qemu exited under KVM: " + lastLine(out.String())
		case <-tick.C:
			if strings.Contains(out.String(), "Linux version") {
				cmd.Process.Kill()
				<-done
				return true, "guest kernel booted under KVM"
			}
		case <-ctx.Done():
			<-done
			return false, "guest printed no kernel banner under KVM within 15s (nested KVM hang)"
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// chooseAccel resolves the accel, caching the probe per host boot.
func (p *Provider) chooseAccel(ctx context.Context, kernel, initrd string) (string, error) {
	p.accelMu.Lock() // one probe, even when VMs launch at once
	defer p.accelMu.Unlock()
	switch p.cfg.Accel {
	case AccelKVM, AccelTCG:
		return p.cfg.Accel, nil
	case AccelAuto, "":
	default:
		return "", fmt.Errorf("accel %q: must be auto, kvm or tcg", p.cfg.Accel)
	}
	boot, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	cache := filepath.Join(p.root, "accel-probe")
	key := strings.TrimSpace(string(boot)) + " " + filepath.Base(filepath.Dir(kernel))
	if b, err := os.ReadFile(cache); err == nil {
		if f := strings.SplitN(string(b), "\n", 2); len(f) == 2 && f[0] == key {
			return strings.TrimSpace(f[1]), nil
		}
	}
	ok, why := probeKVM(ctx, kernel, initrd, p.cfg.Intervals.AccelProbe)
	accel := AccelTCG
	if ok {
		accel = AccelKVM
	}
	p.logf("accel: %s (%s)", accel, why)
	os.WriteFile(cache, []byte(key+"\n"+accel+"\n"), 0o600)
	return accel, nil
}
