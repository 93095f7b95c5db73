package cloudinit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// decodeAll parses every YAML document in data. yaml.v3 recovers its own
// panics; the recover here turns any that escape into an error because the
// input is untrusted. A cancelled ctx stops the parse at its next read of
// input; the caller tells that apart by ctx.Err().
func decodeAll(ctx context.Context, data []byte) (docs []*yaml.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: parser failed: %v", r)
		}
	}()
	dec := yaml.NewDecoder(ctxReader{ctx, bytes.NewReader(data)})
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return docs, err
		}
		docs = append(docs, &n)
	}
}

// ctxReader ends a parse once ctx is done. yaml.v3 reads its input 512 bytes
// at a time, so every read is a cheap point to look.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// pollEvery is how many steps a walk takes between looks at its context:
// often enough to stop within a millisecond, rarely enough to cost nothing.
const pollEvery = 4096

// poll lets a long walk stop when its context is done.
type poll struct {
	ctx   context.Context
	steps int
	err   error
}

// stop counts a step and reports whether the walk must end; it looks at the
// context every pollEvery steps and remembers a cancellation.
func (p *poll) stop() bool {
	p.steps++
	if p.err == nil && p.steps%pollEvery == 0 && p.ctx != nil {
		p.err = p.ctx.Err()
	}
	return p.err != nil
}

// stopped is the error a check returns when its context ends it, naming the
// file like every other error here.
func stopped(name string, err error) error {
	return fmt.Errorf("%s: cloud-init check stopped: %w", name, err)
}

// parseCloudConfig parses data as the single YAML document cloud-init expects
// and returns its root value, or nil when the document is empty (cloud-init
// treats an empty cloud-config as {}). Errors are a *Problem, or ctx's error
// wrapped by stopped.
func parseCloudConfig(ctx context.Context, name string, data []byte) (*yaml.Node, error) {
	docs, err := decodeAll(ctx, data)
	if err == nil {
		err = ctx.Err() // a cancelled parse of a short file may not have read at all
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, stopped(name, ctx.Err())
		}
		p := syntaxProblem(ctx, name, data, err)
		if ctx.Err() != nil {
			return nil, stopped(name, ctx.Err())
		}
		return nil, p
	}
	if len(docs) == 0 {
		return nil, nil
	}
	if len(docs) > 1 {
		// PyYAML's safe_load refuses a stream of several documents.
		return nil, &Problem{File: name, Line: docs[1].Line, Column: 1,
			Rule: `yaml: expected a single document, found a second one (remove the "---" line)`}
	}
	pl := &poll{ctx: ctx}
	if p := checkTags(name, docs[0], pl); p != nil {
		return nil, p
	}
	if pl.err != nil {
		return nil, stopped(name, pl.err)
	}
	if len(docs[0].Content) == 0 {
		return nil, nil
	}
	return docs[0].Content[0], nil
}

// checkTags rejects explicit tags PyYAML's SafeLoader cannot construct
// (!foo, !!python/object) and tagged scalars it cannot convert (!!int x):
// either makes cloud-init discard the whole file. Aliases are not followed:
// the node they name is checked where it is defined.
func checkTags(name string, n *yaml.Node, pl *poll) *Problem {
	if pl.stop() {
		return nil
	}
	if n.Kind != yaml.AliasNode && n.Style&yaml.TaggedStyle != 0 {
		tag := n.ShortTag()
		k, ok := tagKinds[tag]
		if !ok {
			return &Problem{File: name, Line: n.Line, Column: n.Column,
				Rule: fmt.Sprintf("yaml: tag %s is not allowed: cloud-init's safe YAML loader rejects it", tag)}
		}
		if n.Kind == yaml.ScalarNode && k&(kindBool|kindInt|kindFloat|kindNull) != 0 && resolvePlain(n.Value) != k {
			return &Problem{File: name, Line: n.Line, Column: n.Column,
				Rule: fmt.Sprintf("yaml: %q cannot be read as %s", n.Value, tag)}
		}
	}
	for _, c := range n.Content {
		if p := checkTags(name, c, pl); p != nil {
			return p
		}
	}
	return nil
}

// yamlLine matches the position yaml.v3 puts in its syntax errors.
var yamlLine = regexp.MustCompile(`^line (\d+): `)

// syntaxProblem turns a yaml.v3 error into a Problem with a line and column.
func syntaxProblem(ctx context.Context, name string, data []byte, err error) *Problem {
	msg, hint := splitYAMLError(err)
	line, col, _ := locateYAMLError(ctx, data, msg, hint)
	return &Problem{File: name, Line: line, Column: col,
		Rule: "yaml: " + msg + syntaxHint(msg, runeAt(data, line, col))}
}

// splitYAMLError separates yaml.v3's message from its "line N:" prefix.
func splitYAMLError(err error) (msg string, line int) {
	msg = strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	return msg, line
}

