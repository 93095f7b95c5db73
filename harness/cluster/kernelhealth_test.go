package cluster

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/BitcoinCacheMachine/bcmtest/harness/kernelcheck"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/fakeprovider"
)

func TestDownReportsKernelFindingsAndStillRemoves(t *testing.T) {
	fp := fakeprovider.New()
	fp.Add(provider.Info{Name: "CLUS1-00", Group: "CLUS1"})
	fp.Add(provider.Info{Name: "CLUS1-01", Group: "CLUS1"})
	fp.Add(provider.Info{Name: "CLUS10-00", Group: "CLUS10"})
	fp.ExecFunc = func(name string, argv []string) provider.ExecResult {
		if argv[0] == "journalctl" && name != "CLUS1-00" {
			return provider.ExecResult{Stdout: []byte("[  401.733120] " + name + " kernel: rcu: INFO: rcu_preempt self-detected stall on CPU\n")}
		}
		return provider.ExecResult{}
	}
	var log lockedBuffer
	removed, err := Down(t.Context(), fp, t.TempDir(), "CLUS1", &log)
	var kf *KernelFindingsError
	if !errors.As(err, &kf) || err != error(kf) {
		t.Fatalf("want a *KernelFindingsError alone, got %v", err)
	}
	var kerr *kernelcheck.Error
	if !errors.As(err, &kerr) || len(kerr.Findings) != 1 {
		t.Fatalf("want the one finding, got %v", err)
	}
	if f := kerr.Findings[0]; f.Node != "CLUS1-01" || f.Kind != kernelcheck.RCUStall {
		t.Errorf("finding %+v; CLUS10-00 is not checked, CLUS1-00 is healthy", f)
	}
	if !strings.Contains(err.Error(), "removing CLUS1: kernel health: 1 finding(s) on 1 node(s):\n  CLUS1-01: RCU stall 401.733 s after boot (kernel log)") {
		t.Errorf("message %q", err)
	}
	if len(removed) != 2 || len(fp.Names()) != 1 {
		t.Errorf("the cluster must be removed all the same: removed %v, left %v", removed, fp.Names())
	}
}

func TestDownOfAHealthyClusterSaysSo(t *testing.T) {
	fp := fakeprovider.New()
	fp.Add(provider.Info{Name: "CLUS1-00", Group: "CLUS1"})
	var log lockedBuffer
	if _, err := Down(t.Context(), fp, t.TempDir(), "CLUS1", &log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "CLUS1: kernel health: no findings on 1 node(s)") {
		t.Errorf("log:\n%s", log.String())
	}
}

// lockedBuffer is a log that destroy's goroutines may write at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
