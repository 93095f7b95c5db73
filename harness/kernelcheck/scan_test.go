package kernelcheck

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestScanEachKind has, per kind, a line the kernel prints (true positive)
// and a line that looks like it and must not match (near miss).
func TestScanEachKind(t *testing.T) {
	for _, c := range []struct {
		kind      Kind
		hit, miss string
	}{
		{SoftLockup,
			"[  426.104571] watchdog: BUG: soft lockup - CPU#1 stuck for 75s! [swapper/1:0]",
			"[    0.000000] Command line: console=ttyS0 softlockup_panic=0 nmi_watchdog=0"},
		{HardLockup,
			"[  430.000000] Watchdog detected hard LOCKUP on cpu 0",
			"[    0.180203] NMI watchdog: Enabled. Permanently consumes one hw-PMU counter."},
		{RCUStall,
			"[  401.733120] rcu: INFO: rcu_preempt self-detected stall on CPU",
			"[    0.061473] rcu: \tRCU CPU stall warnings timeout set to 21 (rcu_cpu_stall_timeout)."},
		{RCUStall,
			"[  402.000000] rcu: INFO: rcu_sched detected stalls on CPUs/tasks:",
			"[  402.000000] bcmtest: rcu_sched detected nothing, no stall"},
		{HungTask,
			"[  485.220101] INFO: task jbd2/vda1-8:241 blocked for more than 120 seconds.",
			`[  485.220150] "echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.`},
		{OOMKill,
			"[  512.004211] Out of memory: Killed process 2345 (lxd) total-vm:2512340kB, anon-rss:812340kB",
			"[    1.902311] systemd[1]: Started systemd-oomd.service - Userspace Out-Of-Memory (OOM) Killer."},
		{OOMKill,
			"[  513.000000] Memory cgroup out of memory: Killed process 4242 (bitcoind) total-vm:1000kB",
			"[  513.000000] bash invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj=0"},
		{Oops,
			"[  530.100050] Oops: 0002 [#1] PREEMPT SMP NOPTI",
			"cloud-init[812]: Oops: the mirror answered slowly, retrying in 5 s"},
		{Oops,
			"[  530.100050] general protection fault, probably for non-canonical address 0xdead000000000100: 0000 [#1] PREEMPT SMP NOPTI",
			"[   46.000000] traps: sshd[999] general protection fault ip:7f00 sp:7ffe error:0 in libc.so.6[7f00+2000]"},
		{Bug,
			"[  530.100000] BUG: kernel NULL pointer dereference, address: 0000000000000008",
			"cloud-init[812]: Setting up reportbug (12.0.0) ..."},
		{Bug,
			"[  530.100000] kernel BUG at mm/slub.c:432!",
			"cloud-init[812]: Unpacking libdevel-bugbear-perl (BUG-free edition) ..."},
		{Bug,
			"[  530.100000] workqueue: BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 33s!",
			"[  530.100000] cloud-init[812]: my script: BUG: nothing to do"},
		{Panic,
			"[  540.000000] Kernel panic - not syncing: Fatal exception in interrupt",
			"[   44.000001] bcmtest: don't panic, this line only says the word"},
		{Panic,
			"[  540.000000] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)",
			"[    0.000000] Command line: console=ttyS0 earlyprintk=ttyS0 panic=-1"},
		{Segfault,
			"[  531.000000] lxd[3456]: segfault at 10 ip 000000000046a1b3 sp 000000c000a1fe28 error 4 in lxd[400000+1b2f000] likely on CPU 0",
			"[   45.500000] sshd[1234]: segfault at 0 ip 00007f3a1c2d3e4f sp 00007ffd5e6f7a80 error 4 in libc.so.6[7f3a1c200000+155000]"},
		{Segfault,
			"[  531.500000] traps: cloud-init[612] general protection fault ip:7f3a sp:7ffd error:0 in libpython3.11.so.1.0[7f3a+2000]",
			"[  531.500000] traps: python3[999] general protection fault ip:7f00 sp:7ffe error:0 in libpython3.11.so.1.0[7f00+2000]"},
		{Segfault,
			"[  532.000000] worker[777]: segfault at 0 ip 00007f00 sp 00007ffe error 6 in libdqlite.so.0.0.1[7f00+40000]",
			"[  532.000000] bcmtest: cloud-init did not segfault at all"},
	} {
		got := Scan("bcm-01", Console, c.hit)
		if len(got) != 1 || got[0].Kind != c.kind {
			t.Errorf("%s: %q gave %v, want one %s finding", c.kind, c.hit, got, c.kind)
		}
		if miss := Scan("bcm-01", Console, c.miss); len(miss) != 0 {
			t.Errorf("%s: near miss %q matched: %v", c.kind, c.miss, miss)
		}
	}
}