// locateYAMLError finds where a YAML syntax error is.
//
// yaml.v3 reports no column, and its line is unreliable: for parser errors
// it is the 0-based line of the enclosing construct ("did not find expected
// key" points above the bad line), for scanner errors the 1-based line of the
// problem. So we ask the parser itself: the error is at the end of the
// shortest prefix of the file that already fails with the same message. The
// parser reads left to right, so a prefix that reaches the bad character
// fails just like the whole file, and a shorter one does not.
//
// The search gallops forward over whole lines from just above yaml.v3's line
// (never below the true line, see above) and bisects, then walks the
// characters of the line it found. Each probe is one parse of a prefix; a
// typical file needs a few dozen, so this stays in the millisecond range.
// Walking a line costs a parse of the whole prefix per character, so on a
// large file the line is bisected instead: the search stays O(n log n).
//
// Once ctx is done every probe fails at once, which ends the search quickly;
// the caller then reports the cancellation rather than the position.
// probes counts the parses, for tests.
func locateYAMLError(ctx context.Context, data []byte, msg string, hintLine int) (line, col, probes int) {
	fails := func(end int) bool {
		if ctx.Err() != nil {
			return true
		}
		probes++
		_, err := decodeAll(ctx, data[:end])
		if err == nil {
			return false
		}
		m, _ := splitYAMLError(err)
		return m == msg
	}
	starts := lineStarts(data)
	n := len(starts)
	// lineEnd is the offset just past line k (1-based), newline included.
	lineEnd := func(k int) int {
		if k < n {
			return starts[k]
		}
		return len(data)
	}
	lo := min(max(1, hintLine-1), n)
	prev, k, step := lo-1, lo, 1
	for !fails(lineEnd(k)) {
		if k == n {
			// The whole file failed, so this cannot happen unless the
			// parser is not deterministic; fall back to yaml.v3's line.
			return max(1, hintLine), 0, probes
		}
		prev, k, step = k, min(n, k+step), step*2
	}
	for prev+1 < k {
		mid := (prev + k) / 2
		if fails(lineEnd(mid)) {
			k = mid
		} else {
			prev = mid
		}
	}
	line = k

	start, end := starts[k-1], lineEnd(k)
	var bounds []int // offsets just past each character of the line
	for off := start; off < end; {
		_, size := utf8.DecodeRune(data[off:])
		off += size
		bounds = append(bounds, off)
	}
	i := firstFailing(bounds, fails, len(bounds)*end <= walkBudget)
	col = i + 1
	if strings.HasPrefix(msg, "did not find expected ',' or") {
		// Any prefix inside an unclosed flow collection fails, so the search
		// lands on its first item; the bracket itself is the better pointer.
		text := []rune(string(data[start:bounds[i]]))
		j := len(text) - 2
		for j >= 0 && text[j] == ' ' {
			j--
		}
		if j >= 0 && (text[j] == '[' || text[j] == '{') {
			col = j + 1
		}
	}
	if name, ok := strings.CutPrefix(msg, "unknown anchor '"); ok {
		// The alias only fails once its name is complete; point at its '*'.
		name = strings.TrimSuffix(name, "' referenced")
		text := string(data[start:bounds[i]])
		if j := strings.LastIndex(text, "*"+name); j >= 0 {
			col = utf8.RuneCountInString(text[:j]) + 1
		}
	}
	return line, col, probes
}

// walkBudget is how many bytes the character walk of one line may parse in
// all (characters times prefix length) before firstFailing bisects instead.
// Ordinary files stay well under it.
const walkBudget = 16 << 20

// firstFailing returns the index of the first offset at which fails is true:
// a linear walk for ordinary lines when walk allows it, a bisection for very
// long lines or prefixes so neither a minified line nor a large file can
// make validation quadratic. The last offset is known to fail.
func firstFailing(bounds []int, fails func(int) bool, walk bool) int {
	const linear = 400
	if walk && len(bounds) <= linear {
		for i, b := range bounds[:len(bounds)-1] {
			if fails(b) {
				return i
			}
		}
		return len(bounds) - 1
	}
	lo, hi := -1, len(bounds)-1
	for lo+1 < hi {
		mid := (lo + hi) / 2
		if fails(bounds[mid]) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}

// lineStarts returns the byte offset at which each line begins.
func lineStarts(data []byte) []int {
	starts := []int{0}
	for i, b := range data {
		if b == '\n' && i+1 < len(data) {
			starts = append(starts, i+1)
		}
	}
	return starts
}

// runeAt returns the character at a 1-based line and column, or 0.
func runeAt(data []byte, line, col int) rune {
	starts := lineStarts(data)
	if line < 1 || line > len(starts) || col < 1 {
		return 0
	}
	rest := data[starts[line-1]:]
	for i := 1; len(rest) > 0; i++ {
		r, size := utf8.DecodeRune(rest)
		if i == col {
			return r
		}
		rest = rest[size:]
	}
	return 0
}

// syntaxHint adds the likely fix for the YAML mistakes people make most in
// cloud-config files.
func syntaxHint(msg string, at rune) string {
	switch {
	case at == '\t':
		return " (YAML does not allow tabs for indentation; use spaces)"
	case strings.Contains(msg, "cannot start any token") && (at == '@' || at == '`' || at == '%'):
		return fmt.Sprintf(" (quote values that start with %c)", at)
	case strings.Contains(msg, "mapping values are not allowed"):
		return ` (quote values that contain ": ", or check the indentation)`
	case strings.Contains(msg, "did not find expected key"):
		return " (check the indentation of this line)"
	case strings.Contains(msg, "could not find expected ':'"):
		return " (a key needs a ':' after it; check the indentation)"
	case strings.HasPrefix(msg, "did not find expected ',' or"):
		return " (a bracket opened here is never closed, or items lack a ',')"
	case strings.Contains(msg, "unexpected end of stream"):
		return " (a quote or bracket opened here is never closed)"
	}
	return ""
}
