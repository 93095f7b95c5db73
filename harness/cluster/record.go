package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/canonical/lxd/shared"

	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

// record is a cluster's bookkeeping in the state directory, written before
// the first VM starts so a killed run can be found and swept.
type record struct {
	Name     string `json:"name"`
	Provider string `json:"provider"`
	// Image is the Debian release its nodes run (provider.Releaser); ""
	// for providers that choose none and records made before it was kept.
	Image    string    `json:"image,omitempty"`
	Members  int       `json:"members"`
	Nodes    []string  `json:"nodes"`
	Owner    int       `json:"owner"`
	Created  time.Time `json:"created"`
	Ready    bool      `json:"ready"`
	PoolName string    `json:"pool_name"`
	// Persistent clusters (bcmtest up) outlive their process; sweeps skip them.
	Persistent bool `json:"persistent"`
	// Kept clusters were left up on purpose; sweeps skip them too.
	Kept *KeptMark `json:"kept,omitempty"`
	// CloudInitName names the user-data every node booted with (usually
	// its path); the file itself is user-data beside the record, and
	// CloudInitSHA256 its checksum. A run that reuses the cluster judges
	// it by that file. Empty in records made before files were recorded.
	CloudInitName   string `json:"cloud_init_name,omitempty"`
	CloudInitSHA256 string `json:"cloud_init_sha256,omitempty"`
	// Shape is every node's size as Up resolved it, so nodes a Grow adds
	// match the others (and their booted snapshot). Nil in older records.
	Shape *Shape `json:"shape,omitempty"`
	dir   string
}

// Shape is a node's size.
type Shape struct {
	CPUs      int `json:"cpus"`
	MemoryMiB int `json:"memory_mib"`
	DiskGiB   int `json:"disk_gib"`
	PoolGiB   int `json:"pool_gib"`
}

// userDataFile is the recorded user-data beside cluster.json.
const userDataFile = "user-data"

// CloudInitFile is a cloud-init file and the name it was given.
type CloudInitFile struct {
	Name string
	Data []byte
}

// ErrNoRecordedCloudInit: the cluster's record names no cloud-init file
// (it was made before files were recorded).
var ErrNoRecordedCloudInit = errors.New("no cloud-init file recorded with the cluster")

// saveUserData writes the user-data the cluster is made with (0600: it
// may hold secrets) and notes its name and checksum in the record, which
// the caller saves.
func (r *record) saveUserData(name string, data []byte) error {
	if err := state.MkdirPrivate(r.dir); err != nil {
		return fmt.Errorf("recording the cloud-init file of cluster %s: %w", r.Name, err)
	}
	if err := os.WriteFile(filepath.Join(r.dir, userDataFile), data, 0o600); err != nil {
		return fmt.Errorf("recording the cloud-init file of cluster %s: %w", r.Name, err)
	}
	sum := sha256.Sum256(data)
	r.CloudInitName, r.CloudInitSHA256 = name, hex.EncodeToString(sum[:])
	return nil
}

// userData reads the recorded user-data back, checking its checksum.
func (r *record) userData() (CloudInitFile, error) {
	if r.CloudInitSHA256 == "" {
		return CloudInitFile{}, fmt.Errorf("reading the cloud-init file of cluster %s: %w", r.Name, ErrNoRecordedCloudInit)
	}
	p := filepath.Join(r.dir, userDataFile)
	data, err := os.ReadFile(p)
	if err != nil {
		return CloudInitFile{}, fmt.Errorf("reading the cloud-init file of cluster %s: %w", r.Name, err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != r.CloudInitSHA256 {
		return CloudInitFile{}, fmt.Errorf("reading the cloud-init file of cluster %s: %s does not match the checksum in its record (sha256 %s): it was changed", r.Name, p, r.CloudInitSHA256)
	}
	return CloudInitFile{Name: r.CloudInitName, Data: data}, nil
}

// KeptMark says a cluster was left up on purpose (BCMTEST_SKIP_TEARDOWN,
// keep-on-failure) after its process ends: sweeps leave it alone and only
// an explicit Down removes it.
type KeptMark struct {
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// ClustersDir is where cluster records live under a state directory.
func ClustersDir(stateDir string) string { return filepath.Join(stateDir, "clusters") }

func (r *record) save() error {
	if err := state.MkdirPrivate(r.dir); err != nil {
		return fmt.Errorf("saving state of cluster %s: %w", r.Name, err)
	}
	if err := state.SaveJSON(filepath.Join(r.dir, "cluster.json"), r); err != nil {
		return fmt.Errorf("saving state of cluster %s: %w", r.Name, err)
	}
	return nil
}

// loadClusterRecord reads dir/cluster.json; a record that does not name the
// cluster of its directory is as unusable as an unreadable one. A missing
// record matches fs.ErrNotExist.
func loadClusterRecord(dir string) (*record, error) {
	p := filepath.Join(dir, "cluster.json")
	var r record
	if err := state.LoadJSON(p, &r); err != nil {
		return nil, err
	}
	if r.Name != filepath.Base(dir) {
		return nil, fmt.Errorf("reading %s: it names cluster %q, not %q", p, r.Name, filepath.Base(dir))
	}
	r.dir = dir
	return &r, nil
}

// Credentials are the harness's own client certificate for one cluster and
// the cluster certificate it pins.
type Credentials struct {
	ClientCert  string
	ClientKey   string
	ClusterCert string
}

// loadOrCreateClientCert returns the cluster's client key pair, generating
// it on first use (key file mode 0600 in a 0700 directory).
func loadOrCreateClientCert(dir, cluster string) (cert, key string, err error) {
	cp, kp := filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
	c, cerr := os.ReadFile(cp)
	k, kerr := os.ReadFile(kp)
	if cerr == nil && kerr == nil {
		return string(c), string(k), nil
	}
	if !errors.Is(cerr, os.ErrNotExist) && cerr != nil {
		return "", "", cerr
	}
	c, k, err = shared.GenerateMemCert(true, shared.CertOptions{CommonName: "bcmtest-" + cluster})
	if err != nil {
		return "", "", fmt.Errorf("generating client certificate for %s: %w", cluster, err)
	}
	if err := state.MkdirPrivate(dir); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(kp, k, 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(cp, c, 0o644); err != nil {
		return "", "", err
	}
	return string(c), string(k), nil
}
