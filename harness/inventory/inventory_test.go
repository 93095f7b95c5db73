package inventory

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func mustParse(t *testing.T, name, raw string) *Inventory {
	t.Helper()
	inv, err := Parse(name, raw)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func changeKeys(r Report) []string {
	var out []string
	for _, c := range r.Differences {
		out = append(out, c.Section+" "+c.Op+" "+c.Key)
	}
	return out
}

// Two nodes given the same file differ only in noise: the diff is empty
// and the timings are apart.
func TestSameFileOnTwoNodesHasNoDifference(t *testing.T) {
	a := mustParse(t, nodeA.host, recording(nodeA, change{}))
	b := mustParse(t, nodeB.host, recording(nodeB, change{}))
	r := Diff("old.yaml", a, "new.yaml", b)
	if len(r.Differences) != 0 || len(r.Regressions) != 0 {
		t.Fatalf("same file on two nodes: want no difference, got regressions %v, differences:\n%s", r.Regressions, strings.Join(changeKeys(r), "\n"))
	}
	if r.Summary() != "no difference" {
		t.Errorf("summary %q, want %q", r.Summary(), "no difference")
	}
	var ssh *Timing
	for i := range r.Timings {
		if r.Timings[i].Module == "init-network/config-ssh" {
			ssh = &r.Timings[i]
		}
	}
	if ssh == nil || ssh.Old != 1.25 || ssh.New != 1.5 || ssh.Flagged {
		t.Errorf("timing of config-ssh: got %+v, want 1.25 -> 1.5, not flagged", ssh)
	}
	// The parts a node's noise lives in were read, not dropped: the
	// normalised values are there.
	if got := a.Files["/etc/hosts"].Text; got != "127.0.1.1 <fqdn> <hostname>\n127.0.0.1 localhost\n" {
		t.Errorf("/etc/hosts normalised to %q", got)
	}
	if len(a.Sockets) != 5 || len(a.Packages) != 2 || len(a.Files) != 10 {
		t.Errorf("parsed %d sockets, %d packages, %d files; want 5, 2, 10", len(a.Sockets), len(a.Packages), len(a.Files))
	}
}

// Each kind of noise is replaced by the same placeholder on both nodes,
// and nothing else is touched.
func TestNormaliseEachNoiseKind(t *testing.T) {
	ida := Identity{Hostname: nodeA.host, FQDN: nodeA.fqdn, MachineID: nodeA.machineID, BootID: nodeA.bootID, InstanceID: nodeA.iid, MACs: []string{nodeA.mac}, Addrs: []string{nodeA.addr, nodeA.addr6, "127.0.0.1"}}
	idb := Identity{Hostname: nodeB.host, FQDN: nodeB.fqdn, MachineID: nodeB.machineID, BootID: nodeB.bootID, InstanceID: nodeB.iid, MACs: []string{nodeB.mac}, Addrs: []string{nodeB.addr, nodeB.addr6, "127.0.0.1"}}
	cases := []struct {
		kind string
		text func(n node) string
		want string
	}{
		{"hostname", func(n node) string { return "host " + n.host }, "host <hostname>"},
		{"FQDN", func(n node) string { return "127.0.1.1 " + n.fqdn + " " + n.host }, "127.0.1.1 <fqdn> <hostname>"},
		{"instance-id and instance dir", func(n node) string { return "/var/lib/cloud/instances/" + n.iid + "/sem" }, "/var/lib/cloud/instances/<instance-id>/sem"},
		{"machine-id", func(n node) string { return "machine " + n.machineID }, "machine <machine-id>"},
		{"boot ID", func(n node) string { return "boot " + n.bootID }, "boot <boot-id>"},
		{"boot ID without dashes", func(n node) string { return "b=" + strings.ReplaceAll(n.bootID, "-", "") }, "b=<boot-id>"},
		{"MAC", func(n node) string { return "ether " + n.mac + " brd ff:ff:ff:ff:ff:ff" }, "ether <mac> brd ff:ff:ff:ff:ff:ff"},
		{"any MAC", func(n node) string { return "lladdr " + strings.ToUpper(strings.Replace(n.mac, "52", "02", 1)) }, "lladdr <mac>"},
		{"IPv4 address", func(n node) string { return "inet " + n.addr + "/24 on 127.0.0.1" }, "inet <addr>/24 on 127.0.0.1"},
		{"IPv6 address", func(n node) string { return "inet6 " + n.addr6 + "/64" }, "inet6 <addr>/64"},
		{"SSH host key", func(n node) string { return "ssh-ed25519 " + n.hostKey + " root@x" }, "ssh-ed25519 <key> root@x"},
		{"SSH fingerprint", func(n node) string { return "256 " + n.fingerprint + " (ED25519)" }, "256 <fingerprint> (ED25519)"},
		{"onion address", func(n node) string { return "http://" + n.onion + "/" }, "http://<onion>.onion/"},
		{"certificate", func(n node) string {
			return "-----BEGIN CERTIFICATE-----\n" + n.certBody + "\n-----END CERTIFICATE-----"
		}, "<CERTIFICATE present>"},
		{"private key", func(n node) string {
			return "-----BEGIN RSA PRIVATE KEY-----\n" + n.certBody + "\n-----END RSA PRIVATE KEY-----"
		}, "<RSA PRIVATE KEY present>"},
		{"ISO timestamp", func(n node) string { return n.isoTime + " - util.py" }, "<time> - util.py"},
		{"RFC 2822 date", func(n node) string { return "at " + n.date + "." }, "at <time>."},
		{"syslog time", func(n node) string { return n.syslogTime + " sshd" }, "<time> sshd"},
		{"epoch", func(n node) string {
			return "finished: " + strings.TrimRight(strings.TrimRight(strings.Replace(fmtF(n.epoch), ".", ".", 1), "0"), ".")
		}, "finished: <time>"},
		{"timestamp in nanoseconds", func(n node) string { return "TIMESTAMP_NSEC=" + itoa(int(n.epoch)) + "123456789" }, "TIMESTAMP_NSEC=<time>"},
		{"uptime", func(n node) string { return "Up " + fmtF(n.sshSecs) + " seconds." }, "up <n> seconds."},
		{"PID", func(n node) string { return "users:((\"sshd\",pid=" + itoa(n.pid) + ",fd=3))" }, "users:((\"sshd\",pid=<pid>,fd=3))"},
		{"PID in brackets", func(n node) string { return "sshd[" + itoa(n.pid) + "]: ok" }, "sshd[<pid>]: ok"},
		{"journal cursor", func(n node) string { return "cursor " + n.cursor }, "cursor <cursor>"},
	}
	for _, c := range cases {
		ga, gb := Normalise(c.text(nodeA), ida), Normalise(c.text(nodeB), idb)
		if ga != c.want || gb != c.want {
			t.Errorf("%s: normalised to %q and %q, want %q for both", c.kind, ga, gb, c.want)
		}
	}
	for _, keep := range []string{"vm.swappiness = 60", "jq 1.6-2.1", "deb http://deb.debian.org/debian bookworm main", "HiddenServicePort 80 127.0.0.1:8080", "listen 0.0.0.0:22"} {
		if got := Normalise(keep, ida); got != keep {
			t.Errorf("Normalise(%q) = %q; it must leave what is not noise", keep, got)
		}
	}
}

func fmtF(f float64) string { b, _ := json.Marshal(f); return string(b) }
func itoa(i int) string     { b, _ := json.Marshal(i); return string(b) }

// What NEW changes is listed, each once, and nothing else; a user's
// private group is shown with the user.
func TestDiffListsExactlyWhatChanged(t *testing.T) {
	a := mustParse(t, nodeA.host, recording(nodeA, change{}))
	b := mustParse(t, nodeB.host, recording(nodeB, change{extraPackage: true, extraFile: true, extraUser: true}))
	r := Diff("old.yaml", a, "new.yaml", b)
	want := []string{
		"packages added tree",
		"users added reviewer",
		"groups added reviewers",
		"files added /etc/bcmtest-review.conf",
	}
	if got := changeKeys(r); !reflect.DeepEqual(got, want) {
		t.Fatalf("differences:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(r.Regressions) != 0 || r.Failed() {
		t.Errorf("no regression expected, got %v", r.Regressions)
	}
	if u := r.Differences[1]; u.New != "uid 1001, gid 1001, home /home/reviewer, shell /bin/sh, groups reviewers" {
		t.Errorf("user line %q", u.New)
	}
}

// A runcmd that fails on NEW is a regression naming the module, with the
// log's warning and traceback; a failure on both is said, not a regression.
func TestRuncmdFailureIsARegression(t *testing.T) {
	a := mustParse(t, nodeA.host, recording(nodeA, change{}))
	b := mustParse(t, nodeB.host, recording(nodeB, change{runcmdFails: true}))
	r := Diff("old.yaml", a, "new.yaml", b)
	if !r.Failed() || !r.Regression() {
		t.Fatalf("want NEW failed as a regression, got %+v", r.New)
	}
	var text []string
	for _, f := range r.Regressions {
		text = append(text, f.Kind+": "+f.What)
	}
	all := strings.Join(text, "\n")
	for _, want := range []string{
		`failed: cloud-init on NEW's node ended with status "error" where OLD's ended "done": a regression`,
		"module: module modules-final/config-scripts_user: FAIL on NEW (OLD: SUCCESS)",
		"new traceback in cloud-init.log: RuntimeError: Runparts: 1 failures (runcmd) in 1 attempted commands",
		"new warning in cloud-init.log: Failed to run module scripts_user",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("regressions lack %q; got:\n%s", want, all)
		}
	}
	if len(r.Differences) != 0 {
		t.Errorf("a failure is said once, among the regressions; differences: %v", changeKeys(r))
	}
	if !strings.HasPrefix(r.Summary(), "REGRESSION: NEW failed") {
		t.Errorf("summary %q", r.Summary())
	}
	both := Diff("old.yaml", b, "new.yaml", b)
	if !both.Failed() || both.Regression() {
		t.Errorf("failed on both: want failed, not a regression")
	}
}

// The rules of cloud-init's verify_clean_log on a recorded 22.4 log.
func TestLogRules224(t *testing.T) {
	log := `2026-12-03 10:40:01,123 - util.py[DEBUG]: Cloud-init v. 22.4.2 running 'init' at Thu, 03 Dec 2026 10:40:01 +0000. Up 6.0 seconds.
2026-12-03 10:40:02,001 - cc_apt_configure.py[WARNING]: Some apt warning
2026-12-03 10:40:02,002 - azure.py[WARNING]: No lease found; using default endpoint
2026-12-03 10:40:02,003 - util.py[DEPRECATED]: The 'apt_sources' key is deprecated in 22.1
2026-12-03 10:40:02,004 - cc_foo.py[WARNING]: Deprecated: key x is deprecated
2026-12-03 10:40:03,000 - handlers.py[ERROR]: failed posting event
2026-12-03 10:40:03,001 - main.py[CRITICAL]: something critical
2026-12-03 10:40:04,000 - util.py[DEBUG]: Running module x failed
Traceback (most recent call last):
  File "/usr/lib/python3/dist-packages/cloudinit/x.py", line 1, in f
    raise ValueError("bad")
ValueError: bad
2026-12-03 10:40:05,000 - util.py[DEBUG]: Cloud-init 22.4.2 received SIGTERM, exiting...
`
	got := LogFindings(log, func(s string) string { return Normalise(s, Identity{}) })
	want := []LogFinding{
		{"deprecation", "Deprecated: key x is deprecated"},
		{"deprecation", "The 'apt_sources' key is deprecated in 22.1"},
		{"error", "failed posting event"},
		{"error", "something critical"},
		{"signal", "Cloud-init 22.4.2 received SIGTERM, exiting..."},
		{"traceback", "ValueError: bad"},
		{"warning", "Some apt warning"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("findings:\n%v\nwant:\n%v", got, want)
	}
}

// cloud-init 25.x: status --format json with extended_status and
// recoverable_errors; degraded is not failed, but its new warnings are
// regressions.
func TestHealth25(t *testing.T) {
	status25 := `{
  "boot_status_code": "enabled-by-generator",
  "datasource": "nocloud",
  "detail": "DataSourceNoCloud [seed=/dev/sr0]",
  "errors": [],
  "extended_status": "degraded done",
  "init": {"errors": [], "finished": 1796294410.1, "recoverable_errors": {}, "start": 1796294402.2},
  "last_update": "Thu, 03 Dec 2026 10:40:40 +0000",
  "recoverable_errors": {
    "DEPRECATED": ["Deprecated cloud-config provided: chpasswd.list:  Deprecated in version 22.2. Use **users** instead."],
    "WARNING": ["Failed to set hostname on cidiff-0a1b2c-new"]
  },
  "stage": null,
  "status": "done"
}`
	raw := strings.Replace(recording(nodeB, change{legacyStatus: true}), "{\"bcmtest_format_json\": \"unsupported\"}", status25, 1)
	raw = strings.Replace(raw, "cloud_init_version=22.4.2", "cloud_init_version=25.1.2", 1)
	b := mustParse(t, nodeB.host, raw)
	h := b.Health
	if h.Status != "done" || h.ExtendedStatus != "degraded done" || h.Failed() {
		t.Fatalf("health %+v: want done, degraded done, not failed", h)
	}
	if w := h.RecoverableErrors["WARNING"]; len(w) != 1 || w[0] != "Failed to set hostname on <hostname>" {
		t.Errorf("recoverable WARNING %q", w)
	}
	a := mustParse(t, nodeA.host, recording(nodeA, change{}))
	r := Diff("old.yaml", a, "new.yaml", b)
	if r.Failed() {
		t.Errorf("degraded done is not a failure")
	}
	var kinds []string
	for _, f := range r.Regressions {
		kinds = append(kinds, f.Kind+": "+f.What)
	}
	if len(kinds) != 2 || !strings.Contains(kinds[0], "new recoverable DEPRECATED") || !strings.Contains(kinds[1], "new recoverable WARNING: Failed to set hostname on <hostname>") {
		t.Errorf("regressions %q", kinds)
	}
	if r.New.Status != "degraded done" || r.New.CloudInitVersion != "25.1.2" {
		t.Errorf("NEW side %+v", r.New)
	}
}

// 22.4 without --format json: the status comes from result.json, and an
// unfinished boot (no result.json) is not done.
func TestLegacyStatus(t *testing.T) {
	for _, fails := range []bool{false, true} {
		h := mustParse(t, "n", recording(nodeA, change{legacyStatus: true, runcmdFails: fails})).Health
		if h.Failed() != fails || len(h.Errors) != map[bool]int{false: 0, true: 1}[fails] {
			t.Errorf("from result.json (runcmd fails %v): %+v", fails, h)
		}
	}
	st, errs := legacyStatus("status: running\n", "", `{"v1": {"init": {"errors": ["boom"]}}}`)
	if st != "running" || !slices.Equal(errs, []string{"boom"}) {
		t.Errorf("got %q %v", st, errs)
	}
	st, _ = legacyStatus("status: done\n", `{"v1": {"errors": []}}`, "")
	if st != "done" {
		t.Errorf("got %q", st)
	}
}

func TestParseRefusesCutOutput(t *testing.T) {
	raw := recording(nodeA, change{})
	cut := raw[:strings.Index(raw, sectionMark+"files")]
	if _, err := Parse("n1", cut); err == nil || !strings.Contains(err.Error(), `section "files" missing`) || !strings.Contains(err.Error(), "n1") {
		t.Errorf("want an error naming the node and the missing section, got %v", err)
	}
}

func TestSlower(t *testing.T) {
	for _, c := range []struct {
		old, nu float64
		want    bool
	}{{2, 7.5, true}, {2, 6, false}, {10, 19, false}, {10, 20, true}, {-1, 5, true}, {-1, 4.9, false}, {3, -1, false}} {
		if got := Slower(c.old, c.nu); got != c.want {
			t.Errorf("Slower(%v, %v) = %v, want %v", c.old, c.nu, got, c.want)
		}
	}
}

func TestChangedFileHasUnifiedDiff(t *testing.T) {
	a := mustParse(t, nodeA.host, recording(nodeA, change{}))
	b := mustParse(t, nodeB.host, recording(nodeB, change{}))
	f := b.Files["/etc/hosts"]
	f.Text = "127.0.1.1 <fqdn> <hostname>\n127.0.0.1 localhost\n10.1.1.1 extra\n"
	f.SHA256 = "changed"
	b.Files["/etc/hosts"] = f
	r := Diff("o", a, "n", b)
	if len(r.Differences) != 1 || r.Differences[0].Op != OpChanged {
		t.Fatalf("differences %v", changeKeys(r))
	}
	want := "--- OLD /etc/hosts\n+++ NEW /etc/hosts\n@@ -1,2 +1,3 @@\n 127.0.1.1 <fqdn> <hostname>\n 127.0.0.1 localhost\n+10.1.1.1 extra\n"
	if got := r.Differences[0].Diff; got != want {
		t.Errorf("diff:\n%s\nwant:\n%s", got, want)
	}
}

func TestUnifiedDiffHunks(t *testing.T) {
	var a, b []string
	for i := 0; i < 30; i++ {
		a = append(a, "line "+itoa(i))
	}
	b = append(b, a...)
	b[2] = "changed 2"
	b[25] = "changed 25"
	got := UnifiedDiff("f", strings.Join(a, "\n")+"\n", strings.Join(b, "\n")+"\n")
	if strings.Count(got, "@@ -") != 2 || !strings.Contains(got, "-line 2\n+changed 2\n") || !strings.Contains(got, "-line 25\n+changed 25\n") || strings.Contains(got, "line 12") {
		t.Errorf("want two hunks with 3 lines of context, got:\n%s", got)
	}
	if UnifiedDiff("f", "same\n", "same\n") != "" {
		t.Error("equal texts have no diff")
	}
}

func TestRenderOrderAndFormats(t *testing.T) {
	a := mustParse(t, nodeA.host, recording(nodeA, change{}))
	b := mustParse(t, nodeB.host, recording(nodeB, change{extraPackage: true, warning: "apt is unhappy"}))
	b.Modules[0].Seconds = 30 // config-scripts_user... sorted: init-network/config-ssh first
	r := Diff("old.yaml", a, "new.yaml", b)
	var txt bytes.Buffer
	if err := r.WriteText(&txt, false); err != nil {
		t.Fatal(err)
	}
	s := txt.String()
	ri, di, ti := strings.Index(s, "Regressions (1)"), strings.Index(s, "Differences (1)"), strings.Index(s, "Timings")
	if ri < 0 || di < ri || ti < di {
		t.Fatalf("want regressions, then differences, then timings:\n%s", s)
	}
	for _, want := range []string{"! new warning in cloud-init.log: apt is unhappy on <hostname>", "    + tree (2.1.0-1)", "  * init-network/config-ssh", "NEW succeeded; 1 regression(s), 1 difference(s)"} {
		if !strings.Contains(s, want) {
			t.Errorf("text lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "\x1b[") {
		t.Error("colour codes without a terminal")
	}
	var col bytes.Buffer
	r.WriteText(&col, true)
	if !strings.Contains(col.String(), cGreen+"+ tree") {
		t.Error("no colour with color set")
	}
	var md bytes.Buffer
	r.WriteMarkdown(&md)
	for _, want := range []string{"### cloud-init diff: `old.yaml` → `new.yaml`", "| packages | + | `tree` |  | 2.1.0-1 |", "#### Regressions (1)", ":warning: slower"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	var js bytes.Buffer
	r.WriteJSON(&js)
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Schema != ReportVersion || len(back.Differences) != 1 {
		t.Errorf("JSON round trip: %v %+v", err, back)
	}
}

func TestInventoryJSONRoundTripAndSchema(t *testing.T) {
	a := mustParse(t, nodeA.host, recording(nodeA, change{}))
	b, err := a.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Load(b)
	if err != nil {
		t.Fatal(err)
	}
	if r := Diff("a", a, "b", back); len(r.Differences) != 0 {
		t.Errorf("an inventory differs from itself after JSON: %v", changeKeys(r))
	}
	for _, c := range []struct{ in, want string }{
		{`{"node": "x"}`, "field schema: missing"},
		{`{"schema": 2}`, "field schema: version 2, this bcmtest reads version 1"},
		{`not json`, "not JSON"},
	} {
		if _, err := Load([]byte(c.in)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Load(%s): %v, want %q", c.in, err, c.want)
		}
	}
}

func TestUnitValue(t *testing.T) {
	for _, c := range []struct {
		u    Unit
		want string
	}{
		{Unit{Enabled: "enabled", Active: "active"}, "enabled, active"},
		{Unit{Enabled: "disabled"}, "disabled"},
		{Unit{Enabled: "static", Active: "activating"}, "static"},
		{Unit{Enabled: "static", Active: "failed"}, "static, failed"},
		{Unit{Active: "active"}, ""},
		{Unit{Active: "failed"}, "failed"},
	} {
		if got := unitValue(c.u); got != c.want {
			t.Errorf("unitValue(%+v) = %q, want %q", c.u, got, c.want)
		}
	}
}

// readGz reads a gzipped recording from testdata.
func readGz(t *testing.T, name string) string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The collector's output of two real nodes (qemu provider, cloud-init
// 22.4.2) given the same file, vm-smoke.yaml, as `cloudinit diff` wrote
// them: no difference once parsed, and each section read.
func TestRealRecordingsOfTheSameFile(t *testing.T) {
	a := mustParse(t, "old", readGz(t, "smoke-old.collector.txt.gz"))
	b := mustParse(t, "new", readGz(t, "smoke-new.collector.txt.gz"))
	r := Diff("smoke-old.yaml", a, "smoke-new.yaml", b)
	if len(r.Differences) != 0 || len(r.Regressions) != 0 {
		t.Fatalf("want no difference, got %v %v", r.Regressions, changeKeys(r))
	}
	if a.Health.Status != "done" || !a.Health.SchemaValid || a.CloudInitVersion != "22.4.2" {
		t.Errorf("health %+v, version %q", a.Health, a.CloudInitVersion)
	}
	if a.Packages["jq"] == "" || a.Units["ssh.service"].Enabled != "enabled" || a.Users["debian"].Shell == "" || len(a.Sysctls) < 500 || len(a.Modules) < 20 {
		t.Errorf("sections not read: jq %q, ssh %+v, debian %+v, %d sysctls, %d modules", a.Packages["jq"], a.Units["ssh.service"], a.Users["debian"], len(a.Sysctls), len(a.Modules))
	}
	if k := a.Files["/etc/ssh/ssh_host_ed25519_key"]; k.Kind != "private-key" || k.KeyType != "256-bit (ED25519)" || k.Text != "" || k.SHA256 != "" {
		t.Errorf("host key recorded as %+v; want its type only", k)
	}
	if h := a.Files["/etc/hosts"].Text; strings.Contains(h, "cidiff-") || !strings.Contains(h, PFQDN) {
		t.Errorf("/etc/hosts not normalised: %q", h)
	}
}

// A node's own text in a section (a log line that looks like a mark, or
// a mark with another key) stays text when the output is keyed.
func TestKeyedSectionsIgnoreLookalikeMarks(t *testing.T) {
	mark := "@@@bcmtest-inventory-0123abcd:"
	raw := mark + "identity\nhostname=n1\n" +
		mark + "log\nline 1\n" + sectionMark + "files\nfake\n@@@bcmtest-inventory-ffff:packages\nfake too\n" +
		mark + "files\nreal\n" + mark + "end\n"
	secs := Sections(raw)
	if got, want := secs["log"], "line 1\n"+sectionMark+"files\nfake\n@@@bcmtest-inventory-ffff:packages\nfake too\n"; got != want {
		t.Errorf("log = %q, want %q", got, want)
	}
	if secs["files"] != "real\n" {
		t.Errorf("files = %q, want the real section", secs["files"])
	}
	if _, ok := secs["packages"]; ok {
		t.Error("a mark with another key was read as a section")
	}
	// Outputs recorded before keys still read with the plain mark.
	if plain := Sections(sectionMark + "identity\nx\n" + sectionMark + "end\n"); plain["identity"] != "x\n" {
		t.Errorf("plain output: %q", plain)
	}
	if !IsCollectorOutput([]byte(raw)) || !IsCollectorOutput([]byte(sectionMark+"identity\n")) || IsCollectorOutput([]byte(`{"schema":1}`)) {
		t.Error("IsCollectorOutput")
	}
}

// The collector's marks carry the key it is run with, and its timing
// section gives each section's time: its own preamble, run by sh.
func TestCollectorScriptKeysMarksAndTimesSections(t *testing.T) {
	pre, _, ok := strings.Cut(Script, "sec identity\n")
	if !ok {
		t.Fatal("the collector no longer starts with the identity section")
	}
	script := pre + "sec a\necho x\nsec b\nsleep 0.2\nsec timing\nprintf '%s' \"$timing\"\nsec end\n"
	cmd := exec.Command("sh", "-s", "k3y")
	cmd.Stdin = strings.NewReader(script)
	got, err := cmd.Output()
	if err != nil {
		t.Fatalf("running the collector's preamble: %v", err)
	}
	secs := Sections(string(got))
	if secs["a"] != "x\n" || !strings.HasPrefix(string(got), "@@@bcmtest-inventory-k3y:a\n") {
		t.Fatalf("output %q", got)
	}
	ms := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(secs["timing"]), "\n") {
		var name string
		var n int
		if _, err := fmt.Sscanf(l, "%s %d", &name, &n); err != nil {
			t.Fatalf("timing line %q: %v", l, err)
		}
		ms[name] = n
	}
	if len(ms) != 2 || ms["b"] < 150 || ms["a"] > ms["b"] {
		t.Errorf("timings %v: want a and b, b at least 150 ms", ms)
	}
}
