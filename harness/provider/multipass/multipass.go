// Package multipass is the VM provider that drives Canonical's multipass
// through its command-line client. Every operation is one or a few runs of
// the multipass binary; the only state the harness keeps is a small record
// per VM, because multipass itself has no notion of a group.
package multipass

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

// DefaultImage is the current Ubuntu LTS, the release LXD is tested on.
const DefaultImage = "24.04"

// minDiskGiB is the smallest disk a 24.04 cloud image boots from: its
// virtual size is 3.5 GiB and multipass refuses anything below that.
const minDiskGiB = 4

// Config configures the provider. Zero values get defaults.
type Config struct {
	// Binary is the multipass client; "multipass" (from PATH) by default.
	Binary string
	// Image is what `multipass launch` boots; DefaultImage by default.
	Image string
	// LaunchTimeout bounds `multipass launch` (its --timeout); by default
	// Intervals.Boot + Intervals.CloudInit.
	LaunchTimeout time.Duration
	// Log receives progress lines; nil discards them.
	Log       io.Writer
	Intervals wait.Intervals
	// StateDir holds one JSON record per VM this harness launched (created
	// 0700); by default <state dir>/multipass.
	StateDir string
	// TempDir holds the user-data and transfer files handed to the client.
	// A snap-confined client can read neither /tmp nor hidden directories,
	// so the default is ~/snap/multipass/common/bcmtest when the snap is
	// installed and <StateDir>/tmp otherwise.
	TempDir string
}

// Provider implements provider.Provider with the multipass client.
type Provider struct {
	cfg     Config
	records store
}

var _ provider.Provider = (*Provider)(nil)

// New fills in defaults and prepares the state and temporary directories.
// It does not talk to the daemon; use Detect for that.
func New(cfg Config) (*Provider, error) {
	if cfg.Binary == "" {
		cfg.Binary = "multipass"
	}
	if _, err := exec.LookPath(cfg.Binary); err != nil {
		return nil, fmt.Errorf("the multipass provider needs %s: %w (install with `sudo snap install multipass`)", cfg.Binary, err)
	}
	if cfg.Image == "" {
		cfg.Image = DefaultImage
	}
	// Zero intervals are the defaults (providers.New passes what wait.Load
	// read); waits left zero in partly set ones get theirs.
	cfg.Intervals = cfg.Intervals.WithDefaults()
	if cfg.LaunchTimeout <= 0 {
		cfg.LaunchTimeout = cfg.Intervals.Boot + cfg.Intervals.CloudInit
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.StateDir == "" {
		d, err := state.Default()
		if err != nil {
			return nil, err
		}
		cfg.StateDir = filepath.Join(d.State, "multipass")
	}
	if cfg.TempDir == "" {
		cfg.TempDir = defaultTempDir(cfg.StateDir)
	}
	// multipass transfer splits its arguments at ':' into instance and path.
	if strings.Contains(cfg.TempDir, ":") {
		return nil, fmt.Errorf("multipass temporary directory %s: must not contain ':' (multipass transfer reads it as an instance name)", cfg.TempDir)
	}
	for _, d := range []string{cfg.StateDir, cfg.TempDir} {
		if err := state.MkdirPrivate(d); err != nil {
			return nil, err
		}
	}
	return &Provider{cfg: cfg, records: store{dir: cfg.StateDir}}, nil
}

// defaultTempDir picks a directory the multipass client can read files from.
func defaultTempDir(stateDir string) string {
	if home, err := os.UserHomeDir(); err == nil {
		snapDir := filepath.Join(home, "snap", "multipass")
		if fi, err := os.Stat(snapDir); err == nil && fi.IsDir() {
			return filepath.Join(snapDir, "common", "bcmtest")
		}
	}
	return filepath.Join(stateDir, "tmp")
}

func (p *Provider) Name() string { return "multipass" }

// Close does nothing: the multipass daemon owns every running resource.
func (p *Provider) Close() error { return nil }

func logf(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
