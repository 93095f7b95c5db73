// Package common holds what every VM backend shares: the launch rules and
// the reading of cloud-init's verdict. Backends import it; it imports no
// backend, so no backend ever needs another.
package common

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
)

// ValidateLaunch checks an input against the rules and this host, so bad
// input fails before anything is created.
func ValidateLaunch(in provider.LaunchInput, rootGiB int) error {
	if err := provider.ValidateVMName(in.Name); err != nil {
		return err
	}
	if in.Group != "" {
		if err := provider.ValidateVMName(in.Group); err != nil {
			return fmt.Errorf("group: %w", err)
		}
	}
	if in.CPUs < 1 {
		return fmt.Errorf("cpus %d for %s: must be at least 1", in.CPUs, in.Name)
	}
	if in.MemoryMiB < 512 {
		return fmt.Errorf("memory %d MiB for %s: must be at least 512 MiB", in.MemoryMiB, in.Name)
	}
	if total := hostMemoryMiB(); total > 0 && in.MemoryMiB > total {
		return fmt.Errorf("memory %d MiB for %s: exceeds this host's %d MiB", in.MemoryMiB, in.Name, total)
	}
	if in.DiskGiB < rootGiB {
		return fmt.Errorf("disk %d GiB for %s: must be at least the image's %d GiB root filesystem", in.DiskGiB, in.Name, rootGiB)
	}
	if len(in.UserData) == 0 {
		return fmt.Errorf("user-data for %s: must not be empty", in.Name)
	}
	return nil
}

// hostMemoryMiB reads MemTotal; 0 when unknown.
func hostMemoryMiB() int {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.Atoi(f[1])
			return kb / 1024
		}
	}
	return 0
}
