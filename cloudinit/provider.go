package cloudinit

import (
	"cmp"
	"context"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Target is what will run the file.
type Target struct {
	Provider string // "qemu" (the embedded provider: Debian 12 image, offline) or "multipass" (Ubuntu with snap)
	// KnownPackage reports whether the VM image's apt lists know a package name; nil skips that check.
	KnownPackage func(name string) bool
}

// ProviderLint returns Problems (with Line, Column, Path and a Rule that says the fix) where the file needs what the target's VMs cannot give.
//
// A file written for Ubuntu clouds often assumes snapd, the snap store,
// PPAs or the network. The qemu provider boots Debian 12 with no route off
// the machine: apt reaches the Debian archive through the harness's cache
// and nothing else, and LXD 5.0 comes preinstalled from Debian's packages.
// Such a file boots, cloud-init logs a failed module, and the test fails
// minutes later; these warnings say so before the VM starts. For qemu they
// cover snap commands in runcmd and bootcmd and the snap module, removing
// the image's lxd or lxd-client, PPAs and apt sources outside the Debian
// archive. For both providers, when t.KnownPackage is set, packages: names
// it does not know (apt would fail the whole install).
//
// Scripts, boothooks and the parts of a MIME archive are checked too. The
// file must be valid: otherwise the error is Validate's. The other errors
// are an unknown provider and ctx's, wrapped with the file name. Like the
// checker, the lint looks at each YAML node once however often aliases name
// it, so a repeated offender is reported once, where its text is.
func ProviderLint(ctx context.Context, name string, data []byte, t Target) ([]Problem, error) {
	if t.Provider != "qemu" && t.Provider != "multipass" {
		return nil, fmt.Errorf("%s: unknown provider %q for the provider lint (want qemu or multipass)", name, t.Provider)
	}
	if _, err := check(ctx, name, data); err != nil {
		return nil, err
	}
	l := &providerLinter{target: t, poll: poll{ctx: ctx}}
	l.file(name, data)
	if l.err != nil {
		return nil, stopped(name, l.err)
	}
	slices.SortStableFunc(l.problems, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	return l.problems, nil
}

type providerLinter struct {
	target   Target
	problems []Problem
	seen     map[*yaml.Node]bool
	poll
}

func (l *providerLinter) qemu() bool { return l.target.Provider == "qemu" }

// file lints the user data by its header; data is valid.
func (l *providerLinter) file(name string, data []byte) {
	first, _, _ := strings.Cut(string(data), "\n")
	first = strings.TrimSuffix(first, "\r")
	switch {
	case strings.HasPrefix(first, "#cloud-config"):
		l.cloudConfigText(name, data)
	case strings.HasPrefix(first, "#!") && isShellScript(first), strings.HasPrefix(first, "#cloud-boothook"):
		l.script(name, data)
	case isMIMEHeader(first):
		// Parts are linted by their type, as cloud-init handles them, and
		// never as archives themselves.
		eachPart(data, func(n int, mediatype string, body []byte) bool {
			part := fmt.Sprintf("%s (MIME part %d)", name, n)
			first, _, _ := strings.Cut(string(body), "\n")
			switch {
			case mediatype == "text/cloud-config":
				l.cloudConfigText(part, body)
			case mediatype == "text/x-shellscript" && isShellScript(strings.TrimSuffix(first, "\r")), mediatype == "text/cloud-boothook":
				l.script(part, body)
			}
			return l.err == nil
		})
	}
}

func (l *providerLinter) cloudConfigText(name string, data []byte) {
	root, err := parseCloudConfig(l.ctx, name, data)
	if err != nil {
		l.err = l.ctx.Err() // valid data parses, unless ctx ended the parse
		return
	}
	l.cloudConfig(name, root)
}

func (l *providerLinter) add(file string, n *yaml.Node, line, col int, p, rule string) {
	if n != nil {
		line, col = n.Line, n.Column
	}
	l.problems = append(l.problems, Problem{File: file, Line: line, Column: col, Path: p, Rule: rule})
}

// first reports whether n is met for the first time.
func (l *providerLinter) first(n *yaml.Node) bool {
	if l.seen[n] {
		return false
	}
	if l.seen == nil {
		l.seen = map[*yaml.Node]bool{}
	}
	l.seen[n] = true
	return true
}

func (l *providerLinter) cloudConfig(name string, root *yaml.Node) {
	m := deref(root)
	if m == nil || m.Kind != yaml.MappingNode {
		return
	}
	keys, last := map[string]*yaml.Node{}, map[string]*yaml.Node{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if l.stop() {
			return
		}
		k := deref(m.Content[i]).Value
		keys[k], last[k] = m.Content[i], m.Content[i+1]
	}
	if l.qemu() {
		if kn := keys["snap"]; kn != nil {
			l.add(name, kn, 0, 0, "snap", "the snap module needs snapd and the snap store; the qemu provider's Debian 12 image has no snapd and its VMs are offline. "+
				"The image already has LXD 5.0 from Debian: drop the snap module (and any snap install lxd) and use the image's lxd")
		}
		w := l.commands(name, nil)
		for _, key := range []string{"bootcmd", "runcmd"} {
			if v := last[key]; v != nil {
				w.list(v, key)
			}
		}
		if l.err = w.err; l.err != nil {
			return
		}
		l.aptSources(name, last["apt"], last["apt_sources"])
	}
	if l.target.KnownPackage != nil {
		l.packages(name, last["packages"])
	}
}

// script lints the commands of a shell script.
func (l *providerLinter) script(name string, data []byte) {
	if !l.qemu() {
		return
	}
	w := l.commands(name, data)
	w.script(data)
	l.err = w.err
}

// commands returns a walker that reports the commands the qemu provider's
// VMs cannot run. data is the script the words' offsets point into, or nil
// for YAML, whose words carry their nodes.
func (l *providerLinter) commands(file string, data []byte) *cmdWalker {
	return &cmdWalker{poll: poll{ctx: l.ctx}, fn: func(site cmdSite, name word, args []word) {
		if rule := qemuCommandRule(name, args); rule != "" {
			line, col := name.pos(data)
			l.add(file, nil, line, col, site.path, rule)
		}
	}}
}

// qemuCommandRule says why a command fails on the qemu provider's VMs, or "".
func qemuCommandRule(name word, args []word) string {
	shown := func() string {
		words := []string{name.text}
		for _, a := range args {
			words = append(words, a.text)
		}
		return quoteShort(strings.Join(words, " "))
	}
	switch name.text {
	case "snap":
		ps := positional(args)
		if len(ps) > 1 && ps[0].text == "install" && slices.ContainsFunc(ps[1:], func(w word) bool { return w.text == "lxd" }) {
			return shown() + ": the qemu provider's Debian 12 image has no snapd and its VMs are offline (no snap store); " +
				"the image already has LXD 5.0 from Debian: drop snap install lxd and use the image's lxd"
		}
		return shown() + ": the qemu provider's Debian 12 image has no snapd and its VMs are offline (no snap store); " +
			"install the Debian package instead, or use the multipass provider"
	case "apt", "apt-get", "aptitude", "dpkg":
		if removesLXD(name.text, args) {
			return shown() + " removes the image's LXD: the qemu provider's Debian 12 image comes with LXD 5.0 from Debian's lxd and lxd-client packages, " +
				"which the harness uses to form the cluster; drop this command"
		}
	case "add-apt-repository", "apt-add-repository":
		return shown() + ": " + ppaRule
	}
	return ""
}

const ppaRule = "PPAs are built for Ubuntu, and the qemu provider's offline Debian 12 VMs reach only the Debian archive " +
	"(deb.debian.org, security.debian.org) through the harness's apt cache; install the Debian package instead"

const outsideRule = "is outside the Debian archive; the qemu provider's offline Debian 12 VMs reach only deb.debian.org and " +
	"security.debian.org through the harness's apt cache: install the Debian package instead, or use the multipass provider"

// removesLXD reports whether an apt, aptitude or dpkg command removes lxd or
// lxd-client.
func removesLXD(prog string, args []word) bool {
	if prog == "dpkg" {
		if !hasOption(args, "rP", "--remove", "--purge") {
			return false
		}
		return slices.ContainsFunc(positional(args, "--root", "--admindir", "--instdir"), func(w word) bool { return isLXD(w.text) })
	}
	ps := positional(args, "-o", "--option", "-c", "--config-file", "-t", "--target-release", "--default-release")
	if len(ps) < 2 {
		return false
	}
	switch ps[0].text {
	case "remove", "purge", "autoremove", "autopurge":
		return slices.ContainsFunc(ps[1:], func(w word) bool { return isLXD(w.text) })
	case "install", "reinstall":
		// "apt-get install lxd-" removes lxd.
		return slices.ContainsFunc(ps[1:], func(w word) bool {
			return strings.HasSuffix(w.text, "-") && isLXD(strings.TrimSuffix(w.text, "-"))
		})
	}
	return false
}

// isLXD reports whether an apt package argument names lxd or lxd-client,
// with an architecture or as a pattern.
func isLXD(pkg string) bool {
	pkg, _, _ = strings.Cut(pkg, ":")
	pkg, _, _ = strings.Cut(pkg, "=")
	for _, target := range []string{"lxd", "lxd-client"} {
		if pkg == target {
			return true
		}
		if strings.ContainsAny(pkg, "*?[") {
			if ok, _ := path.Match(pkg, target); ok {
				return true
			}
		}
	}
	return false
}

// aptSources checks apt: sources (a mapping of entries) and the older
// apt_sources (a list of entries) for PPAs and hosts outside the archive.
func (l *providerLinter) aptSources(file string, apt, old *yaml.Node) {
	if a := deref(apt); a != nil && a.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(a.Content); i += 2 {
			if deref(a.Content[i]).Value != "sources" {
				continue
			}
			s := deref(a.Content[i+1])
			if s == nil || s.Kind != yaml.MappingNode || !l.first(s) {
				continue
			}
			for j := 0; j+1 < len(s.Content); j += 2 {
				if l.stop() {
					return
				}
				l.aptSource(file, s.Content[j+1], join("apt.sources", pathKey(deref(s.Content[j]).Value)))
			}
		}
	}
	if o := deref(old); o != nil && o.Kind == yaml.SequenceNode && l.first(o) {
		for i, e := range o.Content {
			if l.stop() {
				return
			}
			l.aptSource(file, e, join("apt_sources", strconv.Itoa(i)))
		}
	}
}

// aptSource checks one source entry's "source" line.
func (l *providerLinter) aptSource(file string, entry *yaml.Node, p string) {
	e := deref(entry)
	if e == nil || e.Kind != yaml.MappingNode || !l.first(e) {
		return
	}
	var src *yaml.Node
	for i := 0; i+1 < len(e.Content); i += 2 {
		if deref(e.Content[i]).Value == "source" {
			src = deref(e.Content[i+1])
		}
	}
	if src == nil || src.Kind != yaml.ScalarNode {
		return
	}
	p = join(p, "source")
	v := strings.TrimSpace(src.Value)
	if strings.HasPrefix(v, "ppa:") {
		l.add(file, src, 0, 0, p, quoteShort(v)+": "+ppaRule)
		return
	}
	host, ok := debHost(v)
	switch {
	case !ok:
	case strings.HasSuffix(host, ".launchpad.net") || strings.HasSuffix(host, ".launchpadcontent.net"):
		l.add(file, src, 0, 0, p, quoteShort(v)+": "+ppaRule)
	case host != "deb.debian.org" && host != "security.debian.org":
		l.add(file, src, 0, 0, p, quoteShort(v)+" "+outsideRule)
	}
}

// debHost returns the host of a one-line-style source ("deb [options] URI
// suite components"), lower-cased. It is false when the line has no network
// URI, or uses cloud-init's $MIRROR, $PRIMARY or $SECURITY, which become the
// image's own Debian mirror.
func debHost(source string) (string, bool) {
	f := strings.Fields(source)
	if len(f) < 2 || f[0] != "deb" && f[0] != "deb-src" {
		return "", false
	}
	f = f[1:]
	if strings.HasPrefix(f[0], "[") {
		for len(f) > 0 {
			end := strings.HasSuffix(f[0], "]")
			f = f[1:]
			if end {
				break
			}
		}
	}
	if len(f) == 0 || strings.HasPrefix(f[0], "$") {
		return "", false
	}
	u, err := url.Parse(f[0])
	if err != nil || u.Hostname() == "" {
		return "", false
	}
	return strings.ToLower(u.Hostname()), true
}

// packages checks the names in packages: against the image's apt lists. An
// entry is "name", "name=version" or [name, version].
func (l *providerLinter) packages(file string, v *yaml.Node) {
	list := deref(v)
	if list == nil || list.Kind != yaml.SequenceNode || !l.first(list) {
		return
	}
	for i, e := range list.Content {
		if l.stop() {
			return
		}
		d := deref(e)
		if d == nil || !l.first(d) {
			continue
		}
		p := join("packages", strconv.Itoa(i))
		if d.Kind == yaml.SequenceNode {
			if len(d.Content) == 0 {
				continue
			}
			d, p = deref(d.Content[0]), join(p, "0")
		}
		if d == nil || d.Kind != yaml.ScalarNode {
			continue
		}
		pkg, _, _ := strings.Cut(d.Value, "=")
		pkg, _, _ = strings.Cut(strings.TrimSpace(pkg), ":")
		if pkg != "" && !l.target.KnownPackage(pkg) {
			l.add(file, d, 0, 0, p, fmt.Sprintf("package %s is not in the VM image's apt lists, and apt fails the whole install for one unknown name; check the name (Debian and Ubuntu name some packages differently)", quoteShort(pkg)))
		}
	}
}
