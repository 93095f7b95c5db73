package cluster

import (
	"encoding/json"
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
	Name     string    `json:"name"`
	Provider string    `json:"provider"`
	Members  int       `json:"members"`
	Nodes    []string  `json:"nodes"`
	Owner    int       `json:"owner"`
	Created  time.Time `json:"created"`
	Ready    bool      `json:"ready"`
	PoolName string    `json:"pool_name"`
	// Persistent clusters (bcmtest up) outlive their process; sweeps skip them.
	Persistent bool `json:"persistent"`
	dir        string
}

// ClustersDir is where cluster records live under a state directory.
func ClustersDir(stateDir string) string { return filepath.Join(stateDir, "clusters") }

func (r *record) save() error {
	if err := state.MkdirPrivate(r.dir); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(r, "", "  ")
	tmp := filepath.Join(r.dir, "cluster.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("saving state of cluster %s: %w", r.Name, err)
	}
	return os.Rename(tmp, filepath.Join(r.dir, "cluster.json"))
}

func loadClusterRecord(dir string) (*record, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cluster.json"))
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
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
