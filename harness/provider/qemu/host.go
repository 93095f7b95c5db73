package qemu

import (
	"fmt"
	"os/exec"
	"strings"
	"syscall"
)

// CheckHost names the Debian package for every tool the provider needs that
// is missing, before any VM starts.
func CheckHost() error {
	var missing []string
	for _, t := range []struct{ bin, pkg string }{
		{qemuBinary, "qemu-system-x86"}, {"qemu-img", "qemu-utils"}, {"genisoimage", "genisoimage"}, {"socat", "socat"},
	} {
		if _, err := exec.LookPath(t.bin); err != nil {
			missing = append(missing, fmt.Sprintf("%s (package %s)", t.bin, t.pkg))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the qemu provider needs %s; install with `make deps`", strings.Join(missing, ", "))
	}
	return nil
}

func freeDiskGiB(dir string) int {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return -1
	}
	return int(st.Bavail * uint64(st.Bsize) >> 30)
}
