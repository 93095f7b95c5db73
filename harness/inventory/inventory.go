// Package inventory records what cloud-init did to a node, so that two
// nodes given two versions of a cloud-init file can be compared: its
// health (status, errors, warnings), each module's result and time, and
// the state it left (packages, units, accounts, sockets, sysctls, mounts,
// ZFS, apt, files, LXD, Tor).
//
// Collect runs one shell script on a node through the provider; Parse,
// Normalise and Diff are pure functions over the script's recorded
// output, so they are tested on recordings without a VM. Values that
// differ between two nodes given the same file (hostname, instance-id,
// machine-id, boot ID, MACs, addresses, host keys, onion addresses,
// timestamps, PIDs) are normalised away when parsing.
package inventory

import (
	"encoding/json"
	"fmt"
	"sort"
)

// SchemaVersion is the version of the Inventory JSON. A reader refuses
// other versions rather than diffing fields it does not know.
const SchemaVersion = 1

// Inventory is one node's state after cloud-init, normalised.
type Inventory struct {
	// Schema is SchemaVersion.
	Schema int `json:"schema"`
	// Node is the VM's name; never compared.
	Node string `json:"node"`
	// CloudInitVersion is the node's cloud-init version (e.g. 22.4.2).
	CloudInitVersion string   `json:"cloud_init_version"`
	Health           Health   `json:"health"`
	Modules          []Module `json:"modules"`
	// Packages maps an installed package to its version.
	Packages map[string]string `json:"packages"`
	// Units maps a systemd unit to its state.
	Units  map[string]Unit  `json:"units"`
	Users  map[string]User  `json:"users"`
	Groups map[string]Group `json:"groups"`
	// Sudoers are "file<TAB>rule" lines of /etc/sudoers and sudoers.d.
	Sudoers []string `json:"sudoers"`
	Sockets []Socket `json:"sockets"`
	// Sysctls are the kernel parameters with their values, less the ones
	// that change on their own (counters, random values, the hostname).
	Sysctls map[string]string `json:"sysctls"`
	Mounts  []Mount           `json:"mounts"`
	ZFS     ZFS               `json:"zfs"`
	Apt     Apt               `json:"apt"`
	// Files are the files created or changed since cloud-init started.
	Files map[string]File `json:"files"`
	LXD   LXD             `json:"lxd"`
	Tor   Tor             `json:"tor"`
}

// Health is cloud-init's own verdict and what its logs say.
type Health struct {
	// Status is cloud-init's status: done, error, running, disabled.
	Status string `json:"status"`
	// ExtendedStatus is "degraded done" and the like (cloud-init 23.4+).
	ExtendedStatus string `json:"extended_status,omitempty"`
	// Errors are cloud-init's errors, normalised.
	Errors []string `json:"errors"`
	// RecoverableErrors maps a level (WARNING, DEPRECATED, ERROR) to its
	// messages (cloud-init 23.4+).
	RecoverableErrors map[string][]string `json:"recoverable_errors,omitempty"`
	// Log is what cloud-init's own integration tests (verify_clean_log)
	// look for in /var/log/cloud-init.log.
	Log []LogFinding `json:"log"`
	// SchemaValid is the verdict of `cloud-init schema --system`;
	// SchemaOutput its normalised output when not valid.
	SchemaValid  bool     `json:"schema_valid"`
	SchemaOutput []string `json:"schema_output,omitempty"`
	// SkippedModules are the modules skipped for lack of config.
	SkippedModules []string `json:"skipped_modules"`
}

// Failed says cloud-init did not end cleanly: not done, or done with
// errors. Recoverable errors and warnings are not failures.
func (h Health) Failed() bool { return h.Status != "done" || len(h.Errors) > 0 }

// LogFinding is a line of cloud-init.log one of the rules picks.
type LogFinding struct {
	// Rule is error, warning, deprecation, traceback or signal.
	Rule string `json:"rule"`
	// Line is the normalised line (for a traceback: its exception line).
	Line string `json:"line"`
}