func TestScanNamesNodeLineAndTimeSinceBoot(t *testing.T) {
	got := Scan("bcm-01", Console, "\x1b[0m[  426.104571] watchdog: BUG: soft lockup - CPU#1 stuck for 75s! [swapper/1:0]\r\n")
	want := []Finding{{Node: "bcm-01", Kind: SoftLockup, Sources: []Source{Console},
		Line:      "[  426.104571] watchdog: BUG: soft lockup - CPU#1 stuck for 75s! [swapper/1:0]",
		SinceBoot: 426*time.Second + 104571*time.Microsecond, Timed: true}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	s := got[0].String()
	for _, w := range []string{"bcm-01", "soft lockup", "426.105 s after boot", "serial console", "CPU#1 stuck for 75s"} {
		if !strings.Contains(s, w) {
			t.Errorf("%q does not name %q", s, w)
		}
	}
}

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestScanRecordedConsoles: a healthy boot full of near misses has no
// finding; a troubled one has one per event, in order, and none for the
// lines that follow an event (registers, module list, hints).
func TestScanRecordedConsoles(t *testing.T) {
	if got := Scan("bcm-00", Console, read(t, "console-healthy.log")); len(got) != 0 {
		t.Errorf("healthy console has findings: %v", got)
	}
	got := Scan("bcm-01", Console, read(t, "console-trouble.log"))
	var kinds []Kind
	for _, f := range got {
		kinds = append(kinds, f.Kind)
	}
	want := []Kind{RCUStall, SoftLockup, HardLockup, HungTask, OOMKill, Bug, Oops, Segfault, Segfault, Segfault, Panic}
	if !reflect.DeepEqual(kinds, want) {
		t.Errorf("kinds %v\nwant  %v", kinds, want)
	}
}

func TestFromJournalAndMerge(t *testing.T) {
	text := FromJournal(read(t, "journal-kernel.log"))
	if !strings.Contains(text, "[  426.104571] watchdog: BUG: soft lockup") || strings.Contains(text, "bcm-01 kernel:") {
		t.Fatalf("journal lines not in dmesg form:\n%s", text)
	}
	fromLog := Scan("bcm-01", KernelLog, text)
	if len(fromLog) != 3 || fromLog[2].Kind != SoftLockup || !strings.Contains(fromLog[2].Line, "bcmtest-inject") {
		t.Fatalf("kernel log findings: %v", fromLog)
	}
	fromConsole := Scan("bcm-01", Console, read(t, "console-trouble.log"))
	merged := Merge(append(fromConsole, fromLog...))
	if len(merged) != len(fromConsole)+1 {
		t.Fatalf("merged %d findings, want %d (the console's and the injected one)", len(merged), len(fromConsole)+1)
	}
	both := 0
	for _, f := range merged {
		if len(f.Sources) == 2 {
			both++
			if f.Sources[0] != Console || f.Sources[1] != KernelLog {
				t.Errorf("sources %v", f.Sources)
			}
		}
	}
	if both != 2 {
		t.Errorf("%d findings seen in both sources, want 2 (the soft lockup and the lxd segfault)", both)
	}
}

func TestFindingJSON(t *testing.T) {
	in := []Finding{
		{Node: "n", Kind: Panic, Sources: []Source{Console}, Line: "[ 1.5] Kernel panic - not syncing", SinceBoot: 1500 * time.Millisecond, Timed: true},
		{Node: "n", Kind: Segfault, Sources: []Source{KernelLog}, Line: "lxd[1]: segfault at 0"},
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"since_boot_s":1.5`) || !strings.Contains(string(b), `"since_boot_s":null`) {
		t.Errorf("json %s", b)
	}
	var out []Finding
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip: %+v, want %+v", out, in)
	}
}
