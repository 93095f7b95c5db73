package cluster

import (
	"context"
	"fmt"
	"io"

	"github.com/BitcoinCacheMachine/bcmtest/harness/kernelcheck"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

// KernelFindingsError is what `down` returns when a node's kernel was in
// trouble: the cluster is removed all the same, and the findings (node,
// kind, time since boot, line) are the error, so a person who ran a
// cluster by hand learns of a stall the way a suite's teardown does.
type KernelFindingsError struct {
	Cluster string
	Err     *kernelcheck.Error
}

func (e *KernelFindingsError) Error() string {
	return fmt.Sprintf("removing %s: %v", e.Cluster, e.Err)
}

func (e *KernelFindingsError) Unwrap() error { return e.Err }

// checkKernelsBeforeDown checks the kernel of every running node of
// cluster name before `down` deletes them (a node's serial console goes
// with it). Sources it cannot read are logged, not errors: `down` must
// remove what it can reach least of all.
func checkKernelsBeforeDown(ctx context.Context, p provider.Provider, name string, log io.Writer) error {
	vms, err := p.List(ctx, "")
	if err != nil {
		logf(log, "%s: kernel health: not checked: listing VMs: %v", name, err)
		return nil
	}
	var nodes []string
	for _, vm := range vms {
		if isMember(vm.Name, vm.Group, name) && vm.State == provider.StateRunning {
			nodes = append(nodes, vm.Name)
		}
	}
	if len(nodes) == 0 {
		return nil
	}
	res := kernelcheck.Check(ctx, kernelcheck.Input{Provider: p, Nodes: nodes, ExecTimeout: wait.LoadOrDefault().DiagExec.Timeout})
	for _, u := range res.Unread {
		logf(log, "%s: kernel health: not read: %s", name, u)
	}
	if len(res.Findings) > 0 {
		return &KernelFindingsError{Cluster: name, Err: &kernelcheck.Error{Findings: res.Findings}}
	}
	logf(log, "%s: kernel health: no findings on %d node(s)", name, len(nodes))
	return nil
}
