// Package leaks inspects the host itself (processes and files), not the
// harness's own bookkeeping, to find what a run left behind.
package leaks

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Processes returns "pid: cmdline" for every process whose command line
// contains any of needles (for example a VM's state directory).
func Processes(needles ...string) []string {
	return processes(func(cmd string) bool {
		for _, n := range needles {
			if n != "" && strings.Contains(cmd, n) {
				return true
			}
		}
		return false
	})
}

// ProcessesWithAll returns "pid: cmdline" for every process whose command
// line contains all of needles: a program and a path of this run's own
// ("qemu-system" and a temporary cache), so what a concurrent run on the
// same host has running never counts as this run's leak.
func ProcessesWithAll(needles ...string) []string {
	return processes(func(cmd string) bool {
		for _, n := range needles {
			if n == "" || !strings.Contains(cmd, n) {
				return false
			}
		}
		return len(needles) > 0
	})
}

// processes scans /proc. A process forked from a matching parent that has
// not exec'd yet (or never will: a subshell) carries the parent's command
// line; it is the same command, counted once by its parent, so a scan
// during a fork does not report one VM's qemu twice.
func processes(match func(cmdline string) bool) []string {
	type proc struct {
		pid, ppid int
		cmd       string
	}
	var found []proc
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmd := cmdline(pid)
		if cmd == "" || !match(cmd) {
			continue
		}
		found = append(found, proc{pid: pid, ppid: parent(pid), cmd: cmd})
	}
	byPID := map[int]string{}
	for _, p := range found {
		byPID[p.pid] = p.cmd
	}
	var out []string
	for _, p := range found {
		if cmd, ok := byPID[p.ppid]; ok && cmd == p.cmd {
			continue // a forked copy of its parent
		}
		out = append(out, fmt.Sprintf("%d: %s", p.pid, p.cmd))
	}
	return out
}

// parent returns pid's parent pid from /proc/PID/stat (0 if unknown).
func parent(pid int) int {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	// The fields after the parenthesised command: state, ppid, ...
	s := string(stat)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// Files returns the paths under root whose base name matches any of the
// glob patterns, searching to depth levels.
func Files(root string, depth int, patterns ...string) []string {
	var out []string
	base := strings.Count(filepath.Clean(root), string(os.PathSeparator))
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		if fi.IsDir() && strings.Count(p, string(os.PathSeparator))-base > depth {
			return filepath.SkipDir
		}
		for _, pat := range patterns {
			if ok, _ := filepath.Match(pat, fi.Name()); ok && p != root {
				out = append(out, p)
				break
			}
		}
		return nil
	})
	return out
}

// Children returns "pid: cmdline" for the live children of pid whose
// command line contains needle, so a test can later check that exactly
// those processes are gone (other runs' processes of the same kind are not
// its business).
func Children(pid int, needle string) map[int]string {
	out := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if parent(child) != pid {
			continue
		}
		cmd := cmdline(child)
		if cmd != "" && strings.Contains(cmd, needle) {
			out[child] = cmd
		}
	}
	return out
}

// Alive returns those of procs still running the same command line (a
// recycled pid or a zombie does not count).
func Alive(procs map[int]string) []string {
	var out []string
	for pid, cmd := range procs {
		if cmdline(pid) == cmd {
			out = append(out, fmt.Sprintf("%d: %s", pid, cmd))
		}
	}
	return out
}

func cmdline(pid int) string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return ""
	}
	return strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")
}
