package multipass

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

// The fake multipass is this test binary, run through a symlink named
// "multipass" in a test's temporary directory. It finds its script and
// call log next to the symlink, so tests need no environment and can run
// in parallel.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "multipass" {
		os.Exit(fakeMain())
	}
	// Under -race a binary sleeps a second at exit by default; the fake
	// runs many times per test, so its runs must not.
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	os.Exit(m.Run())
}

// response is one scripted answer: the first whose Sub and Contains match
// the command line (and that is not used up) is given.
type response struct {
	Sub      string `json:"sub,omitempty"`      // first argument; "" = any
	Contains string `json:"contains,omitempty"` // substring of the joined argv
	Stdout   string `json:"stdout,omitempty"`
	Stderr   string `json:"stderr,omitempty"`
	Exit     int    `json:"exit,omitempty"`
	// File is written to a local transfer destination.
	File string `json:"file,omitempty"`
	// Once makes the response answer one call only.
	Once bool `json:"once,omitempty"`
}

// call is what the fake saw.
type call struct {
	Argv  []string `json:"argv"`
	Stdin string   `json:"stdin,omitempty"`
	// UserData and UserDataMode are the --cloud-init file at launch time.
	UserData     string `json:"user_data,omitempty"`
	UserDataMode uint32 `json:"user_data_mode,omitempty"`
	// Sent is the content of a local transfer source.
	Sent string `json:"sent,omitempty"`
}

func fakeMain() int {
	dir := filepath.Dir(os.Args[0])
	args := os.Args[1:]
	c := call{Argv: args}
	stdin, _ := io.ReadAll(os.Stdin)
	c.Stdin = string(stdin)
	if len(args) > 0 && args[0] == "launch" {
		for i, a := range args[:len(args)-1] {
			if a == "--cloud-init" {
				b, _ := os.ReadFile(args[i+1])
				c.UserData = string(b)
				if fi, err := os.Stat(args[i+1]); err == nil {
					c.UserDataMode = uint32(fi.Mode().Perm())
				}
			}
		}
	}
	if len(args) == 3 && args[0] == "transfer" && !strings.Contains(args[1], ":") {
		b, _ := os.ReadFile(args[1])
		c.Sent = string(b)
	}
	line, _ := json.Marshal(c)
	f, err := os.OpenFile(filepath.Join(dir, "calls.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake multipass:", err)
		return 98
	}
	f.Write(append(line, '\n'))
	f.Close()

	var script []response
	b, _ := os.ReadFile(filepath.Join(dir, "fake.json"))
	json.Unmarshal(b, &script)
	used := map[string]bool{}
	if u, err := os.ReadFile(filepath.Join(dir, "used")); err == nil {
		for _, l := range strings.Fields(string(u)) {
			used[l] = true
		}
	}
	joined := strings.Join(args, " ")
	for i, r := range script {
		if (r.Sub != "" && (len(args) == 0 || args[0] != r.Sub)) || !strings.Contains(joined, r.Contains) || used[strconv.Itoa(i)] {
			continue
		}
		if r.Once {
			uf, _ := os.OpenFile(filepath.Join(dir, "used"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
			fmt.Fprintln(uf, i)
			uf.Close()
		}
		if r.File != "" && len(args) == 3 && args[0] == "transfer" && !strings.Contains(args[2], ":") {
			if err := os.WriteFile(args[2], []byte(r.File), 0o600); err != nil {
				fmt.Fprintln(os.Stderr, "fake multipass:", err)
				return 98
			}
		}
		os.Stdout.WriteString(r.Stdout)
		os.Stderr.WriteString(r.Stderr)
		return r.Exit
	}
	fmt.Fprintf(os.Stderr, "fake multipass: no scripted response for %q\n", joined)
	return 99
}

// fake is a test's view of its fake multipass.
type fake struct {
	t      *testing.T
	dir    string
	script []response
}

func newFake(t *testing.T) *fake {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f := &fake{t: t, dir: t.TempDir()}
	if err := os.Symlink(self, f.bin()); err != nil {
		t.Fatal(err)
	}
	f.save()
	return f
}

func (f *fake) bin() string { return filepath.Join(f.dir, "multipass") }

// on adds scripted responses, matched in the order given.
func (f *fake) on(rs ...response) *fake {
	f.script = append(f.script, rs...)
	f.save()
	return f
}

func (f *fake) save() {
	b, _ := json.Marshal(f.script)
	if err := os.WriteFile(filepath.Join(f.dir, "fake.json"), b, 0o600); err != nil {
		f.t.Fatal(err)
	}
}

// calls returns every command line the fake ran, in order.
func (f *fake) calls() []call {
	f.t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, "calls.jsonl"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	var out []call
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var c call
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// argvs is calls() reduced to the command lines.
func (f *fake) argvs() [][]string {
	var out [][]string
	for _, c := range f.calls() {
		out = append(out, c.Argv)
	}
	return out
}

// provider returns a Provider using the fake, with its state in the test's
// directory.
func (f *fake) provider() *Provider {
	f.t.Helper()
	p, err := New(Config{Binary: f.bin(), Image: "24.04", StateDir: filepath.Join(f.dir, "state"),
		TempDir: filepath.Join(f.dir, "tmp"), Intervals: wait.DefaultIntervals()})
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}
