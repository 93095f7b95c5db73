package cloudinit

import (
	"strconv"
	"strings"
)

// maxListed is how many problems a report lists before it sums up the rest.
// A badly broken or hostile file can have hundreds of thousands; the first
// hundred say what is wrong, the rest only bury it.
const maxListed = 100

// Problem is one thing wrong with a cloud-init file. Its fields are exported
// so callers and tests can assert on the position and rule rather than on
// message text.
type Problem struct {
	// File is the name the file was loaded or validated under.
	File string
	// Line and Column are 1-based; Column counts characters, not bytes,
	// like yaml.v3 node positions. Zero means unknown.
	Line, Column int
	// Path is the dotted key path of the offending value, in cloud-init's
	// own notation ("write_files.0.path"); empty for file-level problems.
	Path string
	// Rule says what is wrong and, where it helps, how to fix it.
	Rule string
}

// Error formats the problem as "file:line:col: path: rule", the form editors
// and CI log parsers already understand. Unknown parts are left out.
func (p Problem) Error() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
	}
	if p.Line > 0 {
		if p.File == "" {
			b.WriteString("line ")
		} else {
			b.WriteByte(':')
		}
		b.WriteString(strconv.Itoa(p.Line))
		if p.Column > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(p.Column))
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Rule)
	return b.String()
}

// Problems is every problem found in one file. Validate returns it when there
// is more than one, so a user fixes all type errors in one round trip;
// errors.As(err, &p) with p a *Problem still finds the first.
type Problems []*Problem

// Error lists the problems one per line, at most maxListed of them and then
// a last line "and N more".
func (ps Problems) Error() string {
	return strings.Join(listed(len(ps), func(i int) string { return ps[i].Error() }), "\n")
}

// listed returns the first maxListed of n lines and, when there are more, a
// last line "and N more".
func listed(n int, line func(i int) string) []string {
	out := make([]string, 0, min(n, maxListed)+1)
	for i := range min(n, maxListed) {
		out = append(out, line(i))
	}
	if n > maxListed {
		out = append(out, "and "+strconv.Itoa(n-maxListed)+" more")
	}
	return out
}

// Unwrap exposes each problem to errors.Is and errors.As.
func (ps Problems) Unwrap() []error {
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errs
}

// asError returns nil, the single problem, or all of them, so that the
// common single-problem case can be type-asserted directly.
func asError(ps []*Problem) error {
	switch len(ps) {
	case 0:
		return nil
	case 1:
		return ps[0]
	default:
		return Problems(ps)
	}
}
