package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/fakeprovider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/providers"
)

// namedFake is the fake under the name the command line asked for ("" and
// auto read as multipass, as auto would pick where multipass answers).
type namedFake struct {
	*fakeprovider.Provider
	name string
}

func (n namedFake) Name() string { return n.name }

// TestDownUsesTheProviderTheClusterWasMadeWith: `down NAME` without a
// provider named opens the one the cluster's record names; naming another
// is refused, naming both, and nothing is removed.
func TestDownUsesTheProviderTheClusterWasMadeWith(t *testing.T) {
	stateDir, _ := isolate(t)
	t.Setenv("BCMTEST_PROVIDER", "")
	fp := fakeprovider.New()
	var asked []string
	orig := newProvider
	newProvider = func(_ context.Context, o providers.Options) (provider.Provider, error) {
		asked = append(asked, o.Name)
		name := o.Name
		if name == "" || name == providers.Auto {
			name = providers.Multipass
		}
		return namedFake{fp, name}, nil
	}
	t.Cleanup(func() { newProvider = orig })
	writeClusterRecord(t, stateDir, "CLUS1", 0, "CLUS1-00") // made by qemu
	fp.Add(provider.Info{Name: "CLUS1-00", Group: "CLUS1"})
	recPath := filepath.Join(cluster.ClustersDir(stateDir), "CLUS1", "cluster.json")

	code, _, errOut := runCLI(t, "down", "CLUS1", "--provider", "multipass")
	if code != exitUsage || !strings.Contains(errOut, "qemu") || !strings.Contains(errOut, "multipass") {
		t.Errorf("down --provider multipass of a qemu cluster: exit %d, stderr %q; want 2 naming both", code, errOut)
	}
	if _, err := os.Stat(recPath); err != nil || len(fp.Names()) != 1 {
		t.Fatalf("the refused down removed something: record %v, VMs %v", err, fp.Names())
	}

	asked = nil
	code, out, errOut := runCLI(t, "down", "CLUS1")
	if code != exitOK || len(asked) != 1 || asked[0] != providers.QEMU {
		t.Errorf("down CLUS1 (auto): exit %d, opened %q, want qemu, the record's: %s", code, asked, errOut)
	}
	if !strings.Contains(out, "removed CLUS1-00") || len(fp.Names()) != 0 {
		t.Errorf("down CLUS1 (auto): %q, VMs left %v", out, fp.Names())
	}
}
