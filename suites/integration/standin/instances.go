package main

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

// group is the QEMU provider group of every stand-in instance: one private
// segment for all of them, as multipass puts all instances on one bridge.
const group = "standin"

// instance is what the stand-in knows about an instance that the QEMU
// provider does not: what launch was asked for. Its file is what makes an
// instance exist for the stand-in, so it is written before the VM is made
// and removed last by delete --purge.
type instance struct {
	Name         string    `json:"name"`
	Image        string    `json:"image"` // as given to launch; ignored
	ImageHash    string    `json:"image_hash"`
	ImageRelease string    `json:"image_release"`
	CPUs         int       `json:"cpus"`
	MemoryMiB    int       `json:"memory_mib"`
	DiskGiB      int       `json:"disk_gib"`
	Launcher     int       `json:"launcher"` // pid of the launch call
	Launched     bool      `json:"launched"` // launch finished
	Created      time.Time `json:"created"`
}

func (e *env) instancePath(name string) string { return filepath.Join(e.dir, name+".json") }

// createInstance writes the record unless one exists (fs.ErrExist then),
// so two launches of one name cannot both win.
func (e *env) createInstance(in instance) error {
	return state.CreateJSON(e.instancePath(in.Name), in)
}

// saveInstance replaces the record.
func (e *env) saveInstance(in instance) error {
	return state.SaveJSON(e.instancePath(in.Name), in)
}

// loadInstance reads the record of name; fs.ErrNotExist when the stand-in
// has no such instance.
func (e *env) loadInstance(name string) (instance, error) {
	var in instance
	if provider.ValidateVMName(name) != nil {
		return in, fs.ErrNotExist // never a path outside the directory
	}
	err := state.LoadJSON(e.instancePath(name), &in)
	return in, err
}

// instances lists every instance, sorted by name.
func (e *env) instances() ([]instance, error) {
	entries, err := os.ReadDir(e.dir)
	if err != nil {
		return nil, err
	}
	var out []instance
	for _, ent := range entries {
		n := ent.Name()
		if ent.IsDir() || strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".json") || strings.HasSuffix(n, proxySuffix) {
			continue
		}
		in, err := e.loadInstance(strings.TrimSuffix(n, ".json"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// lock serialises the commands that change an instance (launch, start,
// stop, delete), so its proxy and loopback address are set up and torn
// down by one call at a time.
func (e *env) lock(name string) (*state.Lock, error) {
	return state.LockFile(filepath.Join(e.dir, name+".lock"))
}

// qemu is the embedded QEMU provider the instances run on. Each call of the
// stand-in makes its own, as each multipass client call is its own process;
// Close stops its apt cache.
func (e *env) qemu() (*qemu.Provider, error) {
	if e.p != nil {
		return e.p, nil
	}
	// The harness that ran `multipass` owns the VM, not this short-lived call.
	if os.Getenv("BCMTEST_OWNER_PID") == "" {
		os.Setenv("BCMTEST_OWNER_PID", strconv.Itoa(os.Getppid()))
	}
	p, err := qemu.New(qemu.Config{Dirs: e.dirs, Accel: os.Getenv("BCMTEST_ACCEL"), Log: e.trace, Intervals: e.intervals})
	if err != nil {
		return nil, err
	}
	prev := e.close
	e.p, e.close = p, func() { p.Close(); prev() }
	return p, nil
}

// status is an instance's state in multipass's words, with the VM's
// provider view when the VM exists.
func status(ctx context.Context, p *qemu.Provider, in instance) (string, provider.Info, bool) {
	info, err := p.Info(ctx, in.Name)
	if err != nil {
		if !in.Launched && state.ProcessAlive(in.Launcher) {
			return "Starting", info, false
		}
		return "Unknown", info, false
	}
	switch {
	case info.State == provider.StateRunning && !in.Launched && state.ProcessAlive(in.Launcher):
		return "Starting", info, true
	case info.State == provider.StateRunning:
		return "Running", info, true
	case info.State == provider.StateStopped:
		return "Stopped", info, true
	}
	return "Unknown", info, true
}
