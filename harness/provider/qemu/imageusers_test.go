package qemu

import (
	"reflect"
	"testing"
)

// TestImageUsersNamesSnapshotsAndColdBoots: a snapshot in the cache holds
// its image, a cold-booted VM holds the image it booted, and a VM restored
// from a snapshot holds its image through that snapshot only.
func TestImageUsersNamesSnapshotsAndColdBoots(t *testing.T) {
	a, _ := twoStateDirs(t)
	p := providerIn(t, a)
	sh := testShape()
	sh.Image = "bookworm-old"
	snap := fakeSnapshotEntry(t, a, sh)
	cold := recordIn(t, p, "KEPT-00")
	cold.Image = "bookworm-older"
	restored := recordIn(t, p, "KEPT-01")
	restored.Image, restored.Snapshot = "bookworm-old", snap.Manifest.Key
	for _, r := range []*record{cold, restored} {
		if err := r.save(); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ImageUsers(a)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"bookworm-old":   {"snapshot " + snap.Manifest.Key},
		"bookworm-older": {"VM KEPT-00"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ImageUsers = %v, want %v", got, want)
	}
}
