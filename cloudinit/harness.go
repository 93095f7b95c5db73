package cloudinit

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// HarnessUser is the account the harness logs in to every VM as, over SSH
// with passwordless sudo. The harness creates it through vendor-data on
// each boot, beside the user's file; a user file that removes or locks it,
// or turns vendor-data off, leaves the harness unable to reach the VM.
const HarnessUser = "bcmtest"

// lockedOutRule is the rule for a command that deletes or locks HarnessUser.
func lockedOutRule(what, cmd string) string {
	return fmt.Sprintf("%s %s the harness's user %s: the harness logs in to every VM as %s over SSH and would be locked out; leave that user alone",
		cmd, what, HarnessUser, HarnessUser)
}

// lockout returns "deletes" or "locks" when a command does that to
// HarnessUser, and "" otherwise.
func lockout(name word, args []word) string {
	is := func(ws []word, i int) bool { return i >= 0 && i < len(ws) && ws[i].text == HarnessUser }
	switch name.text {
	case "userdel":
		ps := positional(args, "-R", "--root", "-P", "--prefix")
		if is(ps, len(ps)-1) {
			return "deletes"
		}
	case "deluser":
		// deluser USER [GROUP]; with --group it deletes a group instead.
		if hasOption(args, "", "--group") {
			return ""
		}
		if ps := positional(args, "--conf", "-c", "--backup-to"); is(ps, 0) {
			return "deletes"
		}
	case "usermod":
		ps := positional(args, "-c", "--comment", "-d", "--home", "-e", "--expiredate", "-f", "--inactive",
			"-g", "--gid", "-G", "--groups", "-l", "--login", "-p", "--password", "-s", "--shell", "-u", "--uid",
			"-R", "--root", "-P", "--prefix", "-Z", "--selinux-user")
		if hasOption(args, "L", "--lock") && is(ps, len(ps)-1) {
			return "locks"
		}
	case "passwd":
		ps := positional(args, "-r", "--repository", "-R", "--root", "-P", "--prefix", "-n", "--mindays",
			"-x", "--maxdays", "-w", "--warndays", "-i", "--inactive")
		if hasOption(args, "l", "--lock") && is(ps, len(ps)-1) {
			return "locks"
		}
	}
	return ""
}

// harnessRules reports, as errors, what in a cloud-config locks the harness
// out of its VMs. last holds the value of each top-level key as cloud-init
// sees it (the last of duplicates).
func (c *checker) harnessRules(last map[string]*yaml.Node) {
	if v := last["vendor_data"]; v != nil {
		c.vendorData(v)
	}
	w := &cmdWalker{poll: poll{ctx: c.ctx}, fn: func(site cmdSite, name word, args []word) {
		if what := lockout(name, args); what != "" {
			line, col := name.pos(nil)
			c.errs = append(c.errs, &Problem{File: c.file, Line: line, Column: col, Path: site.path,
				Rule: lockedOutRule(what, quoteShort(name.text+" "+HarnessUser))})
		}
	}}
	for _, key := range []string{"bootcmd", "runcmd"} {
		if v := last[key]; v != nil {
			w.list(v, key)
		}
	}
	if w.err != nil && c.err == nil {
		c.err = w.err
	}
}

// vendorData reports vendor_data: {enabled: false}. cloud-init merges the
// user's vendor_data over its default {enabled: true} and then consumes
// vendor-data only if util.is_true(enabled): a boolean true, or a string
// such as "true", "yes", "on" or "1". Anything else turns it off.
func (c *checker) vendorData(v *yaml.Node) {
	d := deref(v)
	if d == nil || d.Kind != yaml.MappingNode {
		return // a type error already
	}
	var enabled *yaml.Node
	for i := 0; i+1 < len(d.Content); i += 2 {
		if deref(d.Content[i]).Value == "enabled" {
			enabled = d.Content[i+1]
		}
	}
	if enabled == nil {
		return
	}
	k := kindOf(enabled)
	if k&(kindBool|kindString) == 0 || isTrue(deref(enabled), k) {
		return // a type error, or vendor-data stays on
	}
	c.errorf(enabled, "vendor_data.enabled",
		"turns vendor-data off, and the harness delivers its own SSH access (user %s and its key) through vendor-data: the harness would be locked out of every VM; remove vendor_data.enabled",
		HarnessUser)
}

// isTrue is cloud-init's util.is_true for a scalar of kind k.
func isTrue(n *yaml.Node, k kind) bool {
	switch k {
	case kindBool:
		return strings.EqualFold(n.Value, "true") || strings.EqualFold(n.Value, "yes") || strings.EqualFold(n.Value, "on")
	case kindString:
		switch strings.ToLower(strings.TrimSpace(n.Value)) {
		case "true", "1", "on", "yes":
			return true
		}
	}
	return false
}

// scriptLockouts checks a shell script (a #! file or a boothook) for commands
// that delete or lock HarnessUser.
func scriptLockouts(ctx context.Context, name string, data []byte) ([]*Problem, error) {
	var errs []*Problem
	w := &cmdWalker{poll: poll{ctx: ctx}, fn: func(_ cmdSite, cmd word, args []word) {
		if what := lockout(cmd, args); what != "" {
			line, col := cmd.pos(data)
			errs = append(errs, &Problem{File: name, Line: line, Column: col,
				Rule: lockedOutRule(what, strconv.Quote(cmd.text+" "+HarnessUser))})
		}
	}}
	w.script(data)
	if w.err != nil {
		return nil, stopped(name, w.err)
	}
	return errs, nil
}
