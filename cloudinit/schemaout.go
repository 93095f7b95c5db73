package cloudinit

import (
	"context"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ParseSchemaOutput turns the output of `cloud-init schema --config-file F`
// (stdout and stderr together) into Problems, so cloud-init's verdict from
// inside the image is reported the same way as Validate's.
//
// What it assumes, from cloud-init 22.4 (Debian 12) and later releases:
//
//   - Errors follow the marker "Cloud config schema errors: " as one
//     ", "-separated list of "path: message" items. The marker may follow
//     "Error: " on the same line (newer releases) or sit on the line after a
//     bare "Error:" line (cloud-init's util.error format). Paths are dotted
//     ("runcmd.0"); messages are Python reprs and may contain ", " themselves,
//     so a new item starts only where ", " is followed by a path and ": ".
//   - A YAML error is an item whose path is "format-lLINE.cCOL" and whose
//     message ("File F is not valid yaml. ...") is PyYAML's multi-line text;
//     the list runs until a blank line or a line that starts a new section.
//     Its Line and Column are set; other items carry only a Path (cloud-init
//     prints no positions for them; Locate can add them).
//   - "Invalid user-data F" / "Invalid cloud-config F" names the file of the
//     errors that follow; "File F ..." in a format message does too.
//     Otherwise File is empty and the caller knows which file it checked.
//   - "Valid cloud-config: F" and "Valid schema F" mean success. Deprecation
//     lists ("Cloud config schema deprecations: ...") are not errors in any
//     release and are ignored.
//   - `--annotate` output lists errors as "# E1: path: message"; those are
//     parsed too.
//   - Anything else that is not a success (e.g. "Configfile F does not exist",
//     "Cloud-config is not a YAML dict.") becomes one Problem whose Rule is
//     the message, so an unrecognised failure is never mistaken for success.
//     Empty output yields no problems; check the exit status too.
func ParseSchemaOutput(out string) []Problem {
	out = strings.ReplaceAll(out, "\r\n", "\n")
	lines := strings.Split(out, "\n")
	var problems []Problem
	var other []string
	file, valid := "", false
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if m := invalidFile.FindStringSubmatch(line); m != nil {
			file = m[1]
			continue
		}
		if rest, ok := strings.CutPrefix(line, "Valid cloud-config:"); ok {
			file, valid = strings.TrimSpace(rest), true
			continue
		}
		if strings.HasPrefix(line, "Valid schema") {
			valid = true
			continue
		}
		if _, text, ok := strings.Cut(line, schemaErrors); ok {
			for i+1 < len(lines) && !sectionEnd(lines[i+1]) {
				i++
				text += "\n" + strings.TrimRight(lines[i], " \t")
			}
			for _, item := range splitItems(text) {
				problems = append(problems, schemaProblem(item, file))
			}
			continue
		}
		if m := annotatedError.FindStringSubmatch(line); m != nil {
			problems = append(problems, schemaProblem(m[1], file))
			continue
		}
		if msg := strings.TrimSpace(strings.TrimPrefix(line, "Error:")); msg != "" && !isNoise(line) {
			other = append(other, msg)
		}
	}
	if len(problems) > 0 || valid || len(other) == 0 {
		return problems
	}
	return []Problem{{File: file, Rule: "cloud-init schema: " + other[0]}}
}

const schemaErrors = "Cloud config schema errors:"

var (
	invalidFile    = regexp.MustCompile(`^Invalid (?:user-data|vendor-data|vendor2-data|cloud-config|network-config) (\S.*)$`)
	annotatedError = regexp.MustCompile(`^# E\d+: (.+)$`)
	itemPath       = regexp.MustCompile(`^[A-Za-z0-9_/-]+(?:\.[A-Za-z0-9_/-]+)*: `)
	formatPath     = regexp.MustCompile(`^format-l(\d+)\.c(\d+)$`)
	fileInMessage  = regexp.MustCompile(`^File (\S+) `)
	numberedHeader = regexp.MustCompile(`^\d+\. \S+ at `)
)

