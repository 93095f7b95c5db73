package inventory

import (
	"fmt"
	"sort"
	"strings"
)

// ReportVersion is the version of the Report JSON (`-o json`).
const ReportVersion = 1

// Report is what changed from OLD's node to NEW's.
type Report struct {
	// Schema is ReportVersion.
	Schema int  `json:"schema"`
	Old    Side `json:"old"`
	New    Side `json:"new"`
	// Regressions are what NEW made worse: it failed where OLD did not, a
	// module that failed, new errors, warnings, deprecations, tracebacks,
	// schema or lint problems.
	Regressions []Finding `json:"regressions"`
	// Differences are the other changes of the node's state, by section.
	Differences []Change `json:"differences"`
	// Timings are every module's time on both nodes; Flagged ones are
	// at least SlowFactor times and SlowSeconds slower on NEW.
	Timings []Timing `json:"timings"`
}

// Side is one of the two files and its node's verdict.
type Side struct {
	File             string `json:"file"`
	Node             string `json:"node"`
	CloudInitVersion string `json:"cloud_init_version"`
	Status           string `json:"status"`
	Failed           bool   `json:"failed"`
}

// Finding is one regression.
type Finding struct {
	// Kind is failed, module, error, recoverable, log, schema or lint.
	Kind   string   `json:"kind"`
	What   string   `json:"what"`
	Detail []string `json:"detail,omitempty"`
}

// Change is one difference of the nodes' state.
type Change struct {
	Section string `json:"section"`
	Key     string `json:"key"`
	// Op is added, removed or changed.
	Op  string `json:"op"`
	Old string `json:"old,omitempty"`
	New string `json:"new,omitempty"`
	// Diff is a unified diff of a changed text file.
	Diff string `json:"diff,omitempty"`
}

// Timing is one module's time on both nodes, in seconds (-1: it did not run).
type Timing struct {
	Module  string  `json:"module"`
	Old     float64 `json:"old"`
	New     float64 `json:"new"`
	Flagged bool    `json:"flagged"`
}

// A module is flagged as slower when NEW takes at least SlowFactor times
// as long as OLD and at least SlowSeconds more.
const (
	SlowFactor  = 2.0
	SlowSeconds = 5.0
)

// The ops of a Change.
const (
	OpAdded   = "added"
	OpRemoved = "removed"
	OpChanged = "changed"
)

// Diff compares OLD's inventory with NEW's. oldFile and newFile name the
// cloud-init files in the report.
func Diff(oldFile string, old *Inventory, newFile string, nu *Inventory) Report {
	r := Report{
		Schema:      ReportVersion,
		Old:         side(oldFile, old),
		New:         side(newFile, nu),
		Regressions: []Finding{},
		Differences: []Change{},
		Timings:     []Timing{},
	}
	r.Regressions = healthRegressions(old, nu)
	so, sn := sections(old), sections(nu)
	for _, sec := range sectionNames {
		a, b := so[sec], sn[sec]
		for _, k := range unionKeys(a, b) {
			va, ina := a[k]
			vb, inb := b[k]
			switch {
			case coveredByRegression(sec, k, ina, vb, nu):
				// said once, among the regressions
			case ina && !inb:
				r.Differences = append(r.Differences, Change{Section: sec, Key: k, Op: OpRemoved, Old: va})
			case !ina && inb:
				r.Differences = append(r.Differences, Change{Section: sec, Key: k, Op: OpAdded, New: vb})
			case va != vb:
				c := Change{Section: sec, Key: k, Op: OpChanged, Old: va, New: vb}
				if sec == "files" {
					c.Diff = UnifiedDiff(k, old.Files[k].Text, nu.Files[k].Text)
				}
				r.Differences = append(r.Differences, c)
			}
		}
	}
	r.Timings = timings(old, nu)
	return r
}

// coveredByRegression says a change of health or of a module's result
// is already listed among the regressions.
func coveredByRegression(sec, key string, inOld bool, newValue string, nu *Inventory) bool {
	switch sec {
	case "health":
		switch {
		case key == "status":
			return nu.Health.Failed()
		case key == "schema":
			return newValue == "invalid"
		case strings.HasPrefix(key, "log "), strings.HasPrefix(key, "recoverable "):
			return !inOld && newValue != ""
		}
	case "modules":
		return newValue != "" && newValue != "SUCCESS"
	}
	return false
}

