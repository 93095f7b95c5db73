package common

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

// cloudInitStatus is the part of /run/cloud-init/status.json we read.
type cloudInitStatus struct {
	V1 map[string]json.RawMessage `json:"v1"`
}

type stageStatus struct {
	Errors []string `json:"errors"`
}

var moduleInError = regexp.MustCompile(`^\('([A-Za-z0-9_-]+)'`)

// CheckCloudInit waits for cloud-init on a VM of any provider and reports
// its failures. console supplies the serial console tail when there is one.
// The in-guest `cloud-init status --wait` has no timeout of its own: ctx
// bounds it (callers give it the cloud-init interval).
func CheckCloudInit(ctx context.Context, p provider.Provider, name string, console func() string) error {
	res, err := p.Exec(ctx, name, provider.ExecInput{Argv: []string{"cloud-init", "status", "--wait"}})
	if err != nil {
		e := &provider.CloudInitError{VM: name, Status: "running", Cause: fmt.Errorf("waiting for cloud-init: %w", err)}
		if console != nil {
			e.ConsoleTail = console()
		}
		// ctx has likely ended; the log's tail is read within diag-exec.
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), wait.LoadOrDefault().DiagExec.Timeout)
		defer cancel()
		e.OutputTail = outputTail(tctx, p, name)
		return e
	}
	statusOut := strings.TrimSpace(string(res.Stdout))
	js, err := p.Exec(ctx, name, provider.ExecInput{Argv: []string{"cat", "/run/cloud-init/status.json"}})
	if err != nil {
		return fmt.Errorf("reading cloud-init status on %s: %w", name, err)
	}
	var st cloudInitStatus
	if err := json.Unmarshal(js.Stdout, &st); err != nil {
		return fmt.Errorf("parsing /run/cloud-init/status.json on %s: %w", name, err)
	}
	var errs, mods []string
	for stage, raw := range st.V1 {
		var s stageStatus
		if json.Unmarshal(raw, &s) != nil {
			continue
		}
		for _, e := range s.Errors {
			errs = append(errs, stage+": "+e)
			if m := moduleInError.FindStringSubmatch(e); m != nil {
				mods = append(mods, m[1])
			}
		}
	}
	if len(errs) == 0 && res.ExitCode == 0 {
		return nil
	}
	status := "error"
	if f := strings.Fields(statusOut); len(f) >= 2 {
		status = f[len(f)-1]
	}
	e := &provider.CloudInitError{VM: name, Status: status, FailedModules: mods, Errors: errs}
	e.OutputTail = outputTail(ctx, p, name)
	if console != nil {
		e.ConsoleTail = console()
	}
	return e
}

// outputTail is the end of cloud-init's output log, or "" if unreadable.
func outputTail(ctx context.Context, p provider.Provider, name string) string {
	out, err := p.Exec(ctx, name, provider.ExecInput{Argv: []string{"tail", "-n", "40", "/var/log/cloud-init-output.log"}})
	if err != nil {
		return ""
	}
	return string(out.Stdout)
}