// Module is one event of `cloud-init analyze dump`: a stage's module.
type Module struct {
	// Name is stage/event, e.g. modules-final/config-scripts_user.
	Name string `json:"name"`
	// Result is SUCCESS, FAIL or WARN.
	Result string `json:"result"`
	// Seconds is how long the module ran.
	Seconds float64 `json:"seconds"`
}

// Unit is a systemd unit's enablement and activity.
type Unit struct {
	// Enabled is its unit-file state: enabled, disabled, masked, static...
	Enabled string `json:"enabled,omitempty"`
	// Active is its active state (active, inactive, failed); "" when not loaded.
	Active string `json:"active,omitempty"`
}

// User is an account of the passwd database.
type User struct {
	UID   int    `json:"uid"`
	GID   int    `json:"gid"`
	Home  string `json:"home"`
	Shell string `json:"shell"`
	// Groups are its supplementary groups, sorted.
	Groups []string `json:"groups"`
}

// Group is a group of the group database other than a user's private
// group (same name and GID as its user, no other members), which is
// shown with the user.
type Group struct {
	GID     int      `json:"gid"`
	Members []string `json:"members"`
}

// Socket is a listening socket, without its PID.
type Socket struct {
	Proto   string `json:"proto"`
	Addr    string `json:"addr"`
	Port    string `json:"port"`
	Program string `json:"program"`
}

// Mount is a mounted file system other than ZFS (the ZFS section has those).
type Mount struct {
	Target  string `json:"target"`
	Source  string `json:"source"`
	FSType  string `json:"fstype"`
	Options string `json:"options"`
}

// ZFS is the node's pools and datasets, without GUIDs.
type ZFS struct {
	// Pools maps a pool to "health size".
	Pools map[string]string `json:"pools"`
	// Datasets maps a dataset to "type mountpoint canmount".
	Datasets map[string]string `json:"datasets"`
}

// Apt is the apt configuration cloud-init may change.
type Apt struct {
	// Sources are "file<TAB>line" lines.
	Sources []string `json:"sources"`
	// Keys maps a keyring file to its sha256.
	Keys map[string]string `json:"keys"`
}

// File is a file created or changed since cloud-init started.
type File struct {
	Mode  string `json:"mode"`
	Owner string `json:"owner"`
	// Kind is text, binary or private-key.
	Kind string `json:"kind"`
	// SHA256 is of the normalised content for text, of the bytes for
	// binary files; "" for private keys, of which only the type is kept.
	SHA256 string `json:"sha256,omitempty"`
	// KeyType is a private key's type, e.g. "256-bit (ED25519)".
	KeyType string `json:"key_type,omitempty"`
	// Text is a text file's normalised content (at most 64 KiB), for the
	// unified diff.
	Text string `json:"text,omitempty"`
}

// LXD is whether LXD runs and what it was set up with.
type LXD struct {
	// Initialised is true when LXD runs and has a storage pool or a
	// managed network.
	Initialised bool     `json:"initialised"`
	Pools       []string `json:"pools"`
	Networks    []string `json:"networks"`
	Profiles    []string `json:"profiles"`
}

// Tor is whether Tor runs and its onion services.
type Tor struct {
	Active bool `json:"active"`
	// OnionServices are the torrc's HiddenService lines, and for each
	// service directory whether it has a hostname (the address itself is
	// normalised away).
	OnionServices []string `json:"onion_services"`
}

// Load reads an inventory written by Marshal, refusing another schema.
func Load(data []byte) (*Inventory, error) {
	var probe struct {
		Schema *int `json:"schema"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("reading an inventory: not JSON: %w", err)
	}
	if probe.Schema == nil {
		return nil, fmt.Errorf("reading an inventory: field schema: missing; is this a bcmtest inventory?")
	}
	if *probe.Schema != SchemaVersion {
		return nil, fmt.Errorf("reading an inventory: field schema: version %d, this bcmtest reads version %d", *probe.Schema, SchemaVersion)
	}
	var inv Inventory
	if err := json.Unmarshal(data, &inv); err != nil {
		return nil, fmt.Errorf("reading an inventory: %w", err)
	}
	return &inv, nil
}

// Marshal is the inventory as indented JSON.
func (inv *Inventory) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(inv, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
