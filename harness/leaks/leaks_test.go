package leaks

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startShell runs `sh -c script marker` (so the marker is in sh's command
// line) with its stdin a pipe; closing the pipe ends every `read` in it.
// The test ends the shell and anything it forked when it finishes.
func startShell(t *testing.T, script, marker string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sh", "-c", script, marker)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	return cmd
}

// waitChildren polls until pid has n live children whose command line
// holds needle (the shell has forked), failing after a generous bound.
func waitChildren(t *testing.T, pid, n int, needle string) map[int]string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := Children(pid, needle)
		if len(got) == n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d has children %v, want %d holding %q", pid, got, n, needle)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// only says whether got is exactly the one process pid.
func only(got []string, pid int) bool {
	return len(got) == 1 && strings.HasPrefix(got[0], fmt.Sprintf("%d: ", pid))
}

// TestProcessesWithAllNeedsEveryNeedle: a process matching only the program
// name (another run's qemu, say) is not reported; one whose command line
// also holds this run's path is, and it is the process started here. sh
// runs only builtins, so nothing it forks can race the scan.
func TestProcessesWithAllNeedsEveryNeedle(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "leaks-marker")
	cmd := startShell(t, "read x; : \"$0\"", marker)
	// sh's command line is its own only once it has exec'd: Start returns
	// after the exec, so the scan sees sh, never the forking Go child.
	if got := ProcessesWithAll("sh", marker); !only(got, cmd.Process.Pid) {
		t.Errorf("ProcessesWithAll(sh, marker) = %v, want the one process %d", got, cmd.Process.Pid)
	}
	if got := ProcessesWithAll("qemu-system", marker); len(got) != 0 {
		t.Errorf("ProcessesWithAll(qemu-system, marker) = %v, want none (no qemu has this path)", got)
	}
	if got := ProcessesWithAll(); len(got) != 0 {
		t.Errorf("ProcessesWithAll() with no needles = %v, want none", got)
	}
	if got := Processes("no-such-program-anywhere", marker); !only(got, cmd.Process.Pid) {
		t.Errorf("Processes(any of) = %v, want the one process %d", got, cmd.Process.Pid)
	}
}

// TestAForkedCopyCountsOnce: a process that forked and whose child has not
// exec'd (or never will: a subshell) has two entries in /proc with one
// command line. The leak check counts that command once, by its parent, so
// "exactly one qemu of this VM" holds while it forks.
func TestAForkedCopyCountsOnce(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "leaks-fork-marker")
	// The subshell is a forked sh that never execs: it blocks in read.
	cmd := startShell(t, "( read x ); : \"$0\"", marker)
	kids := waitChildren(t, cmd.Process.Pid, 1, marker)
	for pid, line := range kids {
		if parent := cmdline(cmd.Process.Pid); line != parent {
			t.Fatalf("the subshell %d runs %q, not its parent's %q", pid, line, parent)
		}
	}
	if got := ProcessesWithAll("sh", marker); !only(got, cmd.Process.Pid) {
		t.Errorf("ProcessesWithAll(sh, marker) = %v, want only the parent %d", got, cmd.Process.Pid)
	}
	if got := Processes(marker); !only(got, cmd.Process.Pid) {
		t.Errorf("Processes(marker) = %v, want only the parent %d", got, cmd.Process.Pid)
	}
	// A child that exec'd something else is its own process and counts.
	marker2 := filepath.Join(t.TempDir(), "leaks-exec-marker")
	cmd2 := startShell(t, "cat \"$0\" - >/dev/null; : \"$0\"", marker2)
	waitChildren(t, cmd2.Process.Pid, 1, "cat "+marker2)
	if got := Processes(marker2); len(got) != 2 {
		t.Errorf("Processes(marker2) = %v, want sh and its cat", got)
	}
}
