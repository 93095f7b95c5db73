package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/artifact"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

// A booted snapshot is the whole state of a VM that booted the image
// without any node's seed and stopped at the image's seed gate, before
// cloud-init, LXD, Tor or sshd made anything per-node: its RAM and device
// state (a QEMU migration stream) and its disk at that instant (a read-only
// qcow2 layer over the image). A node restored from it starts where the
// template stopped, gets its seed on the CD-ROM, and runs the real
// cloud-init from there, skipping the kernel and early boot.

// deviceSet names buildArgv's device set; a migration stream only loads
// into the same devices, so changing them must change every snapshot key.
const deviceSet = "d1"

// gateWaiting is what the image's seed gate prints on the serial console
// while it waits: the moment to take the snapshot.
const gateWaiting = "bcmtest-seed: waiting for the seed"

// SnapshotsKept bounds the snapshot cache per image (each is the size of a
// guest's used RAM plus its early-boot disk writes).
const SnapshotsKept = 4

// Shape is what a snapshot must match to restore: the image and the
// machine. Memory is part of it, so a host that sizes nodes down gets its
// own snapshot.
type Shape struct {
	Image     string `json:"image"`
	CPUs      int    `json:"cpus"`
	MemoryMiB int    `json:"memory_mib"`
	Accel     string `json:"accel"`
	Devices   string `json:"devices"`
}

// Key names the shape's snapshot in the cache.
func (s Shape) Key() string {
	return fmt.Sprintf("%s-c%d-m%d-%s-%s", s.Image, s.CPUs, s.MemoryMiB, s.Accel, s.Devices)
}

func (s Shape) String() string {
	return fmt.Sprintf("%d vCPU, %d MiB, %s, image %s", s.CPUs, s.MemoryMiB, s.Accel, s.Image)
}

// SnapshotManifest is written last into a snapshot entry.
type SnapshotManifest struct {
	Key        string        `json:"key"`
	Shape      Shape         `json:"shape"`
	RootGiB    int           `json:"root_gib"`
	Created    time.Time     `json:"created"`
	CreateTime time.Duration `json:"create_time_ns"`
	SizeBytes  int64         `json:"size_bytes"`
}

// Snapshot is a complete cache entry.
type Snapshot struct {
	Dir      string
	State    string // the migration stream
	Disk     string // the frozen disk layer, backed by the image's root
	Manifest SnapshotManifest
}

const snapshotManifestName = "snapshot.json"

func openSnapshot(dir string) (Snapshot, error) {
	var m SnapshotManifest
	if err := state.LoadJSON(filepath.Join(dir, snapshotManifestName), &m); err != nil {
		return Snapshot{}, err
	}
	s := Snapshot{Dir: dir, State: filepath.Join(dir, "state"), Disk: filepath.Join(dir, "disk.qcow2"), Manifest: m}
	for _, f := range []string{s.State, s.Disk} {
		if _, err := os.Stat(f); err != nil {
			return Snapshot{}, fmt.Errorf("snapshot %s is incomplete: %w", m.Key, err)
		}
	}
	return s, nil
}

func snapshotComplete(dir string) error { _, err := openSnapshot(dir); return err }

func (p *Provider) snapshotStore() artifact.Store {
	return artifact.Store{Dir: snapshotsDir(p.cfg.Dirs), Kind: "snapshot", Progress: logLines{p}}
}

func snapshotsDir(d state.Dirs) string { return filepath.Join(d.Cache, "snapshots") }

func vmsDir(d state.Dirs) string { return filepath.Join(d.State, "qemu", "vms") }

// logLines turns the store's progress lines into the provider's log.
type logLines struct{ p *Provider }

