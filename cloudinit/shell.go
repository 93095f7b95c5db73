package cloudinit

import (
	"path"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// A few rules look at the commands a file runs: runcmd and bootcmd entries,
// shell scripts, "sh -c" strings. They need the command name and its words,
// not a full shell parser: the tokenizer below knows quotes, escapes,
// comments and the operators that separate commands, and nothing else
// (no expansion, no here-documents). A command it cannot see is not
// reported; that is the price of a check that never runs anything.

// word is one shell word. Words from a YAML argv list are a whole node;
// words from shell text carry the node that holds the text, or for a script
// file their byte offset in it.
type word struct {
	text  string
	node  *yaml.Node
	off   int
	whole bool // text is all of node's value
}

// shellCommands splits shell text into simple commands; words carry their
// byte offsets in text.
func shellCommands(text string) [][]word {
	var cmds [][]word
	var cur []word
	var b strings.Builder
	start, inWord := 0, false
	endWord := func() {
		if inWord {
			cur = append(cur, word{text: b.String(), off: start})
			b.Reset()
			inWord = false
		}
	}
	endCmd := func() {
		endWord()
		if len(cur) > 0 {
			cmds = append(cmds, cur)
			cur = nil
		}
	}
	begin := func(i int) {
		if !inWord {
			start, inWord = i, true
		}
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			endWord()
		case c == '\n' || c == ';' || c == '|' || c == '(' || c == ')' || c == '`' || c == '{' && !inWord || c == '}' && !inWord:
			endCmd()
		case c == '&':
			// "2>&1" and "&>" are redirections, not the & operator.
			if i > 0 && (text[i-1] == '>' || text[i-1] == '<') || i+1 < len(text) && text[i+1] == '>' {
				begin(i)
				b.WriteByte(c)
			} else {
				endCmd()
			}
		case c == '#' && !inWord:
			for i+1 < len(text) && text[i+1] != '\n' {
				i++
			}
		case c == '\\':
			begin(i)
			if i+1 < len(text) {
				i++
				if text[i] != '\n' {
					b.WriteByte(text[i])
				}
			}
		case c == '\'':
			begin(i)
			for i++; i < len(text) && text[i] != '\''; i++ {
				b.WriteByte(text[i])
			}
		case c == '"':
			begin(i)
			for i++; i < len(text) && text[i] != '"'; i++ {
				if text[i] == '\\' && i+1 < len(text) && strings.IndexByte("\"\\$`\n", text[i+1]) >= 0 {
					i++
				}
				b.WriteByte(text[i])
			}
		case c == '$' && i+1 < len(text) && text[i+1] == '(':
			endCmd()
			i++
		default:
			begin(i)
			b.WriteByte(c)
		}
	}
	endCmd()
	return cmds
}

// prefixWords are words that run the rest of the line as a command.
var prefixWords = map[string]bool{
	"if": true, "then": true, "else": true, "elif": true, "do": true, "while": true, "until": true,
	"!": true, "time": true, "exec": true, "command": true, "nohup": true, "sudo": true, "doas": true,
	"env": true, "nice": true, "ionice": true, "setsid": true,
}

// sudoArgOptions are the sudo options that take an argument.
var sudoArgOptions = map[string]bool{"-u": true, "-g": true, "-h": true, "-p": true, "-C": true, "-D": true, "-R": true, "-T": true, "-U": true, "-r": true, "-t": true}

// program returns the program a simple command runs (its base name) and
// the words after it, skipping variable assignments and wrappers such as
// sudo or env and their options.
func program(words []word) (name word, args []word, ok bool) {
	for i := 0; i < len(words); i++ {
		w := words[i].text
		switch {
		case isAssignment(w):
		case prefixWords[w]:
			// Options of the wrapper: sudo -u root, env -i, nice -n 5.
			for i+1 < len(words) && strings.HasPrefix(words[i+1].text, "-") {
				i++
				if (w == "sudo" && sudoArgOptions[words[i].text]) || (w == "nice" && words[i].text == "-n") {
					i++
				}
			}
		default:
			name = words[i]
			name.text = path.Base(w)
			return name, words[i+1:], true
		}
	}
	return word{}, nil, false
}

