package qemu

import (
	"context"
	"testing"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
)

// A node that joins a group never gets the private address of a node
// removed from it while the group lives; a new group of the same name,
// after the last node went, starts again.
func TestRemovedNodesAddressIsNotGivenAgain(t *testing.T) {
	p := newTestProvider(t, Config{})
	ctx := context.Background()
	alloc := func(name, group string) string {
		t.Helper()
		rec, err := p.allocate(provider.LaunchInput{Name: name, Group: group, CPUs: 1, MemoryMiB: 512, DiskGiB: 10}, image.Image{Key: "test-image"}, AccelTCG)
		if err != nil {
			t.Fatalf("allocating %s: %v", name, err)
		}
		t.Cleanup(func() { p.Delete(ctx, name) })
		return rec.PrivateIP
	}
	del := func(name string) {
		t.Helper()
		if err := p.Delete(ctx, name); err != nil {
			t.Fatalf("deleting %s: %v", name, err)
		}
	}
	a0, a1 := alloc("g-00", "g"), alloc("g-01", "g")
	if a0 != "10.77.0.10" || a1 != "10.77.0.11" {
		t.Fatalf("first addresses %s, %s; want 10.77.0.10, 10.77.0.11", a0, a1)
	}
	del("g-00")
	if a2 := alloc("g-02", "g"); a2 != "10.77.0.12" {
		t.Errorf("a node joining after g-00 was removed got %s; want 10.77.0.12, never g-00's %s", a2, a0)
	}
	if b0 := alloc("h-00", "h"); b0 != "10.77.0.10" {
		t.Errorf("another group's first node got %s; want 10.77.0.10", b0)
	}
	del("g-01")
	del("g-02")
	if again := alloc("g-00", "g"); again != "10.77.0.10" {
		t.Errorf("a new group g after the last node of the old one went got %s; want 10.77.0.10", again)
	}
}
