package inventory

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// SectionMark starts each section of the collector's output; the output
// starts with it. Collect runs the collector with a random key, and its
// marks are then SectionMark's prefix, "-KEY", and the colon: a line a
// node's cloud-init wrote into a log the collector prints cannot pass for
// a section without knowing the key.
const SectionMark = "@@@bcmtest-inventory:"

const sectionMark = SectionMark

// textCap is the largest text file whose content is kept for a diff.
const textCap = 64 << 10

// marker is the section mark of raw: the keyed one its first line
// starts with, else the plain one (recorded outputs before keys).
func marker(raw string) string {
	base := strings.TrimSuffix(SectionMark, ":")
	if rest, ok := strings.CutPrefix(raw, base+"-"); ok {
		if key, _, ok := strings.Cut(rest, ":"); ok && key != "" && !strings.ContainsAny(key, "\n ") {
			return base + "-" + key + ":"
		}
	}
	return SectionMark
}

// IsCollectorOutput says whether data is the collector's raw output
// (keyed or not) rather than a saved inventory.
func IsCollectorOutput(data []byte) bool {
	return strings.HasPrefix(string(data), strings.TrimSuffix(SectionMark, ":"))
}

// Sections splits the collector's output into its sections by name.
func Sections(raw string) map[string]string {
	mark := marker(raw)
	out := map[string]string{}
	name := ""
	var b strings.Builder
	flush := func() {
		if name != "" {
			out[name] = b.String()
		}
		b.Reset()
	}
	for _, line := range strings.SplitAfter(raw, "\n") {
		if rest, ok := strings.CutPrefix(line, mark); ok {
			flush()
			name = strings.TrimSpace(rest)
			continue
		}
		b.WriteString(line)
	}
	flush()
	return out
}

// Parse reads the collector's output of node into a normalised
// inventory. It fails only when the output is not the collector's
// (a section missing, as when the script was cut short).
func Parse(node, raw string) (*Inventory, error) {
	secs := Sections(raw)
	for _, want := range []string{"identity", "status", "packages", "files", "end"} {
		if _, ok := secs[want]; !ok {
			return nil, fmt.Errorf("parsing the inventory of %s: section %q missing from the collector's output (%d bytes); was it cut short?", node, want, len(raw))
		}
	}
	id, version := parseIdentity(secs["identity"])
	n := func(s string) string { return Normalise(s, id) }
	inv := &Inventory{Schema: SchemaVersion, Node: node, CloudInitVersion: version}
	inv.Health = parseHealth(secs, n)
	inv.Modules = parseAnalyze(secs["analyze"])
	inv.Packages = parsePackages(secs["packages"])
	inv.Units = parseUnits(secs["unit_files"], secs["units"], n)
	inv.Users, inv.Groups = parseAccounts(secs["passwd"], secs["group"])
	inv.Sudoers = nonEmptyLines(secs["sudoers"], n)
	inv.Sockets = parseSockets(secs["sockets"], n)
	inv.Sysctls = parseSysctls(secs["sysctl"], n)
	inv.Mounts = parseMounts(secs["mounts"], n)
	inv.ZFS = parseZFS(secs["zpools"], secs["datasets"], n)
	inv.Apt = parseApt(secs["apt_sources"], secs["apt_keys"], n)
	inv.Files = parseFiles(secs["files"], n)
	inv.LXD = parseLXD(secs["lxd"])
	inv.Tor = parseTor(secs["tor"], n)
	return inv, nil
}

// parseIdentity reads the node's own values, which Normalise replaces.
func parseIdentity(s string) (Identity, string) {
	var id Identity
	version := ""
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "hostname":
			id.Hostname = v
		case "fqdn":
			id.FQDN = v
		case "machine_id":
			id.MachineID = v
		case "boot_id":
			id.BootID = v
		case "instance_id":
			id.InstanceID = v
		case "mac":
			id.MACs = append(id.MACs, v)
		case "addr":
			id.Addrs = append(id.Addrs, v)
		case "cloud_init_version":
			version = v
		}
	}
	return id, version
}

// nonEmptyLines are s's lines, normalised, without empty ones.
func nonEmptyLines(s string, n func(string) string) []string {
	out := []string{}
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, n(strings.TrimRight(l, " \t\r")))
		}
	}
	return out
}

// analyzeEvent is one event of `cloud-init analyze dump`.
type analyzeEvent struct {
	Name      string  `json:"name"`
	EventType string  `json:"event_type"`
	Timestamp float64 `json:"timestamp"`
	Result    string  `json:"result"`
}

