package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

// The lxc client's configuration directory ($LXD_CONF) holds config.yml,
// servercerts/REMOTE.crt (a remote's pinned certificate) and the client's
// client.crt and client.key. The types follow the field names of the lxc
// client's config.yml (lxc/config in canonical/lxd, not imported: it is
// AGPL-licensed).
type lxcConfig struct {
	DefaultRemote string               `yaml:"default-remote"`
	Remotes       map[string]lxcRemote `yaml:"remotes"`
	Aliases       map[string]string    `yaml:"aliases"`
}

type lxcRemote struct {
	Addr     string `yaml:"addr"`
	AuthType string `yaml:"auth_type,omitempty"`
	Protocol string `yaml:"protocol,omitempty"`
	Public   bool   `yaml:"public"`
}

// lxcStaticRemotes are the remotes the lxc client defines itself, over any
// config.yml entry of the same name.
var lxcStaticRemotes = []string{"local", "images", "ubuntu", "ubuntu-daily", "ubuntu-minimal", "ubuntu-minimal-daily"}

// LXCConfigDir is where WriteLXCConfig writes the lxc client's
// configuration for the cluster whose state directory is stateDir.
func LXCConfigDir(stateDir string) string { return filepath.Join(stateDir, "lxc") }

// WriteLXCConfig writes a ready lxc client configuration for the cluster
// and returns its directory, for LXD_CONF: a remote named after the
// cluster at NAME-00's API as this host reaches it, its server certificate
// pinned (the cluster certificate: nothing else is accepted), and the
// harness's client certificate, which the cluster already trusts. The
// default remote stays local. The directory is 0700 and every file 0600;
// files are replaced whole, so a rewrite after a reuse is safe.
func (c *Cluster) WriteLXCConfig() (dir string, err error) {
	name := c.Name()
	if slices.Contains(lxcStaticRemotes, name) {
		return "", fmt.Errorf("writing the lxc configuration of %s: the lxc client reserves the remote name %q", name, name)
	}
	cr := c.Credentials()
	serverCert := cr.ClusterCert
	if serverCert == "" {
		b, err := os.ReadFile(filepath.Join(c.StateDir(), "cluster.crt"))
		if err != nil {
			return "", fmt.Errorf("writing the lxc configuration of %s: no cluster certificate to pin: %w", name, err)
		}
		serverCert = string(b)
	}
	if strings.TrimSpace(serverCert) == "" || cr.ClientCert == "" || cr.ClientKey == "" {
		return "", fmt.Errorf("writing the lxc configuration of %s: the cluster certificate or the client key pair is missing", name)
	}
	endpoint, err := c.bootstrapEndpoint()
	if err != nil {
		return "", fmt.Errorf("writing the lxc configuration of %s: %w", name, err)
	}
	cfg, err := yaml.Marshal(lxcConfig{
		DefaultRemote: "local",
		Remotes: map[string]lxcRemote{
			"local": {Addr: "unix://"},
			name:    {Addr: "https://" + endpoint, AuthType: "tls", Protocol: "lxd"},
		},
		Aliases: map[string]string{},
	})
	if err != nil {
		return "", fmt.Errorf("writing the lxc configuration of %s: %w", name, err)
	}

	dir = LXCConfigDir(c.StateDir())
	certs := filepath.Join(dir, "servercerts")
	for _, d := range []string{dir, certs} {
		if err := state.MkdirPrivate(d); err != nil {
			return "", fmt.Errorf("writing the lxc configuration of %s: %w", name, err)
		}
		// Also an existing directory: it is the harness's own.
		if err := os.Chmod(d, 0o700); err != nil {
			return "", fmt.Errorf("writing the lxc configuration of %s: %w", name, err)
		}
	}
	for _, f := range []struct {
		path    string
		content []byte
	}{
		{filepath.Join(dir, "client.crt"), []byte(cr.ClientCert)},
		{filepath.Join(dir, "client.key"), []byte(cr.ClientKey)},
		{filepath.Join(certs, name+".crt"), []byte(serverCert)},
		{filepath.Join(dir, "config.yml"), cfg}, // last: it names the rest
	} {
		if err := writePrivate(f.path, f.content); err != nil {
			// The error names the file only, never its content.
			return "", fmt.Errorf("writing the lxc configuration of %s: %w", name, err)
		}
	}
	return dir, nil
}

// bootstrapEndpoint is NAME-00's host-reachable LXD API address.
func (c *Cluster) bootstrapEndpoint() (string, error) {
	want := NodeName(c.Name(), 0)
	for _, m := range c.members {
		if m.Name == want && m.Endpoint != "" {
			return m.Endpoint, nil
		}
	}
	return "", fmt.Errorf("no API endpoint known for %s", want)
}

// writePrivate replaces path with content, mode 0600, through a temporary
// file in the same directory.
func writePrivate(path string, content []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	_, werr := f.Write(content)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// LXCCommandLine is the shell line that lists the cluster's members with
// the configuration in dir: LXD_CONF=DIR lxc cluster list NAME:
func LXCCommandLine(dir, cluster string) string {
	return "LXD_CONF=" + shellQuote(dir) + " lxc cluster list " + shellQuote(cluster+":")
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// shellQuote returns s as one shell word.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
