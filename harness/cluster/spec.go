// Package cluster brings NAME-00..NAME-NN up as one LXD cluster on ZFS on
// any provider, verifies it through the LXD API, and always tears it down.
// It is what up_lxd_cluster.sh, provision_lxd_master.sh and
// provision_lxd_member.sh did, made concurrent, verified and safe.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

// Spec describes a cluster. Zero values get the original scripts' defaults.
type Spec struct {
	// Name prefixes every node: NAME-00 bootstraps, NAME-01..NAME-NN join.
	Name string
	// Members is the number of joining members; 0 is a single-node cluster.
	Members int
	// Per-node resources, as multipass takes them ("2G", "30G").
	CPUs   int
	Memory string
	Disk   string
	// CloudInit is the user-data every node boots with; CloudInitName names
	// it in messages (usually the file path).
	CloudInit     []byte
	CloudInitName string
	// PoolName and PoolSize describe the ZFS storage pool (a loop file).
	PoolName string
	PoolSize string
	// Provider makes the VMs; required.
	Provider provider.Provider
	// Intervals bounds every wait. Zero means wait.Load (the defaults
	// overridden by BCMTEST_INTERVALS; a bad value fails validation); a
	// wait left zero in a partly set one gets its default.
	Intervals wait.Intervals
	// KeepOnFailure leaves the VMs of a failed Up for inspection.
	KeepOnFailure bool
	// Reuse attaches to an existing healthy cluster of this name instead of
	// refusing to create it again.
	Reuse bool
	// MaxParallel bounds concurrent launches; 0 sizes it from the host.
	MaxParallel int
	// Log receives progress lines with timestamps; nil discards.
	Log io.Writer
	// Persistent marks a cluster meant to outlive this process (bcmtest
	// up), so sweeps of crashed runs leave it alone.
	Persistent bool
	// StateDir holds cluster records and client certificates; "" = default.
	StateDir string
	// OnFailure runs before a failed Up tears down, to collect diagnostics.
	OnFailure func(ctx context.Context, c *Cluster, err error)
	// OnEvent receives each step of Up as it happens (progress output). It
	// is called from several goroutines and must not block.
	OnEvent func(Event)
	// OnPhase, when set, gives each node's launch a hook for its boot
	// phases (provider.LaunchInput.OnPhase); nil leaves them unreported.
	OnPhase func(node string) func(provider.BootPhase)
}

// Defaults from the original BCM scripts (2 CPUs, 2 GiB, 30 GB disk).
const (
	DefaultCPUs     = 2
	DefaultMemory   = "2G"
	DefaultDisk     = "30G"
	DefaultPoolName = "local"
	DefaultPoolSize = "5G"
	// MaxMembers keeps node names at two-digit suffixes as the scripts used.
	MaxMembers = 99
)

// resolved is a validated spec with sizes in numbers.
type resolved struct {
	Spec
	MemoryMiB int
	DiskGiB   int
	PoolGiB   int
	NodeNames []string
	Notices   []string
	MaxLaunch int
}

