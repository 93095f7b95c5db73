package aptcache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

// A state directory has one shared apt cache. VMs reach it through a
// forward to its port that QEMU fixes when it starts them, so the cache
// must run as long as any of them does, not as long as the process that
// launched them: a cluster kept for a person (`bcmtest up`) outlives its
// command and still needs apt. The shared cache runs detached, recorded in
// the state directory; every process using it holds a shared lock on
// users.lock; it is stopped (StopUnused) when no process holds that and
// the caller, who knows the VMs, says none runs.

// SharedConfig says where the shared cache lives.
type SharedConfig struct {
	// Root holds the cache slots (the cache directory's apt/), shared with
	// other state directories' caches.
	Root string
	// StateDir holds the shared cache's record and locks (the state
	// directory's aptcache/).
	StateDir string
	Log      io.Writer
	// Waits: apt-cache-start bounds its start, process-exit its stop.
	Waits wait.Intervals
}

// sharedRecord is the running shared cache, in StateDir/cache.json. PID 0:
// none runs; Port is still the one VMs started earlier forward to.
type sharedRecord struct {
	PID     int       `json:"pid"`
	Port    int       `json:"port"`
	Dir     string    `json:"dir"`
	Started time.Time `json:"started"`
}

const (
	sharedRecordFile = "cache.json"
	gateFile         = "cache.lock" // held while starting or stopping
	usersFile        = "users.lock" // shared-locked by every process using it
)

// Shared returns a handle on the state directory's shared cache, starting
// it when none runs (on the port it had, when free). The handle holds the
// cache for this process until Release or Stop.
func Shared(ctx context.Context, cfg SharedConfig) (*Cache, error) {
	bin, err := binary()
	if err != nil {
		return nil, err
	}
	waits := cfg.Waits.WithDefaults()
	if err := state.MkdirPrivate(cfg.StateDir); err != nil {
		return nil, fmt.Errorf("starting the shared apt cache: %w", err)
	}
	gate, err := lockGate(ctx, cfg.StateDir, waits)
	if err != nil {
		return nil, err
	}
	defer gate.Unlock()
	user, err := flockFile(filepath.Join(cfg.StateDir, usersFile), syscall.LOCK_SH)
	if err != nil {
		return nil, fmt.Errorf("starting the shared apt cache: %w", err)
	}
	rec, err := loadShared(cfg.StateDir)
	if err != nil {
		user.Close()
		return nil, err
	}
	if running(rec) {
		if answers(ctx, rec.Port) {
			return &Cache{Port: rec.Port, Dir: rec.Dir, user: user, stateDir: cfg.StateDir, waits: waits}, nil
		}
		// Running but deaf: end it, so a new one can take its port and
		// it does not keep its slot.
		if err := terminate(ctx, rec, waits); err != nil {
			user.Close()
			return nil, err
		}
	}
	c, err := startShared(ctx, bin, cfg, waits, rec.Port)
	if err != nil {
		user.Close()
		return nil, err
	}
	c.user = user
	return c, nil
}

// startShared starts the detached daemon in a free slot and records it.
func startShared(ctx context.Context, bin string, cfg SharedConfig, waits wait.Intervals, port int) (*Cache, error) {
	slot, dir, err := takeSlotFile(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("starting the shared apt cache: %w", err)
	}
	// The daemon holds the slot's lock from here; this copy goes.
	defer slot.Close()
	if port != 0 {
		// The port VMs forward to may be held a moment longer by a cache
		// just ended; a timeout leaves start to pick another.
		wait.For(ctx, waits.ProcessExit, func(context.Context) (bool, string, error) {
			return portFree(port), fmt.Sprintf("port %d busy", port), nil
		})
	}
	c := &Cache{Dir: dir, done: make(chan struct{}), waits: waits, stateDir: cfg.StateDir}
	if err := c.start(ctx, bin, cfg.Log, daemon{detached: true, slot: slot, port: port}); err != nil {
		return nil, err
	}
	pid := c.cmd.Process.Pid
	if slot.Truncate(0) == nil {
		slot.WriteAt([]byte(strconv.Itoa(pid)+"\n"), 0) // who holds it, for others' messages
	}
	rec := sharedRecord{PID: pid, Port: c.Port, Dir: dir, Started: time.Now().UTC()}
	if err := state.SaveJSON(filepath.Join(cfg.StateDir, sharedRecordFile), rec); err != nil {
		c.kill()
		return nil, fmt.Errorf("recording the shared apt cache: %w", err)
	}
	return c, nil
}

// Release lets go of the shared cache and stops it if nothing uses it any
// more: inUse says whether VMs of the state directory still run.
func (c *Cache) Release(ctx context.Context, inUse bool) error {
	if c == nil || c.stateDir == "" {
		return c.Stop()
	}
	c.letGo()
	_, err := StopUnused(ctx, c.stateDir, inUse, c.waits)
	return err
}

// letGo drops this handle's hold on the shared cache.
func (c *Cache) letGo() {
	if c.user != nil {
		c.user.Close()
		c.user = nil
	}
}