// parseAnalyze pairs each module's start and finish events.
func parseAnalyze(s string) []Module {
	var evs []analyzeEvent
	if err := json.Unmarshal([]byte(strings.TrimSpace(s)), &evs); err != nil {
		return []Module{}
	}
	start := map[string]float64{}
	byName := map[string]Module{}
	for _, e := range evs {
		if !strings.Contains(e.Name, "/") {
			continue // a stage, whose time is the sum of its modules'
		}
		switch e.EventType {
		case "start":
			start[e.Name] = e.Timestamp
		case "finish":
			m := Module{Name: e.Name, Result: e.Result}
			if t, ok := start[e.Name]; ok {
				m.Seconds = roundMS(e.Timestamp - t)
			}
			byName[e.Name] = m
		}
	}
	out := make([]Module, 0, len(byName))
	for _, k := range sortedKeys(byName) {
		out = append(out, byName[k])
	}
	return out
}

func roundMS(f float64) float64 {
	return float64(int64(f*1000+0.5)) / 1000
}

func parsePackages(s string) map[string]string {
	out := map[string]string{}
	for _, l := range strings.Split(s, "\n") {
		f := strings.Split(l, "\t")
		if len(f) != 3 || !strings.HasPrefix(f[0], "i") || len(f[0]) < 2 || f[0][1] != 'i' {
			continue // only installed ones, not config-files or half-installed
		}
		out[f[1]] = f[2]
	}
	return out
}

func parseUnits(files, units string, n func(string) string) map[string]Unit {
	out := map[string]Unit{}
	for _, l := range strings.Split(files, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		name := n(f[0])
		u := out[name]
		u.Enabled = f[1]
		out[name] = u
	}
	for _, l := range strings.Split(units, "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(l), "●"))
		if len(f) < 4 || f[1] == "not-found" {
			continue
		}
		name := n(f[0])
		u := out[name]
		u.Active = f[2]
		out[name] = u
	}
	return out
}

func parseAccounts(passwd, group string) (map[string]User, map[string]Group) {
	users := map[string]User{}
	for _, l := range strings.Split(passwd, "\n") {
		f := strings.Split(l, ":")
		if len(f) < 7 {
			continue
		}
		uid, _ := strconv.Atoi(f[2])
		gid, _ := strconv.Atoi(f[3])
		users[f[0]] = User{UID: uid, GID: gid, Home: f[5], Shell: f[6], Groups: []string{}}
	}
	groups := map[string]Group{}
	for _, l := range strings.Split(group, "\n") {
		f := strings.Split(l, ":")
		if len(f) < 4 {
			continue
		}
		gid, _ := strconv.Atoi(f[2])
		members := []string{}
		for _, m := range strings.Split(f[3], ",") {
			if m = strings.TrimSpace(m); m != "" {
				members = append(members, m)
				if u, ok := users[m]; ok {
					u.Groups = append(u.Groups, f[0])
					users[m] = u
				}
			}
		}
		sort.Strings(members)
		if u, ok := users[f[0]]; ok && u.GID == gid && (len(members) == 0 || len(members) == 1 && members[0] == f[0]) {
			continue // the user's private group: shown with the user
		}
		groups[f[0]] = Group{GID: gid, Members: members}
	}
	for k, u := range users {
		sort.Strings(u.Groups)
		users[k] = u
	}
	return users, groups
}

var reProgram = regexp.MustCompile(`\(\("([^"]+)"`)

// ephemeralPort is where Linux's ephemeral range starts: a UDP socket
// bound there (dhclient's) gets a random port on every boot.
const ephemeralPort = 32768

func parseSockets(s string, n func(string) string) []Socket {
	seen := map[Socket]bool{}
	out := []Socket{}
	for _, l := range strings.Split(s, "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		local := f[4]
		i := strings.LastIndex(local, ":")
		if i < 0 {
			continue
		}
		so := Socket{Proto: f[0], Addr: n(local[:i]), Port: local[i+1:]}
		if m := reProgram.FindStringSubmatch(l); m != nil {
			so.Program = m[1]
		}
		if p, err := strconv.Atoi(so.Port); err == nil && so.Proto == "udp" && p >= ephemeralPort {
			so.Port = "<ephemeral>"
		}
		if !seen[so] {
			seen[so] = true
			out = append(out, so)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}

func (s Socket) key() string { return s.Proto + " " + s.Addr + ":" + s.Port }

// volatileSysctl are kernel parameters that change on their own or are
// random per boot: counters, random values, the hostname, ZFS's SPL
// memory counters (kernel.spl.kmem.*).
var volatileSysctl = regexp.MustCompile(`^(kernel\.random\.|kernel\.hostname$|kernel\.domainname$|kernel\.ns_last_pid$|kernel\.pty\.nr$|kernel\.perf_event_max_sample_rate$|kernel\.tainted$|fs\.(dentry-state|file-nr|inode-nr|inode-state|aio-nr)$|fs\.quota\.|net\.netfilter\.nf_conntrack_count$|net\.core\.netdev_rss_key$|net\.ipv4\.tcp_fastopen_key$|kernel\.sched_domain\.|dev\.cdrom\.info$|net\.ipv6\.conf\.[^.]+\.stable_secret$|fs\.binfmt_misc\.|kernel\.spl\.kmem\.)`)

func parseSysctls(s string, n func(string) string) map[string]string {
	out := map[string]string{}
	for _, l := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(l, " = ")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		if volatileSysctl.MatchString(k) {
			continue
		}
		out[n(k)] = n(strings.TrimSpace(v))
	}
	return out
}

func parseMounts(s string, n func(string) string) []Mount {
	out := []Mount{}
	for _, l := range strings.Split(s, "\n") {
		f := strings.Fields(l)
		if len(f) < 4 || f[2] == "zfs" {
			continue
		}
		out = append(out, Mount{Target: n(f[1]), Source: n(f[0]), FSType: f[2], Options: n(f[3])})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Target < out[j].Target })
	return out
}

