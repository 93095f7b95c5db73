package qemu

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"mime/multipart"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"time"

	"gopkg.in/yaml.v3"
)

// HarnessUser is the account the harness logs in as (sudo without password).
const HarnessUser = "bcmtest"

// AptProxyAddr is where a VM finds the apt cache: a guest forward on QEMU's
// user network that the harness points at its apt-cacher-ng.
const AptProxyAddr = "10.0.2.100:3142"

// Seed is the NoCloud seed of one VM.
type Seed struct {
	MetaData      []byte
	UserData      []byte
	VendorData    []byte
	NetworkConfig []byte
	// Identity is read by the image's seed gate (not by cloud-init) when a
	// VM restored from a snapshot gets its seed: shell assignments of the
	// VM's own MACs and the host's clock.
	Identity []byte
	// Entropy is mixed into the restored guest's random pool.
	Entropy []byte
}

// SeedInput is what the seed is made from.
type SeedInput struct {
	Name          string
	InstanceID    string
	UserData      []byte
	AuthorizedKey string
	PrivateCIDR   string // e.g. 10.77.0.10/24 on the private segment NIC
	// MACs are the VM's NIC addresses, which a restored VM must take over
	// from its template's.
	MACs [2]string
	// Clock is the host's time when the seed was written: a floor for the
	// restored guest's clock.
	Clock time.Time
	// DefaultRouteAsRoute writes eth0's default route as a route instead
	// of gateway4 (image.Release.DefaultRouteAsRoute).
	DefaultRouteAsRoute bool
}

// BuildSeed renders the seed. The user's user-data is kept byte for byte; the
// harness's own needs go to vendor-data as a boothook, which cloud-init runs
// whatever the user-data says (a user's `users:` would replace a vendor
// cloud-config `users:` list, but cannot remove a boothook).
func BuildSeed(in SeedInput) (Seed, error) {
	meta, err := yaml.Marshal(map[string]string{"instance-id": in.InstanceID, "local-hostname": in.Name})
	if err != nil {
		return Seed{}, err
	}
	net, err := yaml.Marshal(networkConfig(in.PrivateCIDR, in.DefaultRouteAsRoute))
	if err != nil {
		return Seed{}, err
	}
	vendor, err := vendorData(in.AuthorizedKey)
	if err != nil {
		return Seed{}, err
	}
	for _, m := range in.MACs {
		if m != "" && !macPattern.MatchString(m) {
			return Seed{}, fmt.Errorf("MAC %q: must be six colon-separated hex bytes", m)
		}
	}
	identity := fmt.Sprintf("MAC0=%s\nMAC1=%s\nCLOCK=%d\n", in.MACs[0], in.MACs[1], in.Clock.Unix())
	entropy := make([]byte, 64)
	if _, err := rand.Read(entropy); err != nil {
		return Seed{}, err
	}
	return Seed{MetaData: meta, UserData: in.UserData, VendorData: vendor, NetworkConfig: net, Identity: []byte(identity), Entropy: entropy}, nil
}

var macPattern = regexp.MustCompile(`^[0-9a-f]{2}(:[0-9a-f]{2}){5}$`)

type netv2 struct {
	Version   int                   `yaml:"version"`
	Ethernets map[string]ethernetV2 `yaml:"ethernets"`
}

type ethernetV2 struct {
	DHCP4     bool      `yaml:"dhcp4"`
	Addresses []string  `yaml:"addresses,omitempty"`
	Gateway4  string    `yaml:"gateway4,omitempty"`
	Routes    []routeV2 `yaml:"routes,omitempty"`
}

type routeV2 struct {
	To  string `yaml:"to"`
	Via string `yaml:"via"`
}

// QEMU's user network has fixed addresses: the guest is 10.0.2.15 (where
// the SSH forward points), the host side 10.0.2.2.
const (
	userNetGuest   = "10.0.2.15/24"
	userNetGateway = "10.0.2.2"
)

