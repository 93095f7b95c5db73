package main

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
)

// An existing cluster's nodes keep their release: with neither --image
// nor BCMTEST_IMAGE, a command on it (up --reuse) takes the release its
// record names; either one given wins, and a new cluster gets the default.
func TestAnExistingClusterKeepsItsRecordedImage(t *testing.T) {
	stateDir, _ := isolate(t)
	t.Setenv(image.ImageEnv, "")
	writeRecord(t, filepath.Join(cluster.ClustersDir(stateDir), "NEWER", "cluster.json"), map[string]any{
		"name": "NEWER", "provider": "qemu", "image": "trixie", "members": 0, "nodes": []string{"NEWER-00"}, "owner": 0,
		"created": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "ready": true, "pool_name": "local", "persistent": true,
	})
	for _, c := range []struct {
		flag, env string
		existing  bool
		want      image.Release
	}{
		{"", "", true, image.Trixie},
		{"", "", false, image.Bookworm},
		{"bookworm", "", true, image.Bookworm},
		{"", "bookworm", true, image.Bookworm},
	} {
		t.Setenv(image.ImageEnv, c.env)
		got, err := clusterImage(c.flag, c.existing, "NEWER")
		if err != nil || got != c.want {
			t.Errorf("flag %q, env %q, existing %v: %q, %v; want %q", c.flag, c.env, c.existing, got, err, c.want)
		}
	}
	// A cluster without a record (or made before records named images) gets the default.
	t.Setenv(image.ImageEnv, "")
	if got, err := clusterImage("", true, "NORECORD"); err != nil || got != image.DefaultRelease {
		t.Errorf("no record: %q, %v", got, err)
	}
}
