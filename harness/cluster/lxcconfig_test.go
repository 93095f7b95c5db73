package cluster

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/canonical/lxd/shared"
	"gopkg.in/yaml.v3"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
)

// lxcHandle is a Cluster as Up returns it for CLUS1 (NAME-00 and one
// member), NAME-00's API forwarded to a host port as the qemu provider
// does, with its client certificate in a state directory under t's.
func lxcHandle(t *testing.T) *Cluster {
	t.Helper()
	s := validSpec()
	s.Members = 1
	dir := filepath.Join(ClustersDir(t.TempDir()), s.Name)
	cert, key, err := loadOrCreateClientCert(dir, s.Name)
	if err != nil {
		t.Fatal(err)
	}
	serverCert, _, err := shared.GenerateMemCert(false, shared.CertOptions{CommonName: "lxd-cluster"})
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{spec: resolved{Spec: s.withDefaults()}, p: s.Provider, rec: &record{Name: s.Name, dir: dir},
		creds: Credentials{ClientCert: cert, ClientKey: key, ClusterCert: string(serverCert)}}
	for i, fwd := range []string{"127.0.0.1:38443", ""} {
		info := provider.Info{Name: NodeName(s.Name, i), Group: s.Name, PrivateIP: "10.77.0." + string(rune('1'+i))}
		if fwd != "" {
			info.Forwards = map[int]string{lxdPort: fwd}
		}
		c.members = append(c.members, Member{Name: info.Name, Address: info.PrivateIP, Endpoint: info.Endpoint(lxdPort), Info: info})
	}
	return c
}