// networkConfig: eth0 is QEMU's user network (host forwards, no route off
// the machine) with the address its DHCP server would lease, set statically:
// dhclient took ~2 s of every boot under software emulation for an answer
// known in advance. eth1 is the cluster's private segment. The default
// route is gateway4, or with asRoute a route (cloud-init 23.4+ reports
// gateway4 as deprecated, and `cloud-init status` then exits 2).
func networkConfig(cidr string, asRoute bool) netv2 {
	eth0 := ethernetV2{Addresses: []string{userNetGuest}, Gateway4: userNetGateway}
	if asRoute {
		eth0.Gateway4, eth0.Routes = "", []routeV2{{To: "0.0.0.0/0", Via: userNetGateway}}
	}
	return netv2{Version: 2, Ethernets: map[string]ethernetV2{
		"eth0": eth0,
		"eth1": {Addresses: []string{cidr}},
	}}
}

func vendorData(authorizedKey string) ([]byte, error) {
	hook := fmt.Sprintf(`#cloud-boothook
#!/bin/sh
# bcmtest harness access; runs every boot, idempotent.
set -e
id %[1]s >/dev/null 2>&1 || useradd -m -s /bin/bash %[1]s
install -d -m 700 -o %[1]s -g %[1]s /home/%[1]s/.ssh
printf '%%s\n' '%[2]s' > /home/%[1]s/.ssh/authorized_keys
chown %[1]s:%[1]s /home/%[1]s/.ssh/authorized_keys
chmod 600 /home/%[1]s/.ssh/authorized_keys
printf '%%s\n' '%[1]s ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/90-bcmtest
chmod 440 /etc/sudoers.d/90-bcmtest
printf '%%s\n' 'Acquire::http::Proxy "http://%[3]s";' 'Acquire::Languages "none";' > /etc/apt/apt.conf.d/90bcmtest-proxy
`, HarnessUser, authorizedKey, AptProxyAddr)
	// Defaults for this kind of VM, which a user's cloud-config overrides
	// key by key: no partition table (resize2fs grows the root), no GRUB
	// (direct kernel boot), and no RSA host key nor host keys printed to the
	// console, which cost ~12 s of every boot under software emulation.
	cfg := `#cloud-config
growpart: {mode: 'off'}
resize_rootfs: true
manage_etc_hosts: localhost
grub_dpkg: {enabled: false}
ssh_genkeytypes: [ed25519, ecdsa]
ssh: {emit_keys_to_console: false}
`
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	fmt.Fprintf(&buf, "Content-Type: multipart/mixed; boundary=\"%s\"\nMIME-Version: 1.0\n\n", w.Boundary())
	for _, p := range []struct{ ctype, body string }{{"text/cloud-boothook", hook}, {"text/cloud-config", cfg}} {
		h := textproto.MIMEHeader{}
		h.Set("Content-Type", p.ctype+"; charset=\"us-ascii\"")
		h.Set("MIME-Version", "1.0")
		part, err := w.CreatePart(h)
		if err != nil {
			return nil, err
		}
		part.Write([]byte(p.body))
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteISO writes the seed as an ISO 9660 volume labelled cidata.
func (s Seed) WriteISO(ctx context.Context, path string) error {
	files := map[string][]byte{"meta-data": s.MetaData, "user-data": s.UserData, "vendor-data": s.VendorData, "network-config": s.NetworkConfig}
	if s.Identity != nil {
		files["bcmtest-identity"] = s.Identity
	}
	if s.Entropy != nil {
		files["bcmtest-entropy"] = s.Entropy
	}
	return writeISO(ctx, path, "cidata", files)
}

// writeISO writes files into an ISO 9660 volume with the given label,
// readable by its owner only.
func writeISO(ctx context.Context, path, label string, files map[string][]byte) error {
	dir, err := os.MkdirTemp(filepath.Dir(path), "iso-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return err
		}
	}
	tool, err := isoTool()
	if err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, tool, "-quiet", "-output", path, "-volid", label, "-joliet", "-rock", dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("writing the %s ISO with %s: %w: %s", label, tool, err, out)
	}
	return os.Chmod(path, 0o600)
}

func isoTool() (string, error) {
	for _, t := range []string{"genisoimage", "mkisofs"} {
		if p, err := exec.LookPath(t); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("writing the cloud-init seed needs genisoimage (install package genisoimage; run `make deps`)")
}