func side(file string, inv *Inventory) Side {
	return Side{File: file, Node: inv.Node, CloudInitVersion: inv.CloudInitVersion, Status: statusText(inv.Health), Failed: inv.Health.Failed()}
}

func statusText(h Health) string {
	if h.ExtendedStatus != "" && h.ExtendedStatus != h.Status {
		return h.ExtendedStatus
	}
	return h.Status
}

// healthRegressions are what NEW's health has that OLD's has not.
func healthRegressions(old, nu *Inventory) []Finding {
	out := []Finding{}
	if nu.Health.Failed() {
		what := fmt.Sprintf("cloud-init on NEW's node ended with status %q", nu.Health.Status)
		if !old.Health.Failed() {
			what += fmt.Sprintf(" where OLD's ended %q: a regression", old.Health.Status)
		} else {
			what += fmt.Sprintf(" (OLD's failed too, with status %q)", old.Health.Status)
		}
		out = append(out, Finding{Kind: "failed", What: what, Detail: nu.Health.Errors})
	}
	oldMods := map[string]string{}
	for _, m := range old.Modules {
		oldMods[m.Name] = m.Result
	}
	for _, m := range nu.Modules {
		if m.Result != "SUCCESS" && m.Result != "" && oldMods[m.Name] != m.Result {
			was := oldMods[m.Name]
			if was == "" {
				was = "did not run"
			}
			out = append(out, Finding{Kind: "module", What: fmt.Sprintf("module %s: %s on NEW (OLD: %s)", m.Name, m.Result, was)})
		}
	}
	for _, e := range minus(nu.Health.Errors, old.Health.Errors) {
		out = append(out, Finding{Kind: "error", What: "new cloud-init error: " + e})
	}
	for _, lvl := range sortedKeys(nu.Health.RecoverableErrors) {
		for _, e := range minus(nu.Health.RecoverableErrors[lvl], old.Health.RecoverableErrors[lvl]) {
			out = append(out, Finding{Kind: "recoverable", What: fmt.Sprintf("new recoverable %s: %s", lvl, e)})
		}
	}
	oldLog := map[LogFinding]bool{}
	for _, f := range old.Health.Log {
		oldLog[f] = true
	}
	for _, f := range nu.Health.Log {
		if !oldLog[f] {
			out = append(out, Finding{Kind: "log", What: fmt.Sprintf("new %s in cloud-init.log: %s", f.Rule, f.Line)})
		}
	}
	if !nu.Health.SchemaValid && old.Health.SchemaValid {
		out = append(out, Finding{Kind: "schema", What: "cloud-init schema --system: NEW's user-data is invalid where OLD's was valid", Detail: nu.Health.SchemaOutput})
	}
	return out
}

func minus(a, b []string) []string {
	in := map[string]bool{}
	for _, s := range b {
		in[s] = true
	}
	var out []string
	for _, s := range a {
		if !in[s] {
			out = append(out, s)
		}
	}
	return out
}

// sectionNames are the compared sections, in report order.
var sectionNames = []string{"health", "modules", "packages", "units", "users", "groups", "sudoers", "sockets", "sysctls", "mounts", "zfs", "apt", "files", "lxd", "tor"}

