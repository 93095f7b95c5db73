package cloudinit

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// checker walks a parsed cloud-config and collects type errors (which
// Validate reports) and warnings (which only Lint reports).
//
// The walk is linear in the size of the file however often aliases repeat a
// node: the contents of a list or mapping are checked once per spec, and a
// later alias to it only has its own kind checked. Without that, a few KB of
// "x: &a [[x], [x], ...]" and "runcmd: [*a, *a, ...]" cost the product of
// the two lengths and listed millions of problems.
type checker struct {
	file string
	// schema is the cloud-init release the file is judged by.
	schema   Schema
	errs     []*Problem
	warnings []*Problem
	// done holds the collections whose contents have been checked.
	done map[visit]bool
	// visits counts value calls, so tests can assert the walk is linear.
	visits int
	// poll ends the walk when the check's context is done.
	poll
}

// visit is one collection checked against one spec.
type visit struct {
	n *yaml.Node
	s *spec
}

func (c *checker) errorf(n *yaml.Node, path, format string, args ...any) {
	c.errs = append(c.errs, &Problem{File: c.file, Line: n.Line, Column: n.Column, Path: path, Rule: fmt.Sprintf(format, args...)})
}

func (c *checker) warnf(n *yaml.Node, path, format string, args ...any) {
	c.warnings = append(c.warnings, &Problem{File: c.file, Line: n.Line, Column: n.Column, Path: path, Rule: fmt.Sprintf(format, args...)})
}

// top checks the document root: it must be a mapping, known keys must have
// the right types, and unknown keys are only warned about, because cloud-init
// ignores them and its own schema check is the authority on them.
func (c *checker) top(root *yaml.Node) {
	if root == nil {
		return // an empty cloud-config is valid: cloud-init treats it as {}
	}
	if k := kindOf(root); k != kindMap {
		c.errorf(root, "", "top level must be a mapping of cloud-config keys (key: value), got %s", k)
		return
	}
	last := map[string]*yaml.Node{}
	c.pairs(deref(root), "", func(key string, kn, vn *yaml.Node) {
		last[key] = vn
		path := pathKey(key)
		if s, ok := typedKeys[key]; ok {
			c.value(vn, s, path)
		}
		known, addedIn := c.schema.known(key)
		v := c.schema.release()
		switch {
		case key == "<<":
			// A YAML merge key; the merged keys are not ours to judge.
		case !known && addedIn != "":
			c.warnf(kn, path, "not known to cloud-init %s (added in cloud-init %s); the guest will ignore it", v, addedIn)
		case known:
			if rule := c.schema.deprecated(key); rule != "" {
				c.warnf(kn, path, "%s", rule)
			}
		case keyHints[key] != "":
			c.warnf(kn, path, "%s: %s", unknownKeyRule, keyHints[key])
		default:
			c.warnf(kn, path, "%s; cloud-init %s will ignore it%s", unknownKeyRule, v, suggest(key, c.schema.keys()))
		}
	})
	if c.err == nil {
		c.harnessRules(last)
	}
}

// value checks one value against its spec. Kind and enum errors are
// reported where the value is used, an alias included; a collection's
// contents are checked only the first time they meet a spec.
func (c *checker) value(n *yaml.Node, s *spec, path string) {
	if c.stop() {
		return
	}
	c.visits++
	k := kindOf(n)
	if s.accept&k == 0 {
		c.errorf(n, path, "must be %s, got %s%s", s.accept, k, typeHint(s.accept, k, deref(n)))
		return
	}
	d := deref(n)
	if k&(kindList|kindMap) != 0 {
		if c.done[visit{d, s}] {
			return
		}
		if c.done == nil {
			c.done = map[visit]bool{}
		}
		c.done[visit{d, s}] = true
	}
	switch k {
	case kindString:
		if len(s.enum) > 0 && !slices.Contains(s.enum, d.Value) {
			c.errorf(n, path, "must be one of %s, got %s", strings.Join(s.enum, ", "), quoteShort(d.Value))
		}
	case kindList:
		if s.items != nil {
			for i, item := range d.Content {
				if c.err != nil {
					return
				}
				c.value(item, s.items, join(path, strconv.Itoa(i)))
			}
		}
	case kindMap:
		c.mapping(n, d, s, path)
	}
}

