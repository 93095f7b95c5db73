package cluster

import (
	"sync"
	"testing"
	"time"
)

func TestRecordStepKeepsOrder(t *testing.T) {
	c := &Cluster{timings: newTimings()}
	c.RecordStep("instance image import", 1500*time.Millisecond)
	c.RecordStep("instance network", 200*time.Millisecond)
	got := c.Steps()
	if len(got) != 2 || got[0].Name != "instance image import" || got[1].Name != "instance network" {
		t.Fatalf("steps = %+v, want the import then the network", got)
	}
	if s, want := StepsString(got), "instance image import 1.5s, instance network 200ms"; s != want {
		t.Errorf("StepsString = %q, want %q", s, want)
	}
	// Steps returns a copy: changing it changes nothing recorded.
	got[0].Name = "changed"
	if c.Steps()[0].Name != "instance image import" {
		t.Error("Steps() shares its slice with the cluster")
	}
}

func TestRecordStepIsSafeConcurrently(t *testing.T) {
	c := &Cluster{timings: newTimings()}
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(2)
		go func() { defer wg.Done(); c.RecordStep("step", time.Second) }()
		go func() { defer wg.Done(); _ = StepsString(c.Steps()) }()
	}
	wg.Wait()
	if n := len(c.Steps()); n != 50 {
		t.Errorf("%d steps recorded, want 50", n)
	}
}

func TestNoStepsRenderEmpty(t *testing.T) {
	if s := StepsString(nil); s != "" {
		t.Errorf("StepsString(nil) = %q, want empty", s)
	}
}
