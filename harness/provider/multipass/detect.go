package multipass

import (
	"context"
	"encoding/json"
	"os/exec"

	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

// versionReply is `multipass version --format json`. multipassd is absent
// when the client could not reach the daemon.
type versionReply struct {
	Multipass  string `json:"multipass"`
	Multipassd string `json:"multipassd"`
}

// Detect reports whether multipass answers: the client runs and its daemon
// replies. version is the daemon's version, or the client's when only the
// client answered (ok is then false, since no VM can be launched).
func Detect(ctx context.Context, binary string) (version string, ok bool) {
	if binary == "" {
		binary = "multipass"
	}
	// `multipass version` answers at once, or after the client gives up on
	// the socket; multipass-detect bounds it. Detect has no error to
	// report a bad BCMTEST_INTERVALS with; its callers load it first.
	iv := wait.LoadOrDefault()
	ctx, cancel := context.WithTimeout(ctx, iv.MultipassDetect.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "version", "--format", "json")
	cmd.WaitDelay = iv.ProcessExit.Timeout
	out, err := cmd.Output()
	if err != nil {
		return "", false
	}
	var v versionReply
	if json.Unmarshal(out, &v) != nil {
		return "", false
	}
	if v.Multipassd == "" {
		return v.Multipass, false
	}
	return v.Multipassd, true
}
