package cluster

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/fakeprovider"
)

// renamed is the fake under another provider's name: what `bcmtest down`
// opens when auto picks multipass for a cluster qemu made.
type renamed struct {
	*fakeprovider.Provider
	name string
}

func (r renamed) Name() string { return r.name }

// TestDownAndSweepUseOnlyTheRecordedProvider: a cluster recorded as made by
// qemu is not removed through multipass: Down refuses naming both, and a
// sweep leaves it alone saying so; its VMs, record and client key stay.
func TestDownAndSweepUseOnlyTheRecordedProvider(t *testing.T) {
	dir := t.TempDir()
	fp := fakeprovider.New()
	// multipass has a VM of that name too; it is not the cluster's.
	fp.Add(provider.Info{Name: "CLUS1-00", Group: "CLUS1", Owner: deadPID})
	mp := renamed{fp, "multipass"}
	rec := saveRecord(t, dir, record{Name: "CLUS1", Provider: "qemu", Owner: deadPID})
	key := filepath.Join(rec.dir, "client.key")
	if _, _, err := loadOrCreateClientCert(rec.dir, "CLUS1"); err != nil {
		t.Fatal(err)
	}
	removed, err := Down(t.Context(), mp, dir, "CLUS1", nil)
	var pm *ProviderMismatchError
	if !errors.As(err, &pm) || pm.Cluster != "CLUS1" || pm.Recorded != "qemu" || pm.Current != "multipass" {
		t.Errorf("Down through multipass of a qemu cluster: removed %v, err %v; want a ProviderMismatchError", removed, err)
	} else if msg := err.Error(); !strings.HasPrefix(msg, "removing CLUS1: ") || !strings.Contains(msg, "qemu") || !strings.Contains(msg, "multipass") {
		t.Errorf("message %q does not say what it refused, naming both providers", msg)
	}
	if len(removed) != 0 || len(fp.Calls) != 0 || !exists(t, key) || !exists(t, filepath.Join(rec.dir, "cluster.json")) {
		t.Fatalf("Down through the wrong provider removed %v (calls %v); key kept %v", removed, fp.Calls, exists(t, key))
	}

	// The cluster is stale (its owner died, never ready): a sweep through
	// multipass must still leave it to qemu.
	var log bytes.Buffer
	swept, err := SweepStale(t.Context(), mp, dir, &log)
	if err != nil || len(swept) != 0 || len(fp.Calls) != 0 || !exists(t, key) {
		t.Errorf("sweep through multipass: swept %v, err %v, calls %v, key kept %v", swept, err, fp.Calls, exists(t, key))
	}
	if want := "leaving CLUS1 alone: it was made with provider qemu"; !strings.Contains(log.String(), want) || !strings.Contains(log.String(), "multipass") {
		t.Errorf("sweep log lacks %q naming multipass:\n%s", want, log.String())
	}

	// Through the provider that made it, both work.
	qm := renamed{fp, "qemu"}
	if swept, err := SweepStale(t.Context(), qm, dir, nil); err != nil || len(swept) != 1 || exists(t, rec.dir) {
		t.Errorf("sweep through qemu: swept %v, %v; state left %v", swept, err, exists(t, rec.dir))
	}
	saveRecord(t, dir, record{Name: "CLUS2", Provider: "qemu", Owner: deadPID, Persistent: true, Ready: true})
	fp.Add(provider.Info{Name: "CLUS2-00", Group: "CLUS2"})
	if got, err := RecordedProvider(dir, "CLUS2"); err != nil || got != "qemu" {
		t.Errorf("RecordedProvider(CLUS2) = %q, %v", got, err)
	}
	if got, err := RecordedProvider(dir, "NONE"); err != nil || got != "" {
		t.Errorf("RecordedProvider(NONE) = %q, %v; want \"\" and no error", got, err)
	}
	if removed, err := Down(t.Context(), qm, dir, "CLUS2", nil); err != nil || len(removed) != 2 {
		t.Errorf("Down through qemu: %v, %v", removed, err)
	}
}
