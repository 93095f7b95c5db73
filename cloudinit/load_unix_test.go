//go:build unix

package cloudinit

import (
	"path/filepath"
	"syscall"
	"testing"
)

// A FIFO must be rejected without opening it: opening would block.
func TestLoadRejectsFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pipe.yaml")
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	_, err := Load(p)
	if err == nil || err.Error() != p+": is not a regular file (a named pipe), not a cloud-init file" {
		t.Fatalf("Load = %v", err)
	}
}