func isAssignment(w string) bool {
	eq := strings.IndexByte(w, '=')
	if eq <= 0 {
		return false
	}
	for i, c := range w[:eq] {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// shells are the interpreters whose "-c" argument and scripts are shell text.
var shells = map[string]bool{"sh": true, "bash": true, "dash": true, "ash": true, "ksh": true, "zsh": true}

// shellScript returns the "-c" script of a shell command such as
// sh -ec "...", or false.
func shellScript(name word, args []word) (word, bool) {
	if !shells[name.text] {
		return word{}, false
	}
	for i, a := range args {
		if !strings.HasPrefix(a.text, "-") || strings.HasPrefix(a.text, "--") {
			return word{}, false
		}
		if strings.Contains(a.text, "c") && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return word{}, false
}

// positional returns the words that are not options. A word after "--" is
// positional even when it starts with "-"; argOpts lists options that take
// the next word as their value.
func positional(args []word, argOpts ...string) []word {
	var out []word
	for i := 0; i < len(args); i++ {
		a := args[i].text
		switch {
		case a == "--":
			return append(out, args[i+1:]...)
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for _, o := range argOpts {
				if a == o {
					i++
				}
			}
		case strings.HasPrefix(a, ">") || strings.HasPrefix(a, "<") || len(a) > 1 && a[0] >= '0' && a[0] <= '9' && (a[1] == '>' || a[1] == '<'):
			// A redirection.
		default:
			out = append(out, args[i])
		}
	}
	return out
}

// hasOption reports whether args hold one of the long options, or a short
// option cluster ("-aL") holding one of the letters in short.
func hasOption(args []word, short string, long ...string) bool {
	for _, a := range args {
		t := a.text
		switch {
		case t == "--":
			return false
		case strings.HasPrefix(t, "--"):
			for _, l := range long {
				if t == l {
					return true
				}
			}
		case strings.HasPrefix(t, "-") && short != "" && strings.ContainsAny(t[1:], short):
			return true
		}
	}
	return false
}

// cmdSite is where a command was found: the YAML path of its entry and the
// words, positioned for a Problem.
type cmdSite struct {
	path  string
	words []word
}

// cmdWalker finds the commands of runcmd and bootcmd style lists. Like the
// checker, it looks at each YAML node once however often aliases name it,
// so a command repeated by aliases is reported once.
type cmdWalker struct {
	poll
	seen map[*yaml.Node]bool
	fn   func(site cmdSite, name word, args []word)
}

func (w *cmdWalker) first(n *yaml.Node) bool {
	if w.seen[n] {
		return false
	}
	if w.seen == nil {
		w.seen = map[*yaml.Node]bool{}
	}
	w.seen[n] = true
	return true
}

// list walks the entries of a command list such as runcmd.
func (w *cmdWalker) list(n *yaml.Node, p string) {
	d := deref(n)
	if d == nil || d.Kind != yaml.SequenceNode || !w.first(d) {
		return
	}
	for i, e := range d.Content {
		if w.stop() {
			return
		}
		w.entry(e, join(p, strconv.Itoa(i)))
	}
}

// entry walks one command: shell text, or an argv list.
func (w *cmdWalker) entry(e *yaml.Node, p string) {
	d := deref(e)
	if d == nil || !w.first(d) {
		return
	}
	switch d.Kind {
	case yaml.ScalarNode:
		w.text(d, p)
	case yaml.SequenceNode:
		var words []word
		for _, item := range d.Content {
			if w.stop() {
				return
			}
			it := deref(item)
			if it == nil || it.Kind != yaml.ScalarNode {
				words = append(words, word{node: it})
				continue
			}
			words = append(words, word{text: it.Value, node: it, whole: true})
		}
		w.words(cmdSite{p, words}, 0)
	}
}

// text walks the commands of a shell string held in a YAML scalar; they are
// all reported at the scalar.
func (w *cmdWalker) text(n *yaml.Node, p string) {
	for _, ws := range shellCommands(n.Value) {
		for i := range ws {
			ws[i].node = n
		}
		w.words(cmdSite{p, ws}, 0)
	}
}

// maxNesting bounds how deep "sh -c" scripts inside "sh -c" scripts are
// followed; each level re-reads a part of the level above.
const maxNesting = 3

// words reports one simple command, and the commands of its "sh -c" script.
// Those are positioned where the script is: its node, or its offset.
func (w *cmdWalker) words(site cmdSite, depth int) {
	if w.stop() {
		return
	}
	name, args, ok := program(site.words)
	if !ok {
		return
	}
	w.fn(site, name, args)
	s, ok := shellScript(name, args)
	if !ok || depth >= maxNesting || s.whole && !w.first(s.node) {
		return
	}
	for _, ws := range shellCommands(s.text) {
		for i := range ws {
			ws[i].node, ws[i].off, ws[i].whole = s.node, s.off, false
		}
		w.words(cmdSite{site.path, ws}, depth+1)
	}
}

// script walks the commands of a shell script file; words carry offsets
// into data.
func (w *cmdWalker) script(data []byte) {
	for _, ws := range shellCommands(string(data)) {
		if w.stop() {
			return
		}
		w.words(cmdSite{"", ws}, 0)
	}
}

// pos returns a word's line and column: its node's, or its offset's in data.
func (wd word) pos(data []byte) (line, col int) {
	if wd.node != nil {
		return wd.node.Line, wd.node.Column
	}
	return position(data, min(wd.off, len(data)))
}

// isShellScript reports whether a #! line names a shell, directly or
// through env.
func isShellScript(first string) bool {
	f := strings.Fields(strings.TrimPrefix(first, "#!"))
	if len(f) == 0 {
		return false
	}
	prog := path.Base(f[0])
	if prog == "env" && len(f) > 1 {
		prog = path.Base(f[1])
	}
	return shells[prog]
}