var clusterName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*$`)
var looksLikeNode = regexp.MustCompile(`-[0-9]{2}$`)
var poolName = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

// ValidateName checks a cluster name: a hostname prefix such that NAME-NN
// is a valid host name, and not itself a node name.
func ValidateName(name string) error {
	switch {
	case name == "":
		return errors.New("cluster name: must not be empty")
	case len(name)+3 > 63:
		return fmt.Errorf("cluster name %q: must be at most 60 characters so that %s-NN fits a 63-character host name", name, name)
	case name[0] >= '0' && name[0] <= '9':
		return fmt.Errorf("cluster name %q: must not start with a digit", name)
	case name[0] == '-':
		return fmt.Errorf("cluster name %q: must not start with a hyphen", name)
	case !clusterName.MatchString(name):
		return fmt.Errorf("cluster name %q: may contain only letters, digits and hyphens", name)
	case strings.HasSuffix(name, "-"):
		return fmt.Errorf("cluster name %q: must not end with a hyphen", name)
	case looksLikeNode.MatchString(name):
		return fmt.Errorf("cluster name %q: must not end in -NN, which is how node names end (did you mean %s?)", name, name[:len(name)-3])
	}
	return nil
}

// NodeName is the name of node i (0 = bootstrap).
func NodeName(cluster string, i int) string { return fmt.Sprintf("%s-%02d", cluster, i) }

// IsNodeOf reports whether vm is exactly a node of cluster: CLUS1-03 is a
// node of CLUS1, CLUS10-03 is not (the original destroy script's substring
// grep would have said it was).
func IsNodeOf(vm, cluster string) bool {
	c, _, ok := splitNodeName(vm)
	return ok && c == cluster
}

// HostResources is what the host offers; tests inject their own.
type HostResources struct {
	CPUs      int
	MemoryMiB int
	// FreeDiskGiB is free space where overlays live (-1 unknown).
	FreeDiskGiB int
}

// Host reads this machine's resources.
func Host(stateDir string) HostResources {
	h := HostResources{CPUs: runtime.NumCPU(), FreeDiskGiB: -1}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.Atoi(f[1])
				h.MemoryMiB = kb / 1024
			}
		}
	}
	var st syscall.Statfs_t
	if stateDir != "" && syscall.Statfs(stateDir, &st) == nil {
		h.FreeDiskGiB = int(st.Bavail * uint64(st.Bsize) >> 30)
	}
	return h
}

// minNodeMiB is the least memory LXD with ZFS runs in under TCG.
const minNodeMiB = 1024

// perNodeDiskUseGiB is what a node's overlay really takes (sparse) after
// cloud-init and LXD with an empty pool.
const perNodeDiskUseGiB = 3

func (s Spec) withDefaults() Spec {
	if s.CPUs == 0 {
		s.CPUs = DefaultCPUs
	}
	if s.Memory == "" {
		s.Memory = DefaultMemory
	}
	if s.Disk == "" {
		s.Disk = DefaultDisk
	}
	if s.PoolName == "" {
		s.PoolName = DefaultPoolName
	}
	if s.PoolSize == "" {
		s.PoolSize = DefaultPoolSize
	}
	if s.CloudInitName == "" {
		s.CloudInitName = "cloud-init user-data"
	}
	if s.Log == nil {
		s.Log = io.Discard
	}
	return s
}

// Validate checks the spec against the rules and this host before any VM
// starts, naming the field and the rule.
func (s Spec) Validate() error {
	_, err := s.resolve(Host(""))
	return err
}

func (s Spec) resolve(h HostResources) (resolved, error) {
	s = s.withDefaults()
	var errs []error
	if s.Intervals == (wait.Intervals{}) {
		iv, err := wait.Load()
		if err != nil {
			errs = append(errs, err)
		}
		s.Intervals = iv
	}
	s.Intervals = s.Intervals.WithDefaults()
	r := resolved{Spec: s}
	if err := ValidateName(s.Name); err != nil {
		errs = append(errs, err)
	}
	n := s.Members + 1
	switch {
	case s.Members < 0:
		errs = append(errs, fmt.Errorf("members %d: must be 0 (single node) or more", s.Members))
	case s.Members > MaxMembers:
		errs = append(errs, fmt.Errorf("members %d: must be at most %d (node names have two-digit suffixes)", s.Members, MaxMembers))
	case h.MemoryMiB > 0 && n*minNodeMiB > h.MemoryMiB*85/100:
		errs = append(errs, fmt.Errorf("members %d: %d nodes need at least %d MiB, more than this host's %d MiB can run", s.Members, n, n*minNodeMiB, h.MemoryMiB))
	}
	if s.CPUs < 1 {
		errs = append(errs, fmt.Errorf("cpus %d: must be at least 1", s.CPUs))
	}
	mem, err := provider.ParseSize("memory", s.Memory)
	if err != nil {
		errs = append(errs, err)
	} else if r.MemoryMiB = int(mem >> 20); r.MemoryMiB < minNodeMiB {
		errs = append(errs, fmt.Errorf("memory %q: must be at least %d MiB for LXD with ZFS", s.Memory, minNodeMiB))
	} else if h.MemoryMiB > 0 && r.MemoryMiB > h.MemoryMiB {
		errs = append(errs, fmt.Errorf("memory %q: exceeds this host's %d MiB", s.Memory, h.MemoryMiB))
	}
	disk, err := provider.ParseSize("disk", s.Disk)
	if err != nil {
		errs = append(errs, err)
	} else if r.DiskGiB = int(disk >> 30); r.DiskGiB < 10 {
		errs = append(errs, fmt.Errorf("disk %q: must be at least 10G (image root plus the storage pool)", s.Disk))
	}
	if !poolName.MatchString(s.PoolName) {
		errs = append(errs, fmt.Errorf("pool name %q: must start with a lowercase letter and contain only lowercase letters, digits, '-' and '_'", s.PoolName))
	}
	pool, err := provider.ParseSize("pool size", s.PoolSize)
	if err != nil {
		errs = append(errs, err)
	} else if r.PoolGiB = int(pool >> 30); r.PoolGiB < 1 {
		errs = append(errs, fmt.Errorf("pool size %q: must be at least 1G", s.PoolSize))
	} else if r.DiskGiB > 0 && r.PoolGiB > r.DiskGiB-8 {
		errs = append(errs, fmt.Errorf("pool size %q: must leave 8G of the %dG disk for the system", s.PoolSize, r.DiskGiB))
	}
	if len(s.CloudInit) == 0 {
		errs = append(errs, fmt.Errorf("cloud-init: %s is empty; every node needs a cloud-init file", s.CloudInitName))
	}
	if s.Provider == nil {
		errs = append(errs, errors.New("provider: must be set"))
	}
	if len(errs) > 0 {
		return r, errors.Join(errs...)
	}
	// Size down to what the host holds, with a notice, as a person would.
	if h.CPUs > 0 && s.CPUs > h.CPUs {
		r.Notices = append(r.Notices, fmt.Sprintf("cpus: %d per node exceeds this host's %d; using %d", s.CPUs, h.CPUs, h.CPUs))
		r.CPUs = h.CPUs
	}
	if budget := h.MemoryMiB * 85 / 100; h.MemoryMiB > 0 && n*r.MemoryMiB > budget {
		fit := budget / n
		r.Notices = append(r.Notices, fmt.Sprintf("memory: %d nodes x %d MiB exceeds 85%% of this host's %d MiB; using %d MiB per node", n, r.MemoryMiB, h.MemoryMiB, fit))
		r.MemoryMiB = fit
	}
	if h.FreeDiskGiB >= 0 && h.FreeDiskGiB < n*perNodeDiskUseGiB {
		return r, fmt.Errorf("disk: %d nodes need about %d GiB free for their overlays; only %d GiB free", n, n*perNodeDiskUseGiB, h.FreeDiskGiB)
	}
	r.MaxLaunch = s.MaxParallel
	if r.MaxLaunch <= 0 {
		r.MaxLaunch = n
		if h.MemoryMiB > 0 {
			if m := h.MemoryMiB * 85 / 100 / r.MemoryMiB; m < r.MaxLaunch {
				r.MaxLaunch = max(m, 1)
			}
		}
		// Booting is CPU-bound under software emulation: more than two
		// vCPUs per host core at once only stretches every boot towards
		// its timeout without finishing the batch sooner.
		if h.CPUs > 0 {
			if c := 2 * h.CPUs / r.CPUs; c < r.MaxLaunch {
				r.MaxLaunch = max(c, 1)
			}
		}
	}
	for i := 0; i < n; i++ {
		r.NodeNames = append(r.NodeNames, NodeName(s.Name, i))
	}
	return r, nil
}
