package leaks

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// TestProcessesWithAllNeedsEveryNeedle: a process matching only the program
// name (another run's qemu, say) is not reported; one whose command line
// also holds this run's path is.
func TestProcessesWithAllNeedsEveryNeedle(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "leaks-marker")
	// sh keeps the path in its own command line while it sleeps.
	cmd := exec.Command("sh", "-c", "sleep 30; : "+strconv.Quote(marker))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	if got := ProcessesWithAll("sh", marker); len(got) != 1 {
		t.Errorf("ProcessesWithAll(sh, marker) = %v, want the one process", got)
	}
	if got := ProcessesWithAll("qemu-system", marker); len(got) != 0 {
		t.Errorf("ProcessesWithAll(qemu-system, marker) = %v, want none (no qemu has this path)", got)
	}
	if got := ProcessesWithAll(); len(got) != 0 {
		t.Errorf("ProcessesWithAll() with no needles = %v, want none", got)
	}
	if got := Processes("no-such-program-anywhere", marker); len(got) != 1 {
		t.Errorf("Processes(any of) = %v, want the one process", got)
	}
}
