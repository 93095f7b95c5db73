package kernelcheck

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
)

// consoler is a provider whose VMs keep a serial console log (the qemu
// backend keeps serial.log in each VM's state directory); others are
// checked by their kernel log alone.
type consoler interface {
	Console(ctx context.Context, name string) ([]byte, error)
}

// Input names the nodes to check and the provider they run on.
type Input struct {
	Provider provider.Provider
	Nodes    []string
	// ExecTimeout bounds reading one node's kernel log; a stalled node
	// must not hold a teardown up. Zero means DefaultExecTimeout.
	ExecTimeout time.Duration
}

// DefaultExecTimeout is how long reading one node's kernel log may take:
// a journal read over SSH under software emulation takes a few seconds.
const DefaultExecTimeout = 90 * time.Second

// Result is what a check found on every node, and what it could not read.
type Result struct {
	Nodes    []string  `json:"nodes"`
	Findings []Finding `json:"findings"`
	// Unread says which source of which node could not be read and why;
	// such a node is judged by its other source only. A node that cannot
	// be read at all (powered off, unreachable) is not a finding: the
	// check is about what its kernel said, and the spec that lost the node
	// has failed already.
	Unread []string `json:"unread,omitempty"`
}

// Err is nil when there are no findings and an *Error listing them
// otherwise.
func (r Result) Err() error {
	if len(r.Findings) == 0 {
		return nil
	}
	return &Error{Findings: r.Findings}
}

// Summary is the result in a few lines, for logs and report entries.
func (r Result) Summary() string {
	var b strings.Builder
	if len(r.Findings) == 0 {
		fmt.Fprintf(&b, "kernel health: no findings on %d node(s) (%s)", len(r.Nodes), strings.Join(r.Nodes, ", "))
	} else {
		b.WriteString((&Error{Findings: r.Findings}).Error())
	}
	for _, u := range r.Unread {
		fmt.Fprintf(&b, "\n  not read: %s", u)
	}
	return b.String()
}

// Error says the kernel of one or more nodes was in trouble. Callers find
// it with errors.As and read the findings, never the text.
type Error struct {
	Findings []Finding
}

// maxListed caps the findings an error message lists; the report and
// kernel-findings.json have them all.
const maxListed = 20

func (e *Error) Error() string {
	nodes := map[string]bool{}
	for _, f := range e.Findings {
		nodes[f.Node] = true
	}
	var b strings.Builder
	fmt.Fprintf(&b, "kernel health: %d finding(s) on %d node(s):", len(e.Findings), len(nodes))
	for i, f := range e.Findings {
		if i == maxListed {
			fmt.Fprintf(&b, "\n  ... and %d more", len(e.Findings)-maxListed)
			break
		}
		b.WriteString("\n  " + f.String())
	}
	return b.String()
}

// Check reads every node's serial console (when the provider keeps one)
// and kernel log, all nodes at once, and scans both.
func Check(ctx context.Context, in Input) Result {
	if in.ExecTimeout <= 0 {
		in.ExecTimeout = DefaultExecTimeout
	}
	res := Result{Nodes: append([]string(nil), in.Nodes...)}
	found := make([][]Finding, len(in.Nodes))
	unread := make([][]string, len(in.Nodes))
	var wg sync.WaitGroup
	for i, n := range in.Nodes {
		wg.Go(func() { found[i], unread[i] = checkNode(ctx, in, n) })
	}
	wg.Wait()
	for i := range in.Nodes {
		res.Findings = append(res.Findings, Merge(found[i])...)
		res.Unread = append(res.Unread, unread[i]...)
	}
	return res
}

// checkNode scans one node's two sources.
func checkNode(ctx context.Context, in Input, node string) (found []Finding, unread []string) {
	if c, ok := in.Provider.(consoler); ok {
		b, err := c.Console(ctx, node)
		if err != nil {
			unread = append(unread, fmt.Sprintf("%s: serial console: %v", node, err))
		} else {
			found = append(found, Scan(node, Console, string(b))...)
		}
	} else {
		unread = append(unread, fmt.Sprintf("%s: serial console: provider %s keeps none", node, in.Provider.Name()))
	}
	text, err := kernelLog(ctx, in, node)
	if err != nil {
		unread = append(unread, fmt.Sprintf("%s: kernel log: %v", node, err))
	} else {
		found = append(found, Scan(node, KernelLog, text)...)
	}
	return found, unread
}

// kernelLog reads the node's kernel messages of this boot: the journal,
// which keeps them all, or dmesg's ring buffer where there is no journal.
func kernelLog(ctx context.Context, in Input, node string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, in.ExecTimeout)
	defer cancel()
	res, err := in.Provider.Exec(ctx, node, provider.ExecInput{Argv: []string{"journalctl", "-k", "-b", "--no-pager", "-o", "short-monotonic"}})
	if err != nil {
		return "", fmt.Errorf("reading the kernel log of %s: %w", node, err)
	}
	if res.ExitCode == 0 && len(strings.TrimSpace(string(res.Stdout))) > 0 {
		return FromJournal(string(res.Stdout)), nil
	}
	journalErr := strings.TrimSpace(string(res.Stderr))
	res, err = in.Provider.Exec(ctx, node, provider.ExecInput{Argv: []string{"dmesg"}})
	if err != nil {
		return "", fmt.Errorf("reading the kernel log of %s: %w", node, err)
	}
	if res.ExitCode != 0 {
		return "", fmt.Errorf("reading the kernel log of %s: journalctl -k: %q; dmesg: exit code %d: %s", node, journalErr, res.ExitCode, provider.Tail(string(res.Stderr), 3))
	}
	return string(res.Stdout), nil
}
