// Package framework is what the suites share, in the style of Cluster API's
// test/framework: functions that take a context and an XxxInput struct
// (ExpectMembersOnlineOnZFS, WaitForMemberStatus), node helpers in
// terratest's convention (Run fails the test, RunE returns the error; both
// take terratest's testing.TestingT, so GinkgoT() works), and waits whose
// timeouts and polls come from the named intervals of harness/wait.
//
// Polls are Eventually(func(g Gomega) ...) so a failed try is retried, not
// the end of the spec; one-shot calls retry the known-transient failures
// of TransientErrors through terratest's retry module. terratest's log
// goes to GinkgoWriter, so it lands in the spec's report.
package framework

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gruntwork-io/terratest/modules/logger"
	"github.com/gruntwork-io/terratest/modules/random"
	"github.com/gruntwork-io/terratest/modules/retry"
	"github.com/gruntwork-io/terratest/modules/shell"
	"github.com/gruntwork-io/terratest/modules/testing"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

// ginkgoLogger writes terratest's log lines to GinkgoWriter, timestamped
// like the harness's own lines.
type ginkgoLogger struct{}

func (ginkgoLogger) Logf(_ testing.TestingT, format string, args ...any) {
	fmt.Fprintf(GinkgoWriter, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// Logger is terratest's logger writing to GinkgoWriter.
var Logger = logger.New(ginkgoLogger{})

// terratest's retry module logs through logger.Default only; without this
// its lines would go to stdout, outside the spec's report.
func init() { logger.Default = Logger }

// RunName is a unique name for a cluster, a VM group or a volume: prefix
// and six lowercase letters or digits, so parallel and repeated runs never
// collide and the result is still a valid host name part.
func RunName(prefix string) string {
	return prefix + strings.ToLower(random.UniqueID())
}

// Intervals are the named waits: the defaults overridden by
// BCMTEST_INTERVALS. A bad value fails the spec, naming the variable.
func Intervals() wait.Intervals {
	GinkgoHelper()
	iv, err := wait.Load()
	Expect(err).NotTo(HaveOccurred())
	return iv
}

// GetIntervals returns the named wait as Eventually's arguments (timeout,
// then poll), as Cluster API's e2e config does:
//
//	Eventually(f, framework.GetIntervals("tor-active")...).WithContext(ctx).Should(...)
func GetIntervals(name string) []any {
	GinkgoHelper()
	args, err := Intervals().GetIntervals(name)
	Expect(err).NotTo(HaveOccurred())
	return args
}

// intervalsOr is intervals when a caller passed some, else the named wait.
func intervalsOr(intervals []any, name string) []any {
	GinkgoHelper()
	if len(intervals) > 0 {
		return intervals
	}
	return GetIntervals(name)
}

// TransientErrors are failures that pass by themselves, as regular
// expressions with why they are retried: dqlite answering while it is busy
// or electing a leader, and SSH while sshd (re)starts.
var TransientErrors = map[string]string{
	`database is locked`:                       "dqlite is busy with another write",
	`no available dqlite leader server found`:  "dqlite is electing a leader",
	`leadership lost`:                          "the dqlite leader changed during the request",
	`connection reset by peer`:                 "the connection dropped (a daemon restarting)",
	`ssh: handshake failed`:                    "sshd is starting or restarting",
	`dialing SSH at \S+: .*connection refused`: "sshd is not listening yet",
}

// RetryTransientE runs action, retrying it while it fails with one of
// TransientErrors, within the retry-transient interval; any other failure
// is returned at once, as action returned it.
func RetryTransientE(ctx context.Context, t testing.TestingT, description string, action func() (string, error)) (string, error) {
	iv, err := wait.Load()
	if err != nil {
		return "", err
	}
	retries := max(int(iv.RetryTransient.Timeout/iv.RetryTransient.Poll), 1)
	out, err := retry.DoWithRetryableErrorsContextE(t, ctx, description, TransientErrors, retries, iv.RetryTransient.Poll, action)
	var fatal retry.FatalError
	if errors.As(err, &fatal) {
		return out, fatal.Underlying
	}
	return out, err
}

// HostCommand is a command on this host for terratest's shell module: its
// output is logged to GinkgoWriter line by line, and it reads no stdin
// (shell would hand it the test binary's).
func HostCommand(name string, args ...string) *shell.Command {
	return &shell.Command{Command: name, Args: args, Logger: Logger, Stdin: strings.NewReader("")}
}