// mapping checks the keys of a mapping value.
func (c *checker) mapping(n, d *yaml.Node, s *spec, path string) {
	seen := map[string]bool{}
	c.pairs(d, path, func(key string, kn, vn *yaml.Node) {
		seen[key] = true
		if f, ok := s.fields[key]; ok {
			c.value(vn, f, join(path, key))
		} else if s.values != nil {
			c.value(vn, s.values, join(path, pathKey(key)))
		} else if s.closed && key != "<<" {
			c.warnf(kn, join(path, pathKey(key)), "unknown key; cloud-init will ignore it%s", suggest(key, mapKeys(s.fields)))
		}
	})
	for _, r := range s.required {
		if !seen[r] {
			c.errorf(n, path, "missing required key %q", r)
		}
	}
}

// pairs calls fn for each key of a mapping and warns about duplicate keys:
// PyYAML silently keeps the last one, so the first is dead configuration.
func (c *checker) pairs(m *yaml.Node, path string, fn func(key string, kn, vn *yaml.Node)) {
	first := map[string]*yaml.Node{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if c.stop() {
			return
		}
		kn, vn := m.Content[i], m.Content[i+1]
		key := deref(kn).Value
		if prev, dup := first[key]; dup {
			c.warnf(kn, join(path, pathKey(key)), "duplicate key (first at line %d); cloud-init keeps only this one", prev.Line)
		} else {
			first[key] = kn
		}
		fn(key, kn, vn)
	}
}

// typeHint explains the type errors that come from YAML quoting rules.
func typeHint(want, got kind, n *yaml.Node) string {
	switch {
	case got == kindNull:
		return " (the value is empty)"
	case want&kindBool != 0 && got == kindString && yaml11Bool.MatchString(n.Value):
		return " (remove the quotes: a quoted " + strconv.Quote(n.Value) + " is a string)"
	case want&kindString != 0 && got&(kindInt|kindFloat) != 0 && strings.HasPrefix(n.Value, "0"):
		v := short(n.Value)
		return " (quote it, e.g. '" + v + "': YAML reads an unquoted " + v + " as a number)"
	case want&kindString != 0 && got&(kindInt|kindFloat|kindBool|kindDate) != 0:
		return " (quote it to make it a string)"
	}
	return ""
}

// maxShown is how many characters of a key or value a message quotes. A
// message must stay short however long the value: the same long value can
// be named by thousands of aliases, or be the parent of thousands of keys.
const maxShown = 64

// short shortens s to maxShown characters, marking the cut with "...".
func short(s string) string {
	if len(s) <= maxShown {
		return s
	}
	i := 0
	for n := 0; n < maxShown && i < len(s); n++ {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	if i == len(s) {
		return s
	}
	return s[:i] + "..."
}

// quoteShort quotes s for a message, shortened like short.
func quoteShort(s string) string {
	if q := short(s); q != s {
		return strconv.Quote(strings.TrimSuffix(q, "...")) + "..."
	}
	return strconv.Quote(s)
}

// pathKey is a free-form key as it appears in a Path: shortened like short.
func pathKey(key string) string { return short(key) }

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func mapKeys(m map[string]*spec) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// suggest returns "; did you mean X?" for the closest candidate within a
// small edit distance, so a typo like "pakages" points at the fix.
func suggest(key string, candidates []string) string {
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	best, bestD := "", 3
	if len(key) <= 4 {
		bestD = 2
	}
	if utf8.RuneCountInString(key) > maxShown {
		return "" // no key is that long; and the distance would cost len(key) per candidate
	}
	nkey, nlen := norm(key), utf8.RuneCountInString(key)
	for _, c := range candidates {
		if abs(nlen-utf8.RuneCountInString(c)) >= bestD {
			continue // the distance is at least the difference in length
		}
		d := editDistance(nkey, norm(c))
		if d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	return "; did you mean " + best + "?"
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
