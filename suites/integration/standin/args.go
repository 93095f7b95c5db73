package main

import (
	"regexp"
	"strings"
)

// option is one command-line option as multipass declares it with Qt's
// QCommandLineOption: its names (long and short, without dashes) and
// whether it takes a value.
type option struct {
	names []string
	value bool
}

// parsed is a command line after option parsing.
type parsed struct {
	values map[string]string // by the option's first name
	set    map[string]bool
	pos    []string
}

func (p parsed) has(name string) bool     { return p.set[name] }
func (p parsed) value(name string) string { return p.values[name] }
func (p parsed) valueOr(name, d string) string {
	if p.set[name] {
		return p.values[name]
	}
	return d
}

// verbosity matches -v, -vv, ... which multipass accepts anywhere.
var verbosity = regexp.MustCompile(`^-v+$`)

// dropVerbosity removes the verbosity flags before the command's own
// parsing, as multipass's global parser consumes them; after "--" they
// belong to the command being run and are kept.
func dropVerbosity(args []string) []string {
	var out []string
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if a == "--verbose" || verbosity.MatchString(a) {
			continue
		}
		out = append(out, a)
	}
	return out
}

// parseArgs parses args the way QCommandLineParser does for multipass:
// options may come before or after positional arguments, "--name value"
// and "--name=value" and "-n value" are the same, and everything after
// "--" is positional. Errors carry Qt's messages and exit code 1.
func parseArgs(args []string, opts ...option) (parsed, error) {
	opts = append(opts, option{names: []string{"help", "h"}})
	byName := map[string]option{}
	for _, o := range opts {
		for _, n := range o.names {
			byName[n] = o
		}
	}
	p := parsed{values: map[string]string{}, set: map[string]bool{}}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			p.pos = append(p.pos, args[i+1:]...)
			return p, nil
		case strings.HasPrefix(a, "--") || (strings.HasPrefix(a, "-") && len(a) > 1):
			dashes := "-"
			name := a[1:]
			if strings.HasPrefix(a, "--") {
				dashes, name = "--", a[2:]
			}
			val, hasVal := "", false
			if k, v, ok := strings.Cut(name, "="); ok && dashes == "--" {
				name, val, hasVal = k, v, true
			}
			o, ok := byName[name]
			if !ok {
				return p, commandLine("Unknown option '%s'.", name)
			}
			key := o.names[0]
			if o.value {
				if !hasVal {
					if i+1 >= len(args) {
						return p, commandLine("Missing value after '%s%s'.", dashes, name)
					}
					i++
					val = args[i]
				}
				p.values[key] = val
			} else if hasVal {
				return p, commandLine("Unexpected value after '%s%s'.", dashes, name)
			}
			p.set[key] = true
		default:
			p.pos = append(p.pos, a)
		}
	}
	return p, nil
}

// Options shared by several commands.
var (
	optFormat = option{names: []string{"format"}, value: true}
	optAll    = option{names: []string{"all"}}
)