// sections flattens an inventory into section -> key -> value, the
// form Diff compares.
func sections(inv *Inventory) map[string]map[string]string {
	s := map[string]map[string]string{}
	for _, n := range sectionNames {
		s[n] = map[string]string{}
	}
	h := inv.Health
	s["health"]["status"] = statusText(h)
	s["health"]["schema"] = map[bool]string{true: "valid", false: "invalid"}[h.SchemaValid]
	for _, m := range h.SkippedModules {
		s["health"]["skipped module "+m] = "no applicable config"
	}
	for _, f := range h.Log {
		s["health"]["log "+f.Rule+": "+f.Line] = "present"
	}
	for lvl, msgs := range h.RecoverableErrors {
		for _, m := range msgs {
			s["health"]["recoverable "+lvl+": "+m] = "present"
		}
	}
	for _, m := range inv.Modules {
		s["modules"][m.Name] = m.Result
	}
	for k, v := range inv.Packages {
		s["packages"][k] = v
	}
	for k, u := range inv.Units {
		s["units"][k] = unitValue(u)
	}
	for k, u := range inv.Users {
		s["users"][k] = fmt.Sprintf("uid %d, gid %d, home %s, shell %s, groups %s", u.UID, u.GID, u.Home, u.Shell, strings.Join(u.Groups, ","))
	}
	for k, g := range inv.Groups {
		s["groups"][k] = fmt.Sprintf("gid %d, members %s", g.GID, strings.Join(g.Members, ","))
	}
	for _, l := range inv.Sudoers {
		s["sudoers"][l] = "present"
	}
	for _, so := range inv.Sockets {
		k := so.key()
		if prev, ok := s["sockets"][k]; ok && prev != so.Program {
			s["sockets"][k] = prev + "," + so.Program
		} else {
			s["sockets"][k] = so.Program
		}
	}
	for k, v := range inv.Sysctls {
		s["sysctls"][k] = v
	}
	for _, m := range inv.Mounts {
		k := m.Target
		if _, dup := s["mounts"][k]; dup {
			k += " (" + m.Source + ")"
		}
		s["mounts"][k] = m.Source + " " + m.FSType + " " + m.Options
	}
	for k, v := range inv.ZFS.Pools {
		s["zfs"]["pool "+k] = v
	}
	for k, v := range inv.ZFS.Datasets {
		s["zfs"]["dataset "+k] = v
	}
	for _, l := range inv.Apt.Sources {
		s["apt"]["source "+l] = "present"
	}
	for k, v := range inv.Apt.Keys {
		s["apt"]["key "+k] = v
	}
	for k, f := range inv.Files {
		v := fmt.Sprintf("%s %s %s", f.Mode, f.Owner, f.Kind)
		if f.KeyType != "" {
			v += " " + f.KeyType
		}
		if f.SHA256 != "" {
			v += " sha256:" + f.SHA256[:min(12, len(f.SHA256))]
		}
		s["files"][k] = v
	}
	s["lxd"]["initialised"] = fmt.Sprint(inv.LXD.Initialised)
	for _, p := range inv.LXD.Pools {
		s["lxd"]["pool "+p] = "present"
	}
	for _, p := range inv.LXD.Networks {
		s["lxd"]["network "+p] = "present"
	}
	for _, p := range inv.LXD.Profiles {
		s["lxd"]["profile "+p] = "present"
	}
	s["tor"]["active"] = fmt.Sprint(inv.Tor.Active)
	for _, o := range inv.Tor.OnionServices {
		s["tor"][o] = "present"
	}
	return s
}

func unionKeys(a, b map[string]string) []string {
	m := map[string]bool{}
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// timings pairs each module's time on both nodes.
func timings(old, nu *Inventory) []Timing {
	byName := map[string]*Timing{}
	var names []string
	get := func(n string) *Timing {
		if t, ok := byName[n]; ok {
			return t
		}
		t := &Timing{Module: n, Old: -1, New: -1}
		byName[n] = t
		names = append(names, n)
		return t
	}
	for _, m := range old.Modules {
		get(m.Name).Old = m.Seconds
	}
	for _, m := range nu.Modules {
		get(m.Name).New = m.Seconds
	}
	sort.Strings(names)
	out := make([]Timing, 0, len(names))
	for _, n := range names {
		t := *byName[n]
		t.Flagged = Slower(t.Old, t.New)
		out = append(out, t)
	}
	return out
}

// Slower says NEW's time is at least SlowFactor times and SlowSeconds
// more than OLD's; a module that ran only on NEW counts from zero.
func Slower(old, nu float64) bool {
	if nu < 0 {
		return false
	}
	o := max(old, 0)
	return nu >= SlowFactor*o && nu-o >= SlowSeconds
}

// Failed says NEW's cloud-init failed.
func (r Report) Failed() bool { return r.New.Failed }

// Regression says NEW failed where OLD did not.
func (r Report) Regression() bool { return r.New.Failed && !r.Old.Failed }

// unitValue is a unit's state as compared. A static or generated unit
// (run by a timer, a socket or another unit, not enabled itself) is
// compared only on whether it failed: whether a timer's oneshot happens
// to be running when the collector looks is timing, not a change.
func unitValue(u Unit) string {
	active := u.Active
	if (u.Enabled == "static" || u.Enabled == "" || u.Enabled == "generated" || u.Enabled == "transient") && active != "failed" {
		active = ""
	}
	switch {
	case u.Enabled == "":
		return active
	case active == "":
		return u.Enabled
	}
	return u.Enabled + ", " + active
}
