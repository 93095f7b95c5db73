package cloudinit

import (
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// kind is the type a YAML value has once cloud-init has loaded it. Kinds are
// bits so a spec can accept several.
type kind uint16

const (
	kindNull kind = 1 << iota
	kindBool
	kindInt
	kindFloat
	kindString
	kindDate
	kindList
	kindMap
)

// kindScalar is what cloud-init turns into a command-line word with str():
// runcmd: [[sleep, 5]] works even though 5 is an integer.
const kindScalar = kindString | kindInt | kindFloat | kindBool

var kindNames = []struct {
	k    kind
	name string
}{
	{kindString, "a string"},
	{kindBool, "a boolean"},
	{kindInt, "an integer"},
	{kindFloat, "a float"},
	{kindDate, "a date"},
	{kindNull, "null"},
	{kindList, "a list"},
	{kindMap, "a mapping"},
}

// String names a kind set for messages: "a string or a list".
func (k kind) String() string {
	var parts []string
	if k&kindScalar == kindScalar {
		// Command words: any scalar cloud-init can str().
		parts = append(parts, "a string", "number")
		k &^= kindScalar
	}
	for _, n := range kindNames {
		if k&n.k != 0 {
			parts = append(parts, n.name)
		}
	}
	switch len(parts) {
	case 0:
		return "nothing"
	case 1:
		return parts[0]
	default:
		return strings.Join(parts[:len(parts)-1], ", ") + " or " + parts[len(parts)-1]
	}
}

// YAML 1.1 implicit types as PyYAML's SafeLoader resolves plain scalars.
// cloud-init loads user data with PyYAML, so these decide what a value is;
// yaml.v3 follows YAML 1.2, where "yes" and "0644" are different things.
var (
	yaml11Bool  = regexp.MustCompile(`^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$`)
	yaml11Int   = regexp.MustCompile(`^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$`)
	yaml11Float = regexp.MustCompile(`^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$`)
	yaml11Null  = regexp.MustCompile(`^(?:~|null|Null|NULL|)$`)
	yaml11Date  = regexp.MustCompile(`^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$`)
)

// resolvePlain returns the kind PyYAML gives an unquoted scalar, checking in
// PyYAML's resolver order.
func resolvePlain(v string) kind {
	switch {
	case yaml11Bool.MatchString(v):
		return kindBool
	case yaml11Float.MatchString(v):
		return kindFloat
	case yaml11Int.MatchString(v):
		return kindInt
	case yaml11Null.MatchString(v):
		return kindNull
	case yaml11Date.MatchString(v):
		return kindDate
	}
	return kindString
}

// tagKinds maps the explicit tags PyYAML's SafeLoader can construct to the
// kind they produce. Any other tag makes cloud-init's YAML load fail.
// !!binary becomes bytes, which cloud-init's schema accepts as a string.
var tagKinds = map[string]kind{
	"!!str":       kindString,
	"!!binary":    kindString,
	"!!int":       kindInt,
	"!!float":     kindFloat,
	"!!bool":      kindBool,
	"!!null":      kindNull,
	"!!timestamp": kindDate,
	"!!seq":       kindList,
	"!!omap":      kindList,
	"!!pairs":     kindList,
	"!!map":       kindMap,
	"!!set":       kindMap,
}

// deref follows aliases so an anchored value is checked where it is used.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// kindOf returns the kind cloud-init sees for a node.
func kindOf(n *yaml.Node) kind {
	n = deref(n)
	if n == nil {
		return kindNull
	}
	switch n.Kind {
	case yaml.SequenceNode:
		return kindList
	case yaml.MappingNode:
		return kindMap
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return kindNull
		}
		return kindOf(n.Content[0])
	case yaml.ScalarNode:
	default:
		return kindNull
	}
	if n.Style&yaml.TaggedStyle != 0 {
		if k, ok := tagKinds[n.ShortTag()]; ok {
			return k
		}
		return kindString
	}
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return kindString
	}
	return resolvePlain(n.Value)
}
