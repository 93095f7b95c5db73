package multipass

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
)

// Exit codes of the multipass client (include/multipass/cli/return_codes.h
// and constants.h in multipass's source). exec passes the remote command's
// code through instead, so these only mean "multipass failed" together with
// multipass's own message on stderr.
const (
	exitCommandLine = 1   // the client rejected its arguments
	exitCommandFail = 2   // the daemon refused or failed the request
	exitDaemonFail  = 3   // the daemon did not answer
	exitTimeout     = 5   // --timeout expired
	exitShellExec   = 255 // exec could not open its SSH session
)

// Kinds of *CLIError, so callers can branch on what failed without parsing
// messages.
const (
	KindCommandLine   = "command-line"       // exit 1
	KindCommandFailed = "command-failed"     // exit 2, anything else
	KindAlreadyExists = "already-exists"     // exit 2, instance "X" already exists
	KindNotFound      = "not-found"          // exit 2, instance "X" does not exist
	KindDaemon        = "daemon-unreachable" // exit 3
	KindTimeout       = "timeout"            // exit 5
	KindExecFailed    = "exec-failed"        // exit 255 from exec
	KindUnknown       = "unknown"            // any other exit code
)

// Sentinel errors matched by errors.Is on a *CLIError of the same kind. A
// KindNotFound error matches provider.ErrNotFound instead of its own value,
// so callers need not know which backend runs; likewise already-exists
// errors match provider.ErrAlreadyExists, and a daemon or an exec that could
// not be reached matches provider.ErrUnreachable.
var (
	ErrCommandLine       = errors.New("multipass rejected its command line")
	ErrCommandFailed     = errors.New("multipass command failed")
	ErrAlreadyExists     = errors.New("multipass instance already exists")
	ErrDaemonUnreachable = errors.New("multipass daemon unreachable")
	ErrTimeout           = errors.New("multipass timed out")
	ErrExecFailed        = errors.New("multipass exec could not reach the instance")
)

// CLIError is a failed run of the multipass client.
type CLIError struct {
	Args     []string // arguments after the binary
	ExitCode int
	Stderr   string
	Kind     string
}

// Error is multipass's own message without its "<command> failed:" prefix,
// plus the exit code; callers prefix what they were doing to which VM.
func (e *CLIError) Error() string {
	return fmt.Sprintf("%s (exit %d)", cliMessage(e.Stderr), e.ExitCode)
}

// Is lets errors.Is match the sentinel for the error's kind. Already-exists
// and not-found errors are also command failures (exit 2).
func (e *CLIError) Is(target error) bool {
	switch target {
	case ErrCommandLine:
		return e.Kind == KindCommandLine
	case ErrCommandFailed:
		return e.Kind == KindCommandFailed || e.Kind == KindAlreadyExists || e.Kind == KindNotFound
	case ErrAlreadyExists, provider.ErrAlreadyExists:
		return e.Kind == KindAlreadyExists
	case provider.ErrNotFound:
		return e.Kind == KindNotFound
	case ErrDaemonUnreachable:
		return e.Kind == KindDaemon
	case provider.ErrUnreachable:
		return e.Kind == KindDaemon || e.Kind == KindExecFailed
	case ErrTimeout:
		return e.Kind == KindTimeout
	case ErrExecFailed:
		return e.Kind == KindExecFailed
	}
	return false
}

var (
	alreadyExists = regexp.MustCompile(`instance "[^"]*" already exists`)
	doesNotExist  = regexp.MustCompile(`instance "[^"]*" does not exist`)
	// failedLine is how multipass prefixes its own errors: "launch failed: ...".
	failedLine = regexp.MustCompile(`^[a-z][a-z-]* failed: `)
)

// socketMessage is what every command prints when the daemon is down.
const socketMessage = "cannot connect to the multipass socket"

// newCLIError classifies a non-zero exit of the client.
func newCLIError(args []string, code int, stderr string) *CLIError {
	return &CLIError{Args: append([]string(nil), args...), ExitCode: code, Stderr: stderr, Kind: classify(code, stderr)}
}

func classify(code int, stderr string) string {
	switch {
	case code == exitDaemonFail || strings.Contains(stderr, socketMessage):
		return KindDaemon
	case code == exitTimeout:
		return KindTimeout
	case code == exitCommandLine:
		return KindCommandLine
	case code == exitCommandFail && doesNotExist.MatchString(stderr):
		return KindNotFound
	case code == exitCommandFail && alreadyExists.MatchString(stderr):
		return KindAlreadyExists
	case code == exitCommandFail:
		return KindCommandFailed
	case code == exitShellExec:
		return KindExecFailed
	}
	return KindUnknown
}

// execFailedByMultipass tells multipass's own failure of `multipass exec`
// from the remote command's exit code, which exec passes through: only
// multipass writes "exec failed:" (or, when exec had to start a stopped
// instance, "start failed:") or the socket message.
func execFailedByMultipass(code int, stderr string) bool {
	switch code {
	case exitCommandLine, exitCommandFail, exitDaemonFail, exitTimeout, exitShellExec:
	default:
		return false
	}
	if strings.Contains(stderr, socketMessage) {
		return true
	}
	for _, l := range strings.Split(stderr, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "exec failed: ") || strings.HasPrefix(l, "start failed: ") {
			return true
		}
	}
	return false
}

// cliMessage condenses stderr to one line: from multipass's own
// "<command> failed: " line on (without that prefix), last lines only.
func cliMessage(stderr string) string {
	var lines []string
	for _, l := range strings.Split(stderr, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	for i, l := range lines {
		if loc := failedLine.FindStringIndex(l); loc != nil {
			lines = append([]string{l[loc[1]:]}, lines[i+1:]...)
			break
		}
	}
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	if len(lines) == 0 {
		return "multipass printed no error message"
	}
	return strings.Join(lines, "; ")
}