func mode(t *testing.T, p string) fs.FileMode {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWriteLXCConfig(t *testing.T) {
	c := lxcHandle(t)
	// A directory left by an earlier version of bcmtest up: loose modes.
	old := LXCConfigDir(c.StateDir())
	if err := os.MkdirAll(old, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(old, "client.key"), []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(old, 0o755)

	dir, err := c.WriteLXCConfig()
	if err != nil {
		t.Fatal(err)
	}
	if dir != filepath.Join(c.StateDir(), "lxc") {
		t.Errorf("dir %s is not under the cluster's state dir %s", dir, c.StateDir())
	}

	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(read(t, filepath.Join(dir, "config.yml"))), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg["default-remote"] != "local" {
		t.Errorf("default-remote: %v", cfg["default-remote"])
	}
	remotes, _ := cfg["remotes"].(map[string]any)
	remote, _ := remotes["CLUS1"].(map[string]any)
	want := map[string]any{"addr": "https://127.0.0.1:38443", "protocol": "lxd", "auth_type": "tls", "public": false}
	for k, v := range want {
		if remote[k] != v {
			t.Errorf("remotes.CLUS1.%s = %v, want %v (config %v)", k, remote[k], v, cfg)
		}
	}
	if len(remote) != len(want) {
		t.Errorf("remotes.CLUS1 has other fields: %v", remote)
	}
	if local, _ := remotes["local"].(map[string]any); local["addr"] != "unix://" {
		t.Errorf("remotes.local: %v", remotes["local"])
	}

	cr := c.Credentials()
	if got := read(t, filepath.Join(dir, "servercerts", "CLUS1.crt")); got != cr.ClusterCert {
		t.Errorf("pinned server certificate is not the cluster certificate:\n%s", got)
	}
	if blk, _ := pem.Decode([]byte(read(t, filepath.Join(dir, "servercerts", "CLUS1.crt")))); blk == nil {
		t.Error("pinned certificate is not PEM")
	} else if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
		t.Error(err)
	}
	if read(t, filepath.Join(dir, "client.crt")) != cr.ClientCert || read(t, filepath.Join(dir, "client.key")) != cr.ClientKey {
		t.Error("client.crt/client.key are not the cluster's client key pair")
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")); err != nil {
		t.Error(err)
	}

	for _, d := range []string{dir, filepath.Join(dir, "servercerts")} {
		if m := mode(t, d); m != 0o700 {
			t.Errorf("%s: mode %o, want 700", d, m)
		}
	}
	files := 0
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		files++
		if m := mode(t, p); m != 0o600 {
			t.Errorf("%s: mode %o, want 600", p, m)
		}
		return nil
	})
	if files != 4 {
		t.Errorf("%d files in %s, want config.yml, client.crt, client.key and servercerts/CLUS1.crt", files, dir)
	}

	// Written again (a reused cluster): the same, nothing left over.
	if dir2, err := c.WriteLXCConfig(); err != nil || dir2 != dir {
		t.Fatalf("rewrite: %s %v", dir2, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 4 {
		t.Errorf("after a rewrite %s holds %d entries", dir, len(ents))
	}
}

func TestWriteLXCConfigPinsTheSavedClusterCertificate(t *testing.T) {
	c := lxcHandle(t)
	want := c.creds.ClusterCert
	if err := os.WriteFile(filepath.Join(c.StateDir(), "cluster.crt"), []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	c.creds.ClusterCert = ""
	dir, err := c.WriteLXCConfig()
	if err != nil {
		t.Fatal(err)
	}
	if read(t, filepath.Join(dir, "servercerts", "CLUS1.crt")) != want {
		t.Error("cluster.crt from the state dir is not the pinned certificate")
	}
}

func TestWriteLXCConfigRefuses(t *testing.T) {
	c := lxcHandle(t)
	c.creds.ClusterCert = ""
	if _, err := c.WriteLXCConfig(); err == nil || !strings.Contains(err.Error(), "no cluster certificate") {
		t.Errorf("no certificate to pin: %v", err)
	}

	c = lxcHandle(t)
	key := c.creds.ClientKey
	c.members = c.members[1:]
	_, err := c.WriteLXCConfig()
	if err == nil || !strings.Contains(err.Error(), "CLUS1-00") {
		t.Errorf("no NAME-00: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), strings.TrimSpace(key)) {
		t.Error("the client key is in an error")
	}

	c = lxcHandle(t)
	c.spec.Name = "local"
	if _, err := c.WriteLXCConfig(); err == nil || !strings.Contains(err.Error(), "reserves") {
		t.Errorf("remote named local: %v", err)
	}
}

func TestLXCCommandLine(t *testing.T) {
	for _, c := range []struct{ dir, name, want string }{
		{"/home/u/.local/state/bcmtest/clusters/CLUS1/lxc", "CLUS1", "LXD_CONF=/home/u/.local/state/bcmtest/clusters/CLUS1/lxc lxc cluster list CLUS1:"},
		{"/tmp/my state/lxc", "bcm-test", "LXD_CONF='/tmp/my state/lxc' lxc cluster list bcm-test:"},
	} {
		if got := LXCCommandLine(c.dir, c.name); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
}

// TestNothingAcceptsAnyCertificate keeps the pinned remote the only way the
// repository tells anyone to reach a cluster: no file git tracks or would
// track (binaries and dot-directories aside) suggests trusting whatever
// certificate answers.
func TestNothingAcceptsAnyCertificate(t *testing.T) {
	root, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skipf("not in a git work tree: %v", err)
	}
	top := strings.TrimSpace(string(root))
	out, err := exec.Command("git", "-C", top, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatal(err)
	}
	flag := []byte("--accept-" + "certificate")
	for _, p := range strings.Split(string(out), "\x00") {
		if p == "" || strings.HasPrefix(p, ".") || strings.Contains(p, "/.") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(top, p))
		if err != nil {
			continue // deleted in the work tree
		}
		if bytes.IndexByte(b[:min(len(b), 8000)], 0) >= 0 {
			continue // binary
		}
		if bytes.Contains(b, flag) {
			t.Errorf("%s mentions %s", p, flag)
		}
	}
}