func (l logLines) Write(b []byte) (int, error) {
	l.p.logf("%s", strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// snapshot returns the booted snapshot for a shape, making it on first use.
// A failure is remembered for the provider's lifetime, so the nodes of one
// run boot cold after one try instead of each trying again.
func (p *Provider) snapshot(ctx context.Context, img image.Image, sh Shape, aptPort int) (Snapshot, error) {
	p.mu.Lock()
	failed := p.snapshotFailed[sh.Key()]
	p.mu.Unlock()
	if failed != nil {
		return Snapshot{}, failed
	}
	snap, err := p.getSnapshot(ctx, img, sh, aptPort)
	if err != nil && ctx.Err() == nil {
		p.mu.Lock()
		p.snapshotFailed[sh.Key()] = err
		p.mu.Unlock()
	}
	return snap, err
}

func (p *Provider) getSnapshot(ctx context.Context, img image.Image, sh Shape, aptPort int) (Snapshot, error) {
	store := p.snapshotStore()
	if e, err := store.Lookup(sh.Key(), snapshotComplete); err == nil {
		return openSnapshot(e.Dir)
	}
	p.logf("snapshot %s: none yet for this shape (%s); booting a template to make it", sh.Key(), sh)
	e, err := store.Get(ctx, sh.Key(), snapshotComplete, func(ctx context.Context, tmp string) error {
		return p.makeSnapshot(ctx, img, sh, aptPort, tmp)
	})
	if err != nil {
		return Snapshot{}, err
	}
	if err := p.pruneSnapshots(SnapshotsKept, img.Key); err != nil {
		p.logf("snapshot cache: %v", err)
	}
	return openSnapshot(e.Dir)
}

// makeSnapshot boots a template VM of the shape with an empty CD-ROM, waits
// for the seed gate, and saves the paused VM into tmp.
func (p *Provider) makeSnapshot(ctx context.Context, img image.Image, sh Shape, aptPort int, tmp string) error {
	start := time.Now()
	key := sh.Key()
	disk := filepath.Join(tmp, "disk.qcow2")
	if out, err := exec.CommandContext(ctx, "qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", img.Root,
		disk, strconv.Itoa(p.cfg.Recipe.RootSizeGiB)+"G").CombinedOutput(); err != nil {
		return fmt.Errorf("making snapshot %s: creating its disk: %w: %s", key, err, out)
	}
	// QMP and pid files in a short private directory: unix socket paths
	// are limited to 108 bytes and the cache path can be long.
	run, err := os.MkdirTemp("", "bcmtest-template-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(run)
	sshPort, err := freePort()
	if err != nil {
		return err
	}
	apiPort, err := freePort()
	if err != nil {
		return err
	}
	serial := filepath.Join(tmp, "serial.log")
	argv := buildArgv(argvInput{
		Name: "bcmtest-template", CPUs: sh.CPUs, MemoryMiB: sh.MemoryMiB, Accel: sh.Accel,
		Kernel: img.Kernel, Initrd: img.Initrd, KernelArgs: img.KernelArgs, Overlay: disk,
		SSHPort: sshPort, APIPort: apiPort, PrivateIP: templateIP, AptPort: aptPort,
		MACs:   macs("template", key), // NIC 1 on no segment: the template talks to no cluster
		Serial: serial, QMP: filepath.Join(run, "qmp.sock"), PIDFile: filepath.Join(run, "qemu.pid"),
	})
	logf, err := os.OpenFile(filepath.Join(tmp, "qemu.log"), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(qemuBinary, argv...)
	// Its own process group (a terminal's Ctrl-C reaches the harness, which
	// stops it), and killed with the harness if that dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("making snapshot %s: starting %s: %w", key, qemuBinary, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
	}()
	qmpSock := filepath.Join(run, "qmp.sock")
	p.logf("snapshot %s: template booting (%s)", key, sh)

	bctx, cancel := context.WithTimeout(ctx, p.cfg.Intervals.Boot)
	defer cancel()
	err = wait.Until(bctx, p.cfg.Intervals.Poll, p.cfg.Intervals.PollMax, func(context.Context) (bool, string, error) {
		select {
		case e := <-exited:
			exited <- e
			return false, "", fmt.Errorf("template qemu exited (%v): %s", e, tailFile(filepath.Join(tmp, "qemu.log"), 5))
		default:
		}
		return strings.Contains(readFile(serial), gateWaiting), "template booting to the seed gate", nil
	})
	if err != nil {
		return fmt.Errorf("making snapshot %s: %w; console: %s", key, err, tailFile(serial, 10))
	}
	booted := time.Since(start)
	if _, err := p.qmp(ctx, qmpSock, "stop", nil); err != nil {
		return fmt.Errorf("making snapshot %s: pausing the template: %w", key, err)
	}
	// The default bandwidth cap is for live migration over a network; a
	// paused VM to a local file should go as fast as the disk takes it.
	p.qmp(ctx, qmpSock, "migrate-set-parameters", map[string]any{"max-bandwidth": int64(8) << 30})
	state := filepath.Join(tmp, "state")
	if _, err := p.qmp(ctx, qmpSock, "migrate", map[string]any{"uri": "exec:cat > " + shellQuote(state)}); err != nil {
		return fmt.Errorf("making snapshot %s: saving the template: %w", key, err)
	}
	if err := p.waitMigration(ctx, qmpSock, "query-migrate", p.cfg.Intervals.Boot, p.cfg.Intervals.QMP.Poll); err != nil {
		return fmt.Errorf("making snapshot %s: saving the template: %w", key, err)
	}
	p.qmp(ctx, qmpSock, "quit", nil)
	select {
	case <-exited:
		exited <- nil
	case <-time.After(p.cfg.Intervals.ProcessExit.Timeout):
	}
	for _, f := range []string{disk, state} {
		if err := os.Chmod(f, 0o444); err != nil {
			return err
		}
	}
	var size int64
	for _, f := range []string{disk, state} {
		if fi, err := os.Stat(f); err == nil {
			size += fi.Size()
		}
	}
	m := SnapshotManifest{Key: key, Shape: sh, RootGiB: p.cfg.Recipe.RootSizeGiB, Created: time.Now().UTC(), CreateTime: time.Since(start), SizeBytes: size}
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(filepath.Join(tmp, snapshotManifestName), b, 0o644); err != nil {
		return fmt.Errorf("making snapshot %s: %w", key, err)
	}
	p.logf("snapshot %s: made in %s (template at the seed gate after %s; %.0f MiB)", key, time.Since(start).Round(100*time.Millisecond),
		booted.Round(100*time.Millisecond), float64(size)/(1<<20))
	return nil
}

// templateIP is the template's private address; no node is ever given it.
const templateIP = "10.77.0.250"

// waitMigration polls a migration's status until it completes.
func (p *Provider) waitMigration(ctx context.Context, sock, query string, timeout, poll time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Steady: a restore is done within seconds and the node waits on it.
	return wait.Until(ctx, poll, poll, func(ctx context.Context) (bool, string, error) {
		raw, err := p.qmp(ctx, sock, query, nil)
		if err != nil {
			return false, "", err
		}
		var st struct {
			Status    string `json:"status"`
			ErrorDesc string `json:"error-desc"`
		}
		json.Unmarshal(raw, &st)
		switch st.Status {
		case "completed", "paused", "postmigrate", "running":
			return true, "", nil
		case "failed", "cancelled", "internal-error", "shutdown", "guest-panicked":
			return false, "", fmt.Errorf("migration %s %s", st.Status, st.ErrorDesc)
		}
		return false, "migration " + st.Status, nil
	})
}

// restore loads a snapshot into rec's qemu (started with -incoming), puts
// the node's seed on the CD-ROM, grows its disk to the node's size and lets
// it run. The guest's seed gate then renews its identity.
func (p *Provider) restore(ctx context.Context, rec *record, snap Snapshot) error {
	sock := rec.path("qmp.sock")
	// qemu writes its pidfile before it opens the QMP socket.
	qctx, cancel := context.WithTimeout(ctx, p.cfg.Intervals.QMP.Timeout)
	defer cancel()
	if err := wait.Until(qctx, p.cfg.Intervals.QMP.Poll, 10*p.cfg.Intervals.QMP.Poll, func(ctx context.Context) (bool, string, error) {
		if !rec.qemuAlive() {
			return false, "", fmt.Errorf("qemu exited: %s", tailFile(rec.path("qemu.log"), 5))
		}
		_, err := p.qmp(ctx, sock, "query-status", nil)
		return err == nil, fmt.Sprint(err), nil
	}); err != nil {
		return fmt.Errorf("waiting for QMP: %w", err)
	}
	if _, err := p.qmp(ctx, sock, "migrate-incoming", map[string]any{"uri": "fd:" + strconv.Itoa(incomingFD)}); err != nil {
		return fmt.Errorf("loading snapshot: %w", err)
	}
	if err := p.waitMigration(ctx, sock, "query-status", p.cfg.Intervals.Boot, p.cfg.Intervals.QMP.Poll); err != nil {
		return fmt.Errorf("loading snapshot: %w", err)
	}
	if _, err := p.qmp(ctx, sock, "blockdev-change-medium", map[string]any{
		"id": cdromID, "filename": rec.path("seed.iso"), "format": "raw", "read-only-mode": "read-only"}); err != nil {
		return fmt.Errorf("inserting the seed: %w", err)
	}
	if rec.DiskGiB > snap.Manifest.RootGiB {
		if _, err := p.qmp(ctx, sock, "block_resize", map[string]any{"device": diskID, "size": int64(rec.DiskGiB) << 30}); err != nil {
			return fmt.Errorf("growing the disk to %d GiB: %w", rec.DiskGiB, err)
		}
	}
	if _, err := p.qmp(ctx, sock, "cont", nil); err != nil {
		return fmt.Errorf("resuming: %w", err)
	}
	return nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func tailFile(path string, n int) string {
	lines := strings.Split(strings.TrimRight(readFile(path), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// SnapshotInfo describes a cached snapshot for `bcmtest image list`.
type SnapshotInfo struct {
	Key      string           `json:"key"`
	Dir      string           `json:"dir"`
	Manifest SnapshotManifest `json:"manifest"`
	// InUse lists the VMs whose disks are layered on it.
	InUse []string `json:"in_use,omitempty"`
}

// Snapshots lists the cached snapshots, newest first.
func (p *Provider) Snapshots() ([]SnapshotInfo, error) { return Snapshots(p.cfg.Dirs) }

// Snapshots lists the snapshots cached under d, newest first, with the VMs
// layered on each; it starts nothing (`bcmtest image list`).
func Snapshots(d state.Dirs) ([]SnapshotInfo, error) {
	es, err := artifact.Store{Dir: snapshotsDir(d), Kind: "snapshot"}.List(snapshotComplete)
	if err != nil {
		return nil, err
	}
	users, err := snapshotUsers(vmsDir(d))
	if err != nil {
		return nil, err
	}
	var out []SnapshotInfo
	for _, e := range es {
		s, err := openSnapshot(e.Dir)
		if err != nil {
			continue
		}
		out = append(out, SnapshotInfo{Key: e.Key, Dir: e.Dir, Manifest: s.Manifest, InUse: users[e.Key]})
	}
	return out, nil
}

func snapshotUsers(vms string) (map[string][]string, error) {
	recs, _, err := loadRecords(vms)
	if err != nil {
		return nil, err
	}
	users := map[string][]string{}
	for _, r := range recs {
		if r.Snapshot != "" {
			users[r.Snapshot] = append(users[r.Snapshot], r.Name)
		}
	}
	return users, nil
}

// PruneSnapshots removes snapshots no VM is layered on: every one of an
// image other than currentImage, and beyond the newest keep of the rest.
// It returns the keys removed.
func (p *Provider) PruneSnapshots(keep int, currentImage string) ([]string, error) {
	return PruneSnapshots(p.cfg.Dirs, keep, currentImage)
}

// PruneSnapshots is Provider.PruneSnapshots for the cache under d, without
// a provider (`bcmtest image prune`).
func PruneSnapshots(d state.Dirs, keep int, currentImage string) ([]string, error) {
	snaps, err := Snapshots(d)
	if err != nil {
		return nil, err
	}
	store := artifact.Store{Dir: snapshotsDir(d), Kind: "snapshot"}
	var removed []string
	var errs []error
	kept := 0
	for _, s := range snaps {
		if len(s.InUse) > 0 {
			continue
		}
		if s.Manifest.Shape.Image == currentImage && kept < keep {
			kept++
			continue
		}
		if err := store.Remove(s.Key); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, s.Key)
	}
	return removed, errors.Join(errs...)
}

func (p *Provider) pruneSnapshots(keep int, currentImage string) error {
	removed, err := p.PruneSnapshots(keep, currentImage)
	for _, k := range removed {
		p.logf("snapshot cache: removed %s (over %d kept, or of an older image)", k, keep)
	}
	return err
}

// GenerationID is the VM generation ID QEMU gives the guest (a new one at
// every start, so each restore of one snapshot differs).
func (p *Provider) GenerationID(ctx context.Context, name string) (string, error) {
	rec, err := p.load(name)
	if err != nil {
		return "", err
	}
	raw, err := p.qmp(ctx, rec.path("qmp.sock"), "query-vm-generation-id", nil)
	if err != nil {
		return "", fmt.Errorf("reading the generation ID of %s: %w", name, err)
	}
	var g struct {
		GUID string `json:"guid"`
	}
	if err := json.Unmarshal(raw, &g); err != nil || g.GUID == "" {
		return "", fmt.Errorf("reading the generation ID of %s: unexpected answer %s", name, raw)
	}
	return g.GUID, nil
}

// SnapshotOf names the snapshot a VM was restored from ("" if it booted cold).
func (p *Provider) SnapshotOf(name string) (string, error) {
	rec, err := p.load(name)
	if err != nil {
		return "", err
	}
	return rec.Snapshot, nil
}

// StartedAt is when the VM's qemu process last started (benchmarks time a
// boot from it).
func (p *Provider) StartedAt(name string) (time.Time, error) {
	rec, err := p.load(name)
	if err != nil {
		return time.Time{}, err
	}
	return rec.Started, nil
}
