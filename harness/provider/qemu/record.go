package qemu

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

// record is a VM's bookkeeping, written before qemu starts so a crashed
// harness leaves something the next run can find and sweep.
type record struct {
	Name      string `json:"name"`
	Group     string `json:"group"`
	Dir       string `json:"dir"`
	Image     string `json:"image"`
	CPUs      int    `json:"cpus"`
	MemoryMiB int    `json:"memory_mib"`
	DiskGiB   int    `json:"disk_gib"`
	PrivateIP string `json:"private_ip"`
	// Segment is the kind of private segment (SegmentSwitch: the group's
	// switch; SegmentMulticast or "" in records made before the switch:
	// SegmentPort's multicast socket).
	Segment     string    `json:"segment,omitempty"`
	SegmentPort int       `json:"segment_port,omitempty"`
	SSHPort     int       `json:"ssh_port"`
	APIPort     int       `json:"api_port"`
	MACs        [2]string `json:"macs"`
	Accel       string    `json:"accel"`
	// Machine is the concrete machine type its qemu runs (pc-q35-X.Y).
	Machine string `json:"machine,omitempty"`
	PID     int    `json:"pid"`
	Owner   int    `json:"owner"`
	HostKey string `json:"host_key,omitempty"`
	// Snapshot is the booted snapshot the VM was restored from ("" for a
	// cold boot); its disk layer stays in use while the VM exists.
	Snapshot string    `json:"snapshot,omitempty"`
	Created  time.Time `json:"created"`
	// Started is when its qemu process last started.
	Started time.Time `json:"started,omitempty"`
}

func (r *record) path(f string) string { return filepath.Join(r.Dir, f) }

func (r *record) save() error {
	if err := state.SaveJSON(r.path("vm.json"), r); err != nil {
		return fmt.Errorf("saving state of %s: %w", r.Name, err)
	}
	return nil
}

func loadRecord(dir string) (*record, error) {
	var r record
	if err := state.LoadJSON(filepath.Join(dir, "vm.json"), &r); err != nil {
		return nil, err
	}
	r.Dir = dir
	return &r, nil
}

// loadRecords reads every VM record under vmsDir. Directories without a
// readable record (a launch killed before it saved one) are returned as
// orphans so a sweep can remove them.
func loadRecords(vmsDir string) (recs []*record, orphans []string, err error) {
	entries, err := os.ReadDir(vmsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("listing VMs in %s: %w", vmsDir, err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		r, err := loadRecord(filepath.Join(vmsDir, e.Name()))
		if err != nil {
			orphans = append(orphans, filepath.Join(vmsDir, e.Name()))
			continue
		}
		recs = append(recs, r)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Name < recs[j].Name })
	return recs, orphans, nil
}

// qemuAlive reports whether pid is this VM's qemu (not a recycled pid).
func (r *record) qemuAlive() bool {
	if r.PID <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", r.PID))
	if err != nil {
		return false
	}
	// The overlay is in its -drive option, commas doubled (qemuOpt).
	return strings.Contains(string(b), "file="+qemuOpt(r.path("overlay.qcow2"))+",")
}

func (r *record) info(p *Provider) provider.Info {
	st := provider.StateStopped
	if r.qemuAlive() {
		st = provider.StateRunning
	}
	return provider.Info{
		Name: r.Name, Group: r.Group, Provider: p.Name(), State: st,
		PrivateIP: r.PrivateIP, Addresses: []string{r.PrivateIP},
		Forwards: map[int]string{22: fmt.Sprintf("127.0.0.1:%d", r.SSHPort), 8443: fmt.Sprintf("127.0.0.1:%d", r.APIPort)},
		Accel:    r.Accel, Owner: r.Owner,
	}
}