func parseZFS(pools, datasets string, n func(string) string) ZFS {
	z := ZFS{Pools: map[string]string{}, Datasets: map[string]string{}}
	for _, l := range strings.Split(pools, "\n") {
		f := strings.Split(l, "\t")
		if len(f) >= 2 && f[0] != "" {
			z.Pools[f[0]] = n(strings.Join(f[1:], " "))
		}
	}
	for _, l := range strings.Split(datasets, "\n") {
		f := strings.Split(l, "\t")
		if len(f) >= 2 && f[0] != "" {
			z.Datasets[f[0]] = n(strings.Join(f[1:], " "))
		}
	}
	return z
}

func parseApt(sources, keys string, n func(string) string) Apt {
	a := Apt{Sources: nonEmptyLines(sources, n), Keys: map[string]string{}}
	for _, l := range strings.Split(keys, "\n") {
		if f, sum, ok := strings.Cut(l, "\t"); ok {
			a.Keys[f] = sum
		}
	}
	return a
}

func parseFiles(s string, n func(string) string) map[string]File {
	out := map[string]File{}
	for _, l := range strings.Split(s, "\n") {
		f := strings.SplitN(l, "\t", 5)
		if len(f) != 5 || f[0] != "file" {
			continue
		}
		meta := strings.Fields(f[2])
		if len(meta) < 2 {
			continue
		}
		fi := File{Mode: meta[0], Owner: meta[1], Kind: f[3]}
		switch f[3] {
		case "text":
			raw, err := base64.StdEncoding.DecodeString(f[4])
			if err != nil {
				fi.Kind, fi.SHA256 = "binary", "undecodable"
				break
			}
			txt := n(string(raw))
			sum := sha256.Sum256([]byte(txt))
			fi.SHA256 = hex.EncodeToString(sum[:])
			if len(txt) <= textCap {
				fi.Text = txt
			}
		case "private-key":
			fi.KeyType = n(f[4])
		default:
			fi.SHA256 = f[4]
		}
		out[n(f[1])] = fi
	}
	return out
}

func parseLXD(s string) LXD {
	l := LXD{Pools: []string{}, Networks: []string{}, Profiles: []string{}}
	for _, line := range strings.Split(s, "\n") {
		f := strings.Split(line, ",")
		switch {
		case f[0] == "pool" && len(f) >= 3:
			l.Pools = append(l.Pools, f[1]+" ("+f[2]+")")
		case f[0] == "network" && len(f) >= 4:
			l.Networks = append(l.Networks, f[1]+" ("+f[2]+", managed "+strings.ToLower(f[3])+")")
			if strings.EqualFold(f[3], "YES") || strings.EqualFold(f[3], "true") {
				l.Initialised = true
			}
		case f[0] == "profile" && len(f) >= 2:
			l.Profiles = append(l.Profiles, f[1])
		}
	}
	if len(l.Pools) > 0 {
		l.Initialised = true
	}
	sort.Strings(l.Pools)
	sort.Strings(l.Networks)
	sort.Strings(l.Profiles)
	return l
}

func parseTor(s string, n func(string) string) Tor {
	t := Tor{OnionServices: []string{}}
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "":
		case strings.HasPrefix(l, "active="):
			t.Active = strings.TrimPrefix(l, "active=") == "active"
		case strings.HasPrefix(l, "hostname "):
			f := strings.Fields(l)
			if len(f) >= 2 {
				t.OnionServices = append(t.OnionServices, f[1]+": onion address present")
			}
		default:
			t.OnionServices = append(t.OnionServices, n(strings.Join(strings.Fields(l), " ")))
		}
	}
	return t
}
