package framework

import (
	"context"
	"fmt"
	"strings"

	"github.com/gruntwork-io/terratest/modules/testing"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
)

// NodeCPUs and NodeMemory are the node shape every suite uses unless told
// otherwise. A booted snapshot restores only into its own shape, so one
// shape for all suites means one snapshot per CI run, not one per suite.
const (
	NodeCPUs      = 1
	NodeMemory    = "1536M"
	NodeMemoryMiB = 1536
)

// Node is one VM and the provider it runs on.
type Node struct {
	Provider provider.Provider
	Name     string
}

// NodeOf is member name of cluster c.
func NodeOf(c *cluster.Cluster, name string) Node {
	return Node{Provider: c.Provider(), Name: name}
}

// RunE runs argv as root on n and returns its stdout; a non-zero exit is
// an error with the command's stderr. Known-transient failures are retried.
func RunE(ctx context.Context, t testing.TestingT, n Node, argv ...string) (string, error) {
	return RetryTransientE(ctx, t, fmt.Sprintf("running %q on %s", strings.Join(argv, " "), n.Name), func() (string, error) {
		return provider.Run(ctx, n.Provider, n.Name, argv...)
	})
}

// Run is RunE that fails the test on an error.
func Run(ctx context.Context, t testing.TestingT, n Node, argv ...string) string {
	t.Helper()
	out, err := RunE(ctx, t, n, argv...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ExecE runs argv as root on n and returns the whole result: a non-zero
// exit is a result, not an error, for specs that check exit codes. Errors
// are failures to run it at all; known-transient ones are retried.
func ExecE(ctx context.Context, t testing.TestingT, n Node, argv ...string) (provider.ExecResult, error) {
	var res provider.ExecResult
	_, err := RetryTransientE(ctx, t, fmt.Sprintf("executing %q on %s", strings.Join(argv, " "), n.Name), func() (string, error) {
		var err error
		res, err = n.Provider.Exec(ctx, n.Name, provider.ExecInput{Argv: argv})
		if err != nil {
			return "", fmt.Errorf("executing %q on %s: %w", strings.Join(argv, " "), n.Name, err)
		}
		return "", nil
	})
	return res, err
}

// Exec is ExecE that fails the test on an error.
func Exec(ctx context.Context, t testing.TestingT, n Node, argv ...string) provider.ExecResult {
	t.Helper()
	res, err := ExecE(ctx, t, n, argv...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}
