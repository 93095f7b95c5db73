package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
)

// The record files below are written with the field names and places the
// harness uses (harness/cluster/record.go, harness/provider/qemu/record.go,
// harness/provider/multipass/record.go), so the command line reads them as
// it reads a real run's.

func writeRecord(t *testing.T, path string, v any) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeClusterRecord writes <state>/clusters/NAME/cluster.json.
func writeClusterRecord(t *testing.T, stateDir, name string, owner int, nodes ...string) {
	t.Helper()
	writeRecord(t, filepath.Join(cluster.ClustersDir(stateDir), name, "cluster.json"), map[string]any{
		"name": name, "provider": "qemu", "members": len(nodes) - 1, "nodes": nodes, "owner": owner,
		"created": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "ready": true, "pool_name": "local", "persistent": true,
	})
}

// writeQEMURecord writes <state>/qemu/vms/NAME/vm.json for a VM whose qemu
// is not running (pid 0), so the provider reports it Stopped.
func writeQEMURecord(t *testing.T, stateDir, name, group, ip string, owner int) {
	t.Helper()
	dir := filepath.Join(stateDir, "qemu", "vms", name)
	writeRecord(t, filepath.Join(dir, "vm.json"), map[string]any{
		"name": name, "group": group, "dir": dir, "image": "test", "cpus": 2, "memory_mib": 2048, "disk_gib": 30,
		"private_ip": ip, "segment_port": 40000, "ssh_port": 40001, "api_port": 40002, "macs": []string{"52:54:00:00:00:01", "52:54:00:00:00:02"},
		"accel": "tcg", "pid": 0, "owner": owner, "created": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	})
}

// writeMultipassRecord writes <state>/multipass/NAME.json.
func writeMultipassRecord(t *testing.T, stateDir, name, group string) {
	t.Helper()
	writeRecord(t, filepath.Join(stateDir, "multipass", name+".json"), map[string]any{
		"name": name, "group": group, "image": "24.04", "owner": 0, "created": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	})
}