// StopUnused stops the shared cache of stateDir (its aptcache/ directory)
// when nothing uses it: inUse false (no VM of the state directory runs)
// and no process holds it. It reports whether it stopped one.
func StopUnused(ctx context.Context, stateDir string, inUse bool, waits wait.Intervals) (bool, error) {
	if inUse {
		return false, nil
	}
	if _, err := os.Stat(filepath.Join(stateDir, sharedRecordFile)); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	waits = waits.WithDefaults()
	gate, err := lockGate(ctx, stateDir, waits)
	if err != nil {
		return false, err
	}
	defer gate.Unlock()
	users, err := flockFile(filepath.Join(stateDir, usersFile), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return false, nil // a process still uses it
	}
	if err != nil {
		return false, fmt.Errorf("stopping the shared apt cache: %w", err)
	}
	defer users.Close()
	rec, err := loadShared(stateDir)
	if err != nil || rec.PID == 0 {
		return false, err
	}
	stopped := false
	if running(rec) {
		if err := terminate(ctx, rec, waits); err != nil {
			return false, err
		}
		stopped = true
	}
	rec.PID = 0
	if err := state.SaveJSON(filepath.Join(stateDir, sharedRecordFile), rec); err != nil {
		return stopped, fmt.Errorf("recording the stopped apt cache: %w", err)
	}
	return stopped, nil
}

// terminate sends SIGTERM to the daemon's process group (its session),
// SIGKILL after process-exit, and waits until it is gone.
func terminate(ctx context.Context, rec sharedRecord, waits wait.Intervals) error {
	gone := func(context.Context) (bool, string, error) {
		return !running(rec), fmt.Sprintf("apt-cacher-ng %d still running", rec.PID), nil
	}
	syscall.Kill(-rec.PID, syscall.SIGTERM)
	if wait.For(ctx, waits.ProcessExit, gone) == nil {
		return nil
	}
	syscall.Kill(-rec.PID, syscall.SIGKILL)
	if err := wait.For(ctx, waits.ProcessExit, gone); err != nil {
		return fmt.Errorf("stopping the shared apt cache (process %d): %w", rec.PID, err)
	}
	return nil
}

// running says whether rec.PID is still that cache's apt-cacher-ng (not a
// recycled pid, not a zombie, whose command line is empty).
func running(rec sharedRecord) bool {
	if rec.PID <= 0 {
		return false
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(rec.PID), "cmdline"))
	if err != nil {
		return false
	}
	cmd := string(b)
	return strings.Contains(cmd, "apt-cacher-ng") && strings.Contains(cmd, filepath.Join(rec.Dir, "conf"))
}

// answers says whether a cache answers on port.
func answers(ctx context.Context, port int) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/acng-report.html", port), nil)
	if err != nil {
		return false
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode < 500
}

func loadShared(stateDir string) (sharedRecord, error) {
	var rec sharedRecord
	err := state.LoadJSON(filepath.Join(stateDir, sharedRecordFile), &rec)
	if errors.Is(err, fs.ErrNotExist) {
		return sharedRecord{}, nil
	}
	if err != nil {
		return sharedRecord{}, fmt.Errorf("reading the shared apt cache's record: %w", err)
	}
	return rec, nil
}

// lockGate takes stateDir's start/stop lock, polling (apt-cache-start's
// poll) until ctx or apt-cache-start's timeout ends: starting a cache
// takes seconds, and one waiter is enough to serialise them.
func lockGate(ctx context.Context, stateDir string, waits wait.Intervals) (*state.Lock, error) {
	var gate *state.Lock
	err := wait.For(ctx, waits.AptCacheStart, func(context.Context) (bool, string, error) {
		l, err := state.TryLock(filepath.Join(stateDir, gateFile))
		if errors.Is(err, state.ErrLocked) {
			return false, err.Error(), nil
		}
		if err != nil {
			return false, "", err
		}
		gate = l
		return true, "", nil
	})
	if err != nil {
		return nil, fmt.Errorf("locking the shared apt cache in %s: %w", stateDir, err)
	}
	return gate, nil
}

// flockFile opens path and flocks it how; closing the file releases it.
func flockFile(path string, how int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return f, nil
}

// takeSlotFile locks the first free slot under root as an open file the
// detached daemon inherits, so the slot is held exactly as long as the
// daemon runs. A slot file removed and made anew by a holder that released
// it (state.Lock) is locked again.
func takeSlotFile(root string) (*os.File, string, error) {
	if err := state.MkdirPrivate(root); err != nil {
		return nil, "", err
	}
	for i := 0; i < slots; i++ {
		dir := filepath.Join(root, "slot-"+strconv.Itoa(i))
		for {
			f, err := flockFile(dir+".lock", syscall.LOCK_EX|syscall.LOCK_NB)
			if errors.Is(err, syscall.EWOULDBLOCK) {
				break
			}
			if err != nil {
				return nil, "", fmt.Errorf("locking cache slot %s: %w", dir, err)
			}
			if sameFile(f, dir+".lock") {
				return f, dir, nil
			}
			f.Close()
		}
	}
	return nil, "", &SlotsBusyError{Root: root, Slots: slots}
}

// sameFile says whether f is still the file at path.
func sameFile(f *os.File, path string) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	pi, err := os.Stat(path)
	return err == nil && os.SameFile(fi, pi)
}
