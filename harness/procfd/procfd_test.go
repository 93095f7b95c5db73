package procfd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// childFDs lists the descriptors a child process started now has open.
func childFDs(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("sh", "-c", "ls /proc/$$/fd").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(out))
}

func contains(fds []string, fd int) bool {
	for _, f := range fds {
		if f == strconv.Itoa(fd) {
			return true
		}
	}
	return false
}

func TestInheritedDescriptorNoLongerReachesChildren(t *testing.T) {
	// As a parent like flock(1) hands one over: open without O_CLOEXEC.
	fd, err := unix.Open(filepath.Join(t.TempDir(), "lock"), unix.O_CREAT|unix.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "lock")
	defer f.Close()
	if !contains(childFDs(t), fd) {
		t.Fatalf("descriptor %d did not reach the child before the fix; the test cannot show anything", fd)
	}
	if err := CloseOnExecInherited(); err != nil {
		t.Fatal(err)
	}
	if fds := childFDs(t); contains(fds, fd) {
		t.Errorf("descriptor %d still reaches a child (%v)", fd, fds)
	}
	// The descriptor itself stays open for this process.
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
		t.Errorf("descriptor %d was closed: %v", fd, err)
	}
	// ExtraFiles still hands a descriptor to a child on purpose.
	cmd := exec.Command("sh", "-c", "ls /proc/$$/fd")
	cmd.ExtraFiles = []*os.File{f}
	out, err := cmd.Output()
	if err != nil || !contains(strings.Fields(string(out)), 3) {
		t.Errorf("ExtraFiles: %v %q, want descriptor 3 in the child", err, out)
	}
}
