package inventory

import (
	"regexp"
	"sort"
	"strings"
)

// Identity is what makes a node itself: the values Normalise replaces
// wherever they appear.
type Identity struct {
	Hostname   string
	FQDN       string
	MachineID  string
	BootID     string
	InstanceID string
	MACs       []string
	Addrs      []string
}

// The placeholders Normalise puts in place of per-node values.
const (
	PHostname   = "<hostname>"
	PFQDN       = "<fqdn>"
	PMachineID  = "<machine-id>"
	PBootID     = "<boot-id>"
	PInstanceID = "<instance-id>"
	PMAC        = "<mac>"
	PAddr       = "<addr>"
	PTime       = "<time>"
	PPID        = "<pid>"
	POnion      = "<onion>.onion"
	PFingerpr   = "<fingerprint>"
	PCursor     = "<cursor>"
	PUUID       = "<uuid>"
)

var (
	reMAC         = regexp.MustCompile(`(?i)\b[0-9a-f]{2}(:[0-9a-f]{2}){5}\b`)
	reOnion       = regexp.MustCompile(`\b[a-z2-7]{56}\.onion\b|\b[a-z2-7]{16}\.onion\b`)
	reFingerprint = regexp.MustCompile(`\b(SHA256:[A-Za-z0-9+/]{43}=?|MD5(:[0-9a-f]{2}){16})`)
	reSSHKey      = regexp.MustCompile(`\b(ssh-ed25519|ssh-rsa|ssh-dss|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) AAAA[0-9A-Za-z+/]+=*`)
	rePEM         = regexp.MustCompile(`(?s)-----BEGIN ([A-Z0-9 ]+)-----.*?-----END ([A-Z0-9 ]+)-----`)
	reISOTime     = regexp.MustCompile(`\b\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}([,.]\d+)?(Z|[+-]\d{2}:?\d{2}| ?UTC)?`)
	reSyslogTime  = regexp.MustCompile(`\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 0-3]\d \d{2}:\d{2}:\d{2}\b`)
	reDateTime    = regexp.MustCompile(`\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun),? (\d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)|(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 0-3]?\d),? (\d{4} )?\d{2}:\d{2}:\d{2}( \d{4})?( [A-Z]{3,4}| [+-]\d{4})?`)
	reUptime      = regexp.MustCompile(`\b[Uu]p \d+(\.\d+)? seconds\b`)
	reSeconds     = regexp.MustCompile(`\b\d+\.\d+ ?(seconds|secs|s)\b`)
	reEpoch       = regexp.MustCompile(`\b1[6-9]\d{8}(\d{3}|\d{6}|\d{9})?(\.\d+)?\b`)
	rePIDEq       = regexp.MustCompile(`\bpid[=: ]+\d+`)
	rePIDBracket  = regexp.MustCompile(`([A-Za-z0-9_.-]+)\[\d+\]`)
	reCursor      = regexp.MustCompile(`\bs=[0-9a-f]{32};i=[0-9a-f]+;b=[0-9a-f]{32};m=[0-9a-f]+;t=[0-9a-f]+;x=[0-9a-f]+`)
	reUUID        = regexp.MustCompile(`(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b`)
)

// Normalise replaces in s every value that differs between two nodes
// given the same cloud-init file: the node's hostname, FQDN, instance-id
// (and so its instance directory), machine-id, boot ID, MACs and
// addresses; any MAC, onion address, SSH key or fingerprint, PEM block
// (kept as its type: "<PRIVATE KEY present>"), timestamp, uptime, PID,
// journal cursor and UUID.
func Normalise(s string, id Identity) string {
	if s == "" {
		return s
	}
	s = rePEM.ReplaceAllString(s, "<$1 present>")
	s = reSSHKey.ReplaceAllString(s, "$1 <key>")
	s = reFingerprint.ReplaceAllString(s, PFingerpr)
	s = reCursor.ReplaceAllString(s, PCursor)
	s = reOnion.ReplaceAllString(s, POnion)
	// Longest first, so the FQDN is not half-replaced by the hostname.
	var pairs []string
	add := func(v, p string) {
		if len(v) >= 3 && v != "localhost" && v != "localhost.localdomain" && v != "(none)" {
			pairs = append(pairs, v, p)
		}
	}
	add(id.FQDN, PFQDN)
	add(id.InstanceID, PInstanceID)
	add(id.MachineID, PMachineID)
	add(id.BootID, PBootID)
	add(strings.ReplaceAll(id.BootID, "-", ""), PBootID)
	for _, a := range id.Addrs {
		if a != "127.0.0.1" && a != "::1" {
			add(a, PAddr)
		}
	}
	for _, m := range id.MACs {
		if m != "00:00:00:00:00:00" {
			add(m, PMAC)
		}
	}
	add(id.Hostname, PHostname)
	s = replaceLongestFirst(s, pairs)
	s = reMAC.ReplaceAllStringFunc(s, func(m string) string {
		if m == "00:00:00:00:00:00" || strings.EqualFold(m, "ff:ff:ff:ff:ff:ff") {
			return m
		}
		return PMAC
	})
	s = reISOTime.ReplaceAllString(s, PTime)
	s = reDateTime.ReplaceAllString(s, PTime)
	s = reSyslogTime.ReplaceAllString(s, PTime)
	s = reUptime.ReplaceAllString(s, "up <n> seconds")
	s = reSeconds.ReplaceAllString(s, "<n> seconds")
	s = reEpoch.ReplaceAllString(s, PTime)
	s = rePIDEq.ReplaceAllString(s, "pid="+PPID)
	s = rePIDBracket.ReplaceAllString(s, "$1["+PPID+"]")
	s = reUUID.ReplaceAllString(s, PUUID)
	return s
}

// replaceLongestFirst replaces each old value (pairs: old, new, ...) by
// its placeholder, longer values first so no value is half-replaced by
// a shorter one it contains.
func replaceLongestFirst(s string, pairs []string) string {
	type pair struct{ old, new string }
	var ps []pair
	for i := 0; i+1 < len(pairs); i += 2 {
		ps = append(ps, pair{pairs[i], pairs[i+1]})
	}
	sort.SliceStable(ps, func(i, j int) bool { return len(ps[i].old) > len(ps[j].old) })
	args := make([]string, 0, 2*len(ps))
	for _, p := range ps {
		args = append(args, p.old, p.new)
	}
	if len(args) == 0 {
		return s
	}
	return strings.NewReplacer(args...).Replace(s)
}