// sectionEnd reports whether a line ends a ", "-separated error list.
func sectionEnd(line string) bool {
	t := strings.TrimSpace(line)
	if t == "" {
		return true
	}
	for _, p := range []string{"Error:", "Invalid ", "Valid ", "Cloud config schema", "Found cloud-config", "Skipping "} {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	return numberedHeader.MatchString(t)
}

// isNoise reports lines of newer multi-file output that are neither errors
// nor a verdict.
func isNoise(line string) bool {
	return strings.HasPrefix(line, "Found cloud-config") || strings.HasPrefix(line, "Skipping ") ||
		strings.HasPrefix(line, "Cloud config schema deprecations:") || numberedHeader.MatchString(line) ||
		strings.HasPrefix(line, "Error: Invalid schema:")
}

// splitItems splits "a: x, b.0: y" at each ", " that is followed by a path.
func splitItems(text string) []string {
	text = strings.TrimSpace(text)
	if strings.HasPrefix(text, "format-l") {
		// A YAML error is always alone, and its quoted snippet of the
		// file may contain anything, including ", key: ".
		return []string{text}
	}
	var items []string
	start := 0
	for i := 0; i+2 <= len(text); i++ {
		if text[i] == ',' && text[i+1] == ' ' && itemPath.MatchString(text[i+2:]) {
			items = append(items, text[start:i])
			start = i + 2
		}
	}
	items = append(items, text[start:])
	return items
}

// schemaProblem converts one "path: message" item.
func schemaProblem(item, file string) Problem {
	path, msg, ok := strings.Cut(item, ": ")
	if !ok || strings.ContainsAny(path, " \n") {
		return Problem{File: file, Rule: strings.TrimSpace(item)}
	}
	p := Problem{File: file, Path: path, Rule: strings.TrimSpace(msg)}
	if m := formatPath.FindStringSubmatch(path); m != nil {
		p.Path = ""
		p.Line, _ = strconv.Atoi(m[1])
		p.Column, _ = strconv.Atoi(m[2])
		if f := fileInMessage.FindStringSubmatch(p.Rule); f != nil {
			p.File = f[1]
		}
	}
	return p
}

// Locate fills in the line and column of problems that only have a Path, as
// cloud-init's schema output does, by finding that path in data, the file
// that was checked. A path that does not fully resolve points at the deepest
// part that does. Problems without a File get name. data that does not parse
// leaves positions unknown.
func Locate(name string, data []byte, problems []Problem) []Problem {
	out := make([]Problem, len(problems))
	copy(out, problems)
	docs, err := decodeAll(context.Background(), data)
	var root *yaml.Node
	if err == nil && len(docs) > 0 && len(docs[0].Content) > 0 {
		root = docs[0].Content[0]
	}
	for i := range out {
		if out[i].File == "" {
			out[i].File = name
		}
		if out[i].Line == 0 && out[i].Path != "" && root != nil {
			n := findPath(root, strings.Split(out[i].Path, "."))
			out[i].Line, out[i].Column = n.Line, n.Column
		}
	}
	return out
}

// findPath walks a dotted path through mappings and sequences. Keys may
// themselves contain dots ("sources: {my.list: ...}"), so at a mapping the
// longest run of segments naming a key wins.
func findPath(n *yaml.Node, segs []string) *yaml.Node {
	for len(segs) > 0 {
		d := deref(n)
		next, used := (*yaml.Node)(nil), 0
		switch d.Kind {
		case yaml.SequenceNode:
			if i, err := strconv.Atoi(segs[0]); err == nil && i >= 0 && i < len(d.Content) {
				next, used = d.Content[i], 1
			}
		case yaml.MappingNode:
			for j := len(segs); j > 0 && next == nil; j-- {
				key := strings.Join(segs[:j], ".")
				for k := 0; k+1 < len(d.Content); k += 2 {
					if deref(d.Content[k]).Value == key {
						next, used = d.Content[k+1], j
						break
					}
				}
			}
		}
		if next == nil {
			return n
		}
		n, segs = next, segs[used:]
	}
	return n
}
