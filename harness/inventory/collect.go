package inventory

import (
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
)

// Script is the collector: one POSIX shell script run as root on the
// node, with collect.py in it as a here-document.
var Script = strings.Replace(shellPart, "@@collect.py@@\n", pythonPart, 1)

var (
	//go:embed collect.sh
	shellPart string
	//go:embed collect.py
	pythonPart string
)

// Execer runs a command on a node: what Collect needs of a provider.
type Execer interface {
	Exec(ctx context.Context, name string, in provider.ExecInput) (provider.ExecResult, error)
}

// Collected is one node's inventory and the collector's output it was
// parsed from (kept as an artifact, and the input of Parse in tests).
type Collected struct {
	Raw       string
	Inventory *Inventory
}

// Collect runs the collector on node and parses its output. Run it once
// cloud-init has ended (the provider's Launch returned), on a node that
// succeeded or failed alike.
func Collect(ctx context.Context, p Execer, node string) (Collected, error) {
	// The key keeps the node's own text (its logs, cloud-init's messages)
	// from passing for a section of the output.
	key := make([]byte, 16)
	if _, err := rand.Read(key); err != nil {
		return Collected{}, fmt.Errorf("collecting the inventory of %s: making the section key: %w", node, err)
	}
	res, err := p.Exec(ctx, node, provider.ExecInput{Argv: []string{"sh", "-s", hex.EncodeToString(key)}, Stdin: bytes.NewReader([]byte(Script))})
	if err != nil {
		return Collected{}, fmt.Errorf("collecting the inventory of %s: %w", node, err)
	}
	if res.ExitCode != 0 {
		return Collected{}, fmt.Errorf("collecting the inventory of %s: the collector exited with code %d: %s", node, res.ExitCode, provider.Tail(string(res.Stderr), 10))
	}
	raw := string(res.Stdout)
	inv, err := Parse(node, raw)
	if err != nil {
		return Collected{Raw: raw}, err
	}
	return Collected{Raw: raw, Inventory: inv}, nil
}
