// Package qemu is the embedded VM provider: real QEMU VMs booted directly
// from a Debian image the harness builds itself, configured by cloud-init
// through a NoCloud seed, where multipass is absent.
package qemu

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/aptcache"
	"github.com/BitcoinCacheMachine/bcmtest/harness/procfd"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
	"github.com/BitcoinCacheMachine/bcmtest/harness/sshx"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
	"golang.org/x/crypto/ssh"
)

// Config configures the provider. Zero values get defaults.
type Config struct {
	Dirs      state.Dirs
	Recipe    image.Recipe
	Accel     string // auto (default), kvm or tcg
	Intervals wait.Intervals
	// NoAptCache skips the apt cache (VMs then cannot install packages).
	NoAptCache bool
	// NoSnapshot boots every VM cold instead of restoring the booted
	// snapshot of its shape (BCMTEST_SNAPSHOT=0).
	NoSnapshot bool
	// Simulate stands in for an archive update the archive does not have,
	// for benchmarks and specs; zero on every default path.
	Simulate SimulatedUpdate
	// Segment is the kind of private segment new clusters get:
	// SegmentSwitch or SegmentMulticast; "" reads BCMTEST_SEGMENT (unset:
	// SegmentSwitch).
	Segment string
	Log     io.Writer
}

// Provider implements provider.Provider with qemu-system-x86_64.
type Provider struct {
	cfg     Config
	root    string // <state>/qemu
	vmsDir  string
	images  image.Store
	signer  ssh.Signer
	authKey string

	accelMu sync.Mutex
	mu      sync.Mutex
	apt     *aptcache.Cache
	clients map[string]*ssh.Client
	// snapshotFailed remembers shapes whose snapshot could not be made.
	snapshotFailed map[string]error
	// imageArchive remembers the archive state each image was built from.
	imageArchive map[string]string
	// accelSaid is the last accel line logged (under accelMu).
	accelSaid string
}

var _ provider.Provider = (*Provider)(nil)
var _ provider.Faults = (*Provider)(nil)

// New prepares the provider's state directory and SSH key.
func New(cfg Config) (*Provider, error) {
	if err := cfg.Simulate.check(); err != nil {
		return nil, err
	}
	if err := CheckHost(); err != nil {
		return nil, err
	}
	// qemu and the apt cache outlive this process: they must not keep a
	// descriptor (a caller's lock) this process inherited.
	if err := procfd.CloseOnExecInherited(); err != nil {
		return nil, err
	}
	if cfg.Dirs.State == "" {
		d, err := state.Default()
		if err != nil {
			return nil, err
		}
		cfg.Dirs = d
	}
	if cfg.Recipe.Suite == "" {
		cfg.Recipe = image.DefaultRecipe()
	}
	if cfg.Intervals == (wait.Intervals{}) {
		iv, err := wait.Load()
		if err != nil {
			return nil, err
		}
		cfg.Intervals = iv
	}
	cfg.Intervals = cfg.Intervals.WithDefaults()
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	kind, err := segmentKind(cfg.Segment)
	if err != nil {
		return nil, err
	}
	cfg.Segment = kind
	switch cfg.Accel {
	case "", AccelAuto, AccelKVM, AccelTCG:
	default:
		return nil, fmt.Errorf("accel %q: must be auto, kvm or tcg", cfg.Accel)
	}
	p := &Provider{cfg: cfg, root: filepath.Join(cfg.Dirs.State, "qemu"), clients: map[string]*ssh.Client{}, snapshotFailed: map[string]error{},
		imageArchive: map[string]string{}}
	p.vmsDir = filepath.Join(p.root, "vms")
	if err := state.MkdirPrivate(p.vmsDir); err != nil {
		return nil, err
	}
	p.images = image.Store{Dir: filepath.Join(cfg.Dirs.Cache, "images"), Progress: cfg.Log}
	signer, auth, err := sshx.LoadOrCreateKey(filepath.Join(p.root, "id_ed25519"))
	if err != nil {
		return nil, err
	}
	p.signer, p.authKey = signer, auth
	return p, nil
}

func (p *Provider) Name() string { return "qemu" }

func (p *Provider) logf(format string, args ...any) {
	fmt.Fprintf(p.cfg.Log, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// Image returns the VM image, building it when absent.
func (p *Provider) Image(ctx context.Context) (image.Image, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Intervals.ImageBuild)
	defer cancel()
	return p.images.Get(ctx, p.cfg.Recipe)
}

// Images is the provider's image store.
func (p *Provider) Images() image.Store { return p.images }

// Release is the Debian release of the image in use (provider.Releaser).
func (p *Provider) Release() string { return p.cfg.Recipe.Suite }

// Recipe is the image recipe in use.
func (p *Provider) Recipe() image.Recipe { return p.cfg.Recipe }

func (p *Provider) ensureAptCache(ctx context.Context) (int, error) {
	if p.cfg.NoAptCache {
		return 0, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.apt != nil {
		return p.apt.Port, nil
	}
	// The state directory's one cache: VMs forward to its port for as long
	// as they run, which may be long after this process (a kept cluster).
	c, err := aptcache.Shared(ctx, aptcache.SharedConfig{Root: filepath.Join(p.cfg.Dirs.Cache, "apt"),
		StateDir: p.aptStateDir(), Log: p.cfg.Log, Waits: p.cfg.Intervals})
	if err != nil {
		return 0, err
	}
	p.apt = c
	return c.Port, nil
}

// aptStateDir is where the state directory's shared apt cache is recorded.
func (p *Provider) aptStateDir() string { return filepath.Join(p.cfg.Dirs.State, "aptcache") }

// vmsRunning says whether any VM of the state directory runs (or may: a
// VM directory without a record, records that cannot be read).
func (p *Provider) vmsRunning() bool {
	recs, orphans, err := loadRecords(p.vmsDir)
	if err != nil || len(orphans) > 0 {
		return true
	}
	for _, r := range recs {
		if r.qemuAlive() {
			return true
		}
	}
	return false
}

// Close drops SSH connections and lets go of the apt cache, which stops
// once no VM of the state directory runs and no process uses it: after
// `bcmtest down` or a sweep removed the last VM, not while a kept
// cluster runs.
func (p *Provider) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for n, c := range p.clients {
		c.Close()
		delete(p.clients, n)
	}
	if p.apt != nil {
		p.apt.Stop()
		p.apt = nil
	}
	if p.cfg.NoAptCache {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.Intervals.AptCacheStart.Timeout+p.cfg.Intervals.ProcessExit.Timeout*2)
	defer cancel()
	if _, err := aptcache.StopUnused(ctx, p.aptStateDir(), p.vmsRunning(), p.cfg.Intervals); err != nil {
		return fmt.Errorf("closing the qemu provider: %w", err)
	}
	return nil
}
