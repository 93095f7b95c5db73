package qemu

import (
	"strings"
	"testing"
)

// A piece of qemu-system-x86_64 7.2's `-machine help` on Debian 12.
const machineHelp72 = `Supported machines are:
microvm              microvm (i386)
pc                   Standard PC (i440FX + PIIX, 1996) (alias of pc-i440fx-7.2)
pc-i440fx-7.2        Standard PC (i440FX + PIIX, 1996) (default)
q35                  Standard PC (Q35 + ICH9, 2009) (alias of pc-q35-7.2)
pc-q35-7.2           Standard PC (Q35 + ICH9, 2009)
pc-q35-7.1           Standard PC (Q35 + ICH9, 2009)
`

func TestResolveMachineReadsTheAliasTarget(t *testing.T) {
	for alias, want := range map[string]string{"q35": "pc-q35-7.2", "pc": "pc-i440fx-7.2", "pc-q35-7.1": "pc-q35-7.1"} {
		if got, err := resolveMachine(machineHelp72, alias); err != nil || got != want {
			t.Errorf("resolveMachine(%s) = %q, %v; want %q", alias, got, err, want)
		}
	}
	if _, err := resolveMachine(machineHelp72, "virt"); err == nil || !strings.Contains(err.Error(), "virt") {
		t.Errorf("an unlisted machine type: %v, want an error naming it", err)
	}
	if _, err := resolveMachine("q35  Standard PC (alias of pc q35)\n", "q35"); err == nil {
		t.Error("a garbled alias target was accepted")
	}
}

func TestSnapshotKeyFollowsEveryShapeField(t *testing.T) {
	base := Shape{Image: "bookworm-abc", CPUs: 1, MemoryMiB: 1536, Accel: "tcg", Devices: deviceSet, Machine: "pc-q35-7.2", QEMU: "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)"}
	seen := map[string]string{base.Key(): "base"}
	for what, change := range map[string]func(*Shape){
		"image": func(s *Shape) { s.Image = "bookworm-def" }, "cpus": func(s *Shape) { s.CPUs = 2 },
		"memory": func(s *Shape) { s.MemoryMiB = 2048 }, "accel": func(s *Shape) { s.Accel = "kvm" },
		"devices": func(s *Shape) { s.Devices = "d2" }, "machine": func(s *Shape) { s.Machine = "pc-q35-8.0" },
		"qemu": func(s *Shape) { s.QEMU = "7.2.23 (Debian 1:7.2+dfsg-7+deb12u19)" },
	} {
		s := base
		change(&s)
		k := s.Key()
		if other, dup := seen[k]; dup {
			t.Errorf("changing %s keeps key %s (as %s)", what, k, other)
		}
		seen[k] = what
		if strings.ContainsAny(k, "/ ()") {
			t.Errorf("key %q is not one plain path element", k)
		}
	}
}
