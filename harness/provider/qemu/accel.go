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

// kvmDevice is the device KVM needs: present, and openable read-write by
// this process (on GitHub-hosted runners only after a udev rule).
const kvmDevice = "/dev/kvm"

// AccelError is a forced accelerator the host cannot run: BCMTEST_ACCEL=kvm
// where the KVM probe failed. It is returned before any VM starts.
type AccelError struct {
	Accel  string // what was asked for
	Reason string // what the probe saw
}

func (e *AccelError) Error() string {
	return fmt.Sprintf("accel %s (BCMTEST_ACCEL=%s): KVM does not work on this host: %s; use BCMTEST_ACCEL=auto to fall back to software emulation, or tcg",
		e.Accel, e.Accel, e.Reason)
}

// kvmUsable says why dev cannot be used, or "" when it can.
func kvmUsable(dev string) string {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	switch {
	case err == nil:
		f.Close()
		return ""
	case os.IsNotExist(err):
		return "no " + dev
	case os.IsPermission(err):
		return dev + " is not usable by this user (permission denied): add a udev rule giving it mode 0666, or join its group"
	default:
		return "opening " + dev + ": " + err.Error()
	}
}

// probeKVM boots the image's kernel under KVM for a few seconds and reports
// whether it got past real-mode setup. /dev/kvm existing proves nothing on
// nested hosts, where guests hang right after "Probing EDD".
func probeKVM(ctx context.Context, dev, kernel, initrd string, probe wait.Interval) (bool, string) {
	if why := kvmUsable(dev); why != "" {
		return false, why
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
				return true, "guest kernel booted under KVM (" + dev + " usable)"
			}
			return false, "qemu exited under KVM: " + lastLine(out.String())
		case <-tick.C:
			if strings.Contains(out.String(), "Linux version") {
				cmd.Process.Kill()
				<-done
				return true, "guest kernel booted under KVM (" + dev + " usable)"
			}
		case <-ctx.Done():
			<-done
			return false, fmt.Sprintf("a probe guest printed no kernel banner under KVM within %s (nested KVM hang)", probe.Timeout)
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// chooseAccel resolves the accel. auto and kvm both rest on the KVM probe,
// cached per host boot and image: auto falls back to TCG when it fails, a
// forced kvm fails at once with an *AccelError instead of booting a VM
// that would hang until its boot timeout.
func (p *Provider) chooseAccel(ctx context.Context, kernel, initrd string) (string, error) {
	p.accelMu.Lock() // one probe, even when VMs launch at once
	defer p.accelMu.Unlock()
	switch p.cfg.Accel {
	case AccelTCG:
		return AccelTCG, nil
	case AccelKVM, AccelAuto, "":
	default:
		return "", fmt.Errorf("accel %q: must be auto, kvm or tcg", p.cfg.Accel)
	}
	ok, why := p.kvmProbe(ctx, kernel, initrd)
	if p.cfg.Accel == AccelKVM {
		if !ok {
			return "", &AccelError{Accel: AccelKVM, Reason: why}
		}
		p.logAccel("accel: kvm (forced; %s)", why)
		return AccelKVM, nil
	}
	if ok {
		p.logAccel("accel: kvm (%s)", why)
		return AccelKVM, nil
	}
	p.logAccel("accel: tcg, software emulation (%s)", why)
	return AccelTCG, nil
}

// logAccel logs the choice once per provider, not once per VM.
func (p *Provider) logAccel(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if msg != p.accelSaid {
		p.accelSaid = msg
		p.logf("%s", msg)
	}
}

// kvmProbe returns this boot's probe result for the image, probing when
// none is recorded. The record is "KEY\nACCEL\nREASON\n" under the state dir.
func (p *Provider) kvmProbe(ctx context.Context, kernel, initrd string) (bool, string) {
	boot, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	cache := filepath.Join(p.root, "accel-probe")
	key := strings.TrimSpace(string(boot)) + " " + filepath.Base(filepath.Dir(kernel))
	if b, err := os.ReadFile(cache); err == nil {
		if f := strings.SplitN(strings.TrimRight(string(b), "\n"), "\n", 3); len(f) >= 2 && f[0] == key {
			why := "probed earlier this boot"
			if len(f) == 3 && f[2] != "" {
				why = f[2] + ", " + why
			}
			return strings.TrimSpace(f[1]) == AccelKVM, why
		}
	}
	ok, why := probeKVM(ctx, kvmDevice, kernel, initrd, p.cfg.Intervals.AccelProbe)
	if ctx.Err() != nil {
		return false, why // interrupted: record nothing
	}
	accel := AccelTCG
	if ok {
		accel = AccelKVM
	}
	os.WriteFile(cache, []byte(key+"\n"+accel+"\n"+why+"\n"), 0o600)
	return ok, why
}
