package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
	"github.com/BitcoinCacheMachine/bcmtest/harness/providers"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

// Exit codes, documented in --help and README.
const (
	exitOK          = 0
	exitFailed      = 1 // tests or the operation failed
	exitUsage       = 2 // bad command line
	exitEnv         = 3 // the host lacks something (qemu, multipass, disk)
	exitInterrupted = 130
)

// usageError marks command-line mistakes (exit 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// envError marks problems with the host (exit 3).
type envError struct{ err error }

func (e envError) Error() string { return e.err.Error() }
func (e envError) Unwrap() error { return e.err }

// exitStatus passes a remote command's exit code through: the command
// ran, so bcmtest exits with its code and prints nothing of its own.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("command exited with code %d", int(e)) }

// helpHint names the command whose --help explains a usage error; run adds
// it so the message can point there.
type helpHint struct {
	err  error
	path string
}

func (h helpHint) Error() string { return h.err.Error() }
func (h helpHint) Unwrap() error { return h.err }

// exitCode maps an error to the documented exit codes.
func exitCode(err error) int {
	var u usageError
	var e envError
	var st exitStatus
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &st):
		return int(st)
	case errors.As(err, &u):
		return exitUsage
	case errors.As(err, &e):
		return exitEnv
	case errors.Is(err, errInterrupted):
		return exitInterrupted
	}
	return exitFailed
}

var errInterrupted = errors.New("interrupted")

// parseMembers reads the MEMBERS argument of `up`.
func parseMembers(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, usagef("MEMBERS %q: must be a whole number of joining members (0 = single node)", s)
	}
	if n < 0 {
		return 0, usagef("MEMBERS %d: must be 0 or more", n)
	}
	if n > cluster.MaxMembers {
		return 0, usagef("MEMBERS %d: must be at most %d (node names have two-digit suffixes)", n, cluster.MaxMembers)
	}
	return n, nil
}

// parseSizes reads --sizes 0,1,3 for matrix.
func parseSizes(s string) ([]int, error) {
	var out []int
	seen := map[int]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return nil, usagef("--sizes %q: %q is not a member count (0 or more)", s, f)
		}
		if seen[n] {
			return nil, usagef("--sizes %q: %d is listed twice", s, n)
		}
		if n > cluster.MaxMembers {
			return nil, usagef("--sizes %q: %d is more than %d members", s, n, cluster.MaxMembers)
		}
		seen[n] = true
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, usagef("--sizes %q: give at least one member count, e.g. 0,1,3", s)
	}
	return out, nil
}

// parseSizeFlag checks a size flag (--memory 2G) by the provider's own
// rules, and also refuses sizes beyond 64 bits of bytes, which
// provider.ParseSize would wrap around into "must be greater than zero".
func parseSizeFlag(flag, s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, usagef("%s: must not be empty (examples: 2G, 512M)", flag)
	}
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(t)
	}
	if v, err := strconv.ParseFloat(t[:i], 64); err == nil && v > 0 {
		// The unit's multiplier, by the provider's own unit table.
		if unit, err := provider.ParseSize(flag, "1"+t[i:]); err == nil && v*float64(unit) >= math.MaxInt64 {
			return 0, usagef("%s %q: too large: it overflows a 64-bit byte count (examples: 2G, 512M)", flag, s)
		}
	}
	b, err := provider.ParseSize(flag, s)
	if err != nil {
		return 0, usageError{err.Error()}
	}
	return b, nil
}

// providerChoice resolves --provider, then BCMTEST_PROVIDER, checking the
// value here so that a bad one is a usage error naming where it came from
// rather than a failure inside the provider. "" means auto.
func providerChoice(flagValue string) (string, error) {
	if flagValue != "" {
		if err := providers.Validate(flagValue); err != nil {
			return "", usagef("--provider: %v", err)
		}
		return flagValue, nil
	}
	v := os.Getenv("BCMTEST_PROVIDER")
	if err := providers.Validate(v); err != nil {
		return "", usagef("BCMTEST_PROVIDER: %v", err)
	}
	return v, nil
}

// imageChoice checks --image, or BCMTEST_IMAGE when the flag is not
// given, as input before anything is opened; neither means the default.
func imageChoice(flagValue string) (image.Release, error) {
	if flagValue != "" {
		rel, err := image.ParseRelease(flagValue)
		if err != nil {
			return "", usagef("--image: %v", err)
		}
		return rel, nil
	}
	rel, err := providers.ImageFromEnv()
	if err != nil {
		return "", usagef("%v", err)
	}
	return rel, nil
}

// clusterImage is the release of an existing cluster's nodes when a
// command works on one (existing): --image or BCMTEST_IMAGE when given,
// else the release its record names, else the default. Grow and reuse
// so launch what the cluster already runs.
func clusterImage(flagValue string, existing bool, name string) (image.Release, error) {
	rel, err := imageChoice(flagValue)
	if err != nil || !existing || flagValue != "" || os.Getenv(image.ImageEnv) != "" {
		return rel, err
	}
	d, err := state.Default()
	if err != nil {
		return "", envError{err}
	}
	recorded, err := cluster.RecordedImage(d.State, name)
	if err != nil || recorded == "" {
		return rel, nil // no record to go by: the reuse check says what is wrong
	}
	if rel, err = image.ParseRelease(recorded); err != nil {
		return "", fmt.Errorf("cluster %s: its record names %w", name, err)
	}
	return rel, nil
}

// checkAccelEnv checks BCMTEST_ACCEL before a provider is opened with it.
func checkAccelEnv() error {
	switch a := os.Getenv("BCMTEST_ACCEL"); a {
	case "", qemu.AccelAuto, qemu.AccelKVM, qemu.AccelTCG:
		return nil
	default:
		return usagef("BCMTEST_ACCEL %q: must be auto, kvm or tcg", a)
	}
}

// checkNode checks a NODE argument by the VM name rules, so a path such as
// ../x is refused as input before any provider looks it up.
func checkNode(cmd, node string) error {
	if err := provider.ValidateVMName(node); err != nil {
		return usagef("%s: NODE: %v", cmd, err)
	}
	return nil
}
