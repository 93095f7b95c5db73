package cluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestTheCloudInitFileIsRecordedWithTheCluster: Up records the user-data
// and its name with the cluster; a run that reuses the cluster reads back
// exactly that file, and a record that no longer matches its checksum, or
// a cluster recorded before files were, is told apart from a match.
func TestTheCloudInitFileIsRecordedWithTheCluster(t *testing.T) {
	s, _, _ := specOnFakeLXD(t)
	s.Persistent = true
	s.CloudInit = []byte("#cloud-config\nruncmd:\n  - [touch, /var/lib/mine]\n")
	s.CloudInitName = "/home/me/mine.yaml"
	made, err := Up(t.Context(), s)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	defer made.Destroy(context.Background())
	if got, err := made.RecordedCloudInit(); err != nil || got.Name != s.CloudInitName || string(got.Data) != string(s.CloudInit) {
		t.Errorf("the creating run's RecordedCloudInit = %+v, %v", got, err)
	}
	if fi, err := os.Stat(filepath.Join(made.StateDir(), "user-data")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("user-data in the state: %v, %v; want mode 0600 (it may hold secrets)", fi, err)
	}
	reuse := s
	reuse.Reuse = true
	reuse.CloudInit = []byte("#cloud-config\n# what this run would have made\n")
	reuse.CloudInitName = "fixtures/bcm-qemu.yaml"
	c, err := Up(t.Context(), reuse)
	if err != nil {
		t.Fatalf("reuse: %v", err)
	}
	got, err := c.RecordedCloudInit()
	if err != nil || got.Name != "/home/me/mine.yaml" || string(got.Data) != string(s.CloudInit) {
		t.Errorf("the reusing run's RecordedCloudInit = %q %q, %v; want the file the cluster was made with", got.Name, got.Data, err)
	}
	c.Destroy(context.Background())

	// A changed file no longer matches the record's checksum.
	if err := os.WriteFile(filepath.Join(made.StateDir(), "user-data"), []byte("#cloud-config\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = Up(t.Context(), reuse)
	if err != nil {
		t.Fatalf("reuse: %v", err)
	}
	if _, err := c.RecordedCloudInit(); err == nil || errors.Is(err, ErrNoRecordedCloudInit) {
		t.Errorf("a user-data file that does not match its checksum: %v; want an error, not \"none recorded\"", err)
	}
	c.Destroy(context.Background())

	// A cluster recorded before the file was.
	rec, err := loadClusterRecord(made.StateDir())
	if err != nil {
		t.Fatal(err)
	}
	rec.CloudInitName, rec.CloudInitSHA256 = "", ""
	if err := rec.save(); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(made.StateDir(), "user-data"))
	c, err = Up(t.Context(), reuse)
	if err != nil {
		t.Fatalf("reuse: %v", err)
	}
	if _, err := c.RecordedCloudInit(); !errors.Is(err, ErrNoRecordedCloudInit) {
		t.Errorf("a cluster with no recorded file: %v; want ErrNoRecordedCloudInit", err)
	}
	c.Destroy(context.Background())
}
