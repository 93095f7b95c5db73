package qemu

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a log several goroutines write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAFailedSeedGateIsReportedAndTheNodeBootsCold: a restored node whose
// seed gate could not renew its identity says so on the console and
// powers off; the harness must not take it for a restored node, but say
// what the gate said and boot the node cold.
func TestAFailedSeedGateIsReportedAndTheNodeBootsCold(t *testing.T) {
	d := shortDirs(t)
	fake := installFakeQEMU(t, "7.2.22", "pc-q35-7.2")
	fake.set("gate", "mounting the seed /dev/sr0: mount: wrong fs type; identity not renewed, powering off")
	img := testImage(t, d)
	p := fakeRunProvider(t, d)
	var log syncBuffer
	p.cfg.Log = &log
	rec := recordIn(t, p, "CLUS1-00")
	stopAfter(t, p, rec)
	how, err := p.boot(context.Background(), rec, img, "tcg", 0)
	if err != nil {
		t.Fatal(err)
	}
	if how != "cold boot" {
		t.Errorf("boot = %q after the seed gate failed, want a cold boot", how)
	}
	if !strings.Contains(log.String(), "bcmtest-seed: FAILED: mounting the seed /dev/sr0: mount: wrong fs type") {
		t.Errorf("the gate's failure is not reported; log:\n%s", log.String())
	}
	if got, err := loadRecord(rec.Dir); err != nil || got.Snapshot != "" {
		t.Errorf("the record still names a snapshot after the cold boot: %+v, %v", got, err)
	}
	calls := fake.calls()
	if last := calls[len(calls)-1]; strings.Contains(last, "-incoming") {
		t.Errorf("the last qemu started was a restore, not a cold boot: %s", last)
	}
}
