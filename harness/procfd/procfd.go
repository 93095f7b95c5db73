// Package procfd keeps file descriptors this process inherited out of the
// long-lived processes it starts. A descriptor the parent passed without
// close-on-exec (the lock of `flock FILE bcmtest up ...`, say) would
// otherwise live on in every qemu and apt-cacher-ng the harness leaves
// running, holding that lock until the cluster is torn down.
package procfd

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// CloseOnExecInherited marks every open descriptor above stderr
// close-on-exec. Descriptors Go opens are already so; this only changes
// inherited ones. Children that need a descriptor get it through
// exec.Cmd's ExtraFiles, which is unaffected.
func CloseOnExecInherited() error {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("listing this process's descriptors: %w", err)
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC != 0 {
			continue // closed since the listing (the listing's own fd), or already so
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, flags|unix.FD_CLOEXEC); err != nil {
			return fmt.Errorf("marking descriptor %d close-on-exec: %w", fd, err)
		}
	}
	return nil
}
