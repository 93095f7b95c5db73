package qemu

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	"github.com/BitcoinCacheMachine/bcmtest/harness/buildstep"
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

// Shape is what a snapshot must match to restore: the image, the machine,
// and the QEMU that saved it (a stream loads only into the same QEMU
// build's same machine type). Memory is part of it, so a host that sizes
// nodes down gets its own snapshot.
type Shape struct {
	Image     string `json:"image"`
	CPUs      int    `json:"cpus"`
	MemoryMiB int    `json:"memory_mib"`
	Accel     string `json:"accel"`
	Devices   string `json:"devices"`
	// Machine is the concrete machine type (pc-q35-X.Y) and QEMU the
	// version qemu-system-x86_64 reports; snapshot() fills both in.
	Machine string `json:"machine"`
	QEMU    string `json:"qemu"`
	// Archive is the archive state (image.Recipe.ArchiveKey) the template
	// upgraded itself to; "" for the state the image was built from.
	Archive string `json:"archive,omitempty"`
	// Simulated names a SimulatedUpdate the template was made with.
	Simulated string `json:"simulated,omitempty"`
}

// Key names the shape's snapshot in the cache. The QEMU version goes in as
// a short hash (it has spaces and parentheses); an archive state other
// than the image's goes last, so the image's own snapshot keeps its key.
func (s Shape) Key() string {
	sum := sha256.Sum256([]byte(s.QEMU))
	key := fmt.Sprintf("%s-c%d-m%d-%s-%s-%s-q%s", s.Image, s.CPUs, s.MemoryMiB, s.Accel, s.Devices,
		keySafe(s.Machine), hex.EncodeToString(sum[:4]))
	if s.Archive != "" {
		key += "-a" + keySafe(s.Archive)
	}
	if s.Simulated != "" {
		key += "-sim" + keySafe(s.Simulated)
	}
	return key
}

// keySafe keeps a name one plain path element.
func keySafe(v string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, v)
}

// upgrades says whether the shape's template boots once to upgrade (or
// simulate an update) before it boots to the seed gate.
func (s Shape) upgrades() bool { return s.Archive != "" || s.Simulated != "" }

func (s Shape) String() string {
	out := fmt.Sprintf("%d vCPU, %d MiB, %s, image %s", s.CPUs, s.MemoryMiB, s.Accel, s.Image)
	if s.Machine != "" {
		out += fmt.Sprintf(", %s of QEMU %s", s.Machine, s.QEMU)
	}
	if s.Archive != "" {
		out += ", upgraded to archive state " + s.Archive
	}
	if s.Simulated != "" {
		out += ", simulated update " + s.Simulated
	}
	return out
}

// SnapshotManifest is written last into a snapshot entry.
type SnapshotManifest struct {
	Key        string        `json:"key"`
	Shape      Shape         `json:"shape"`
	RootGiB    int           `json:"root_gib"`
	Created    time.Time     `json:"created"`
	CreateTime time.Duration `json:"create_time_ns"`
	SizeBytes  int64         `json:"size_bytes"`
	// RemakeOf names the snapshot this one replaces after it failed to
	// restore; a remake that fails too is not remade again.
	RemakeOf string `json:"remake_of,omitempty"`
	// Upgrade is what the template's upgrade boot did (a snapshot of an
	// archive state other than the image's).
	Upgrade *UpgradeResult `json:"upgrade,omitempty"`
}

// Snapshot is a complete cache entry.
type Snapshot struct {
	Dir   string
	State string // the migration stream
	Disk  string // the frozen disk layer, backed by the image's root or by Upgraded
	// Upgraded is the upgrade boot's disk layer under Disk ("" when the
	// snapshot is of the image's own archive state).
	Upgraded string
	Manifest SnapshotManifest
}

const snapshotManifestName = "snapshot.json"

func openSnapshot(dir string) (Snapshot, error) {
	var m SnapshotManifest
	if err := state.LoadJSON(filepath.Join(dir, snapshotManifestName), &m); err != nil {
		return Snapshot{}, err
	}
	s := Snapshot{Dir: dir, State: filepath.Join(dir, "state"), Disk: filepath.Join(dir, "disk.qcow2"), Manifest: m}
	files := []string{s.State, s.Disk}
	if m.Shape.upgrades() {
		s.Upgraded = filepath.Join(dir, upgradedDiskName)
		files = append(files, s.Upgraded)
	}
	for _, f := range files {
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

// snapshot returns the booted snapshot for a shape, making it on first use;
// it fills in the shape's QEMU version and machine type from the installed
// qemu. A failure is remembered for the provider's lifetime, so the nodes
// of one run boot cold after one try instead of each trying again.
func (p *Provider) snapshot(ctx context.Context, img image.Image, sh Shape, aptPort int) (Snapshot, error) {
	b, err := probeQEMU(ctx)
	if err != nil {
		return Snapshot{}, err
	}
	sh.QEMU, sh.Machine = b.Version, b.Machine
	sh.Archive = p.snapshotArchive(ctx, img, sh, aptPort)
	sh.Simulated = p.cfg.Simulate.key()
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

// remakeSuffix names the one remake of a snapshot that failed to restore.
const remakeSuffix = "-r1"

// getSnapshot looks the shape's snapshot up or makes it. One that failed
// to restore (restoreFailed) is passed over for its remake, made once; if
// the remake failed too, the shape boots cold. The marks outlive the
// snapshots they name, so pruning a failed one does not restart this.
func (p *Provider) getSnapshot(ctx context.Context, img image.Image, sh Shape, aptPort int) (Snapshot, error) {
	store := p.snapshotStore()
	d := p.cfg.Dirs
	key, remakeOf := sh.Key(), ""
	if why := restoreFailed(d, key); why != "" {
		remake := key + remakeSuffix
		if why2 := restoreFailed(d, remake); why2 != "" {
			return Snapshot{}, fmt.Errorf("snapshot %s failed to restore (%s), and so did its remake %s (%s)", key, why, remake, why2)
		}
		if _, err := store.Lookup(remake, snapshotComplete); err != nil {
			p.logf("snapshot %s failed to restore (%s); making it again once, as %s", key, why, remake)
		}
		key, remakeOf = remake, key
	}
	if e, err := store.Lookup(key, snapshotComplete); err == nil {
		return openSnapshot(e.Dir)
	}
	if remakeOf == "" {
		p.logf("snapshot %s: none yet for this shape (%s); booting a template to make it", key, sh)
	}
	return p.makeAndPrune(ctx, img, sh, key, remakeOf, aptPort)
}

func (p *Provider) makeAndPrune(ctx context.Context, img image.Image, sh Shape, key, remakeOf string, aptPort int) (Snapshot, error) {
	e, err := p.snapshotStore().Get(ctx, key, snapshotComplete, func(ctx context.Context, tmp string) error {
		return p.makeSnapshot(ctx, img, sh, key, remakeOf, aptPort, tmp)
	})
	if err != nil {
		return Snapshot{}, err
	}
	// The image in use and every release's current image keep their
	// snapshots: a trixie run must not remove what bookworm runs restore
	// from, nor the reverse.
	if err := p.pruneSnapshots(SnapshotsKept, append(image.CurrentKeys(), img.Key)...); err != nil {
		p.logf("snapshot cache: %v", err)
	}
	return openSnapshot(e.Dir)
}

// restoreFailedPath marks the snapshot key as failed to restore: a file
// beside its entry (not in it), so the mark outlives the entry's removal
// and the shape is not remade again and again.
func restoreFailedPath(d state.Dirs, key string) string {
	return filepath.Join(snapshotsDir(d), key+restoreFailedSuffix)
}

const restoreFailedSuffix = ".restore-failed.json"

type restoreFailure struct {
	Image string    `json:"image"`
	VM    string    `json:"vm"`
	Error string    `json:"error"`
	At    time.Time `json:"at"`
}

// restoreFailed says why snapshot key failed to restore ("" if it never did).
func restoreFailed(d state.Dirs, key string) string {
	var f restoreFailure
	if err := state.LoadJSON(restoreFailedPath(d, key), &f); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return ""
		}
		return "unreadable mark: " + err.Error()
	}
	return fmt.Sprintf("%s at %s: %s", f.VM, f.At.Format(time.RFC3339), f.Error)
}

// markRestoreFailed records against snap that restoring it into rec
// failed, so the next lookup passes it over for a remake. The first mark
// stays.
func (p *Provider) markRestoreFailed(rec *record, snap Snapshot, cause error) {
	key := snap.Manifest.Key
	err := state.CreateJSON(restoreFailedPath(p.cfg.Dirs, key),
		restoreFailure{Image: snap.Manifest.Shape.Image, VM: rec.Name, Error: cause.Error(), At: time.Now().UTC()})
	switch {
	case errors.Is(err, os.ErrExist):
	case err != nil:
		p.logf("snapshot %s: recording that it failed to restore: %v", key, err)
	case strings.HasSuffix(key, remakeSuffix):
		p.logf("snapshot %s: marked as failed to restore; it was a remake, so this shape boots cold from now on", key)
	default:
		p.logf("snapshot %s: marked as failed to restore; the next launch makes it again, once", key)
	}
}

// pruneRestoreMarks removes the failure marks of images other than the
// current ones whose snapshots are gone.
func pruneRestoreMarks(d state.Dirs, current map[string]int) {
	marks, _ := filepath.Glob(filepath.Join(snapshotsDir(d), "*"+restoreFailedSuffix))
	for _, m := range marks {
		var f restoreFailure
		if state.LoadJSON(m, &f) != nil {
			continue
		}
		if _, ok := current[f.Image]; ok {
			continue
		}
		if _, err := os.Stat(strings.TrimSuffix(m, restoreFailedSuffix)); errors.Is(err, os.ErrNotExist) {
			os.Remove(m)
		}
	}
}

// makeSnapshot boots a template VM of the shape with an empty CD-ROM, waits
// for the seed gate, and saves the paused VM into tmp.
func (p *Provider) makeSnapshot(ctx context.Context, img image.Image, sh Shape, key, remakeOf string, aptPort int, tmp string) error {
	start := time.Now()
	disk := filepath.Join(tmp, "disk.qcow2")
	// The template's disk is layered on the image's root, or on the
	// upgrade boot's layer (named relative to the entry, which is renamed
	// into place once complete).
	backing, backingFormat := img.Root, "raw"
	var upgrade *UpgradeResult
	if sh.upgrades() {
		u, err := p.upgradeLayer(ctx, img, sh, key, aptPort, tmp)
		if err != nil {
			return fmt.Errorf("making snapshot %s: %w", key, err)
		}
		upgrade = &u
		backing, backingFormat = upgradedDiskName, "qcow2"
	}
	if err := createOverlay(ctx, disk, backing, backingFormat, p.cfg.Recipe.RootSizeGiB); err != nil {
		return fmt.Errorf("making snapshot %s: its disk: %w", key, err)
	}
	// QMP and pid files in a short private directory: unix socket paths
	// are limited to 108 bytes and the cache path can be long.
	run, err := os.MkdirTemp("", "bcmtest-template-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(run)
	serial := filepath.Join(tmp, "serial.log")
	in, err := templateArgv("template", img, sh, key, aptPort, disk, serial, run)
	if err != nil {
		return err
	}
	q, err := startTemplate(in, filepath.Join(tmp, "qemu.log"))
	if err != nil {
		return fmt.Errorf("making snapshot %s: %w", key, err)
	}
	defer q.stop()
	qmpSock := in.QMP
	p.logf("snapshot %s: template booting (%s)", key, sh)

	bctx, cancel := context.WithTimeout(ctx, p.cfg.Intervals.Boot)
	defer cancel()
	err = wait.Until(bctx, p.cfg.Intervals.Poll, p.cfg.Intervals.PollMax, func(context.Context) (bool, string, error) {
		if q.exited() {
			return false, "", fmt.Errorf("template qemu exited (%v): %s", q.err, tailFile(q.log, 5))
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
	if _, err := p.qmp(ctx, qmpSock, "migrate", map[string]any{"uri": "exec:cat > " + buildstep.ShellQuote(state)}); err != nil {
		return fmt.Errorf("making snapshot %s: saving the template: %w", key, err)
	}
	if err := p.waitMigration(ctx, qmpSock, "query-migrate", p.cfg.Intervals.Boot, p.cfg.Intervals.QMP.Poll); err != nil {
		return fmt.Errorf("making snapshot %s: saving the template: %w", key, err)
	}
	p.qmp(ctx, qmpSock, "quit", nil)
	select {
	case <-q.done:
	case <-time.After(p.cfg.Intervals.ProcessExit.Timeout):
	}
	frozen := []string{disk, state}
	if upgrade != nil {
		frozen = append(frozen, filepath.Join(tmp, upgradedDiskName))
	}
	for _, f := range frozen {
		if err := os.Chmod(f, 0o444); err != nil {
			return err
		}
	}
	var size int64
	for _, f := range frozen {
		if fi, err := os.Stat(f); err == nil {
			size += fi.Size()
		}
	}
	m := SnapshotManifest{Key: key, Shape: sh, RootGiB: p.cfg.Recipe.RootSizeGiB, Created: time.Now().UTC(), CreateTime: time.Since(start),
		SizeBytes: size, RemakeOf: remakeOf, Upgrade: upgrade}
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

// templateArgv is the command line of a VM of the shape that belongs to no
// cluster (role "template" or "upgrade"): NIC 1 on no segment, ports of
// its own, its QMP and pid files in run.
func templateArgv(role string, img image.Image, sh Shape, key string, aptPort int, disk, serial, run string) (argvInput, error) {
	sshPort, err := freePort()
	if err != nil {
		return argvInput{}, err
	}
	apiPort, err := freePort()
	if err != nil {
		return argvInput{}, err
	}
	return argvInput{
		Name: "bcmtest-" + role, Machine: sh.Machine, CPUs: sh.CPUs, MemoryMiB: sh.MemoryMiB, Accel: sh.Accel,
		Kernel: img.Kernel, Initrd: img.Initrd, KernelArgs: img.KernelArgs, Overlay: disk,
		SSHPort: sshPort, APIPort: apiPort, PrivateIP: templateIP, AptPort: aptPort,
		MACs:   macs(role, key),
		Serial: serial, QMP: filepath.Join(run, "qmp.sock"), PIDFile: filepath.Join(run, "qemu.pid"),
	}, nil
}

// templateQEMU is a running qemu of templateArgv.
type templateQEMU struct {
	cmd  *exec.Cmd
	logf *os.File
	log  string
	done chan struct{} // closed when it has exited; err is then set
	err  error
}

// startTemplate starts qemu with in's arguments, its output in logPath.
// Its own process group (a terminal's Ctrl-C reaches the harness, which
// stops it), and killed with the harness if that dies first.
func startTemplate(in argvInput, logPath string) (*templateQEMU, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(qemuBinary, buildArgv(in)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", qemuBinary, err)
	}
	q := &templateQEMU{cmd: cmd, logf: logf, log: logPath, done: make(chan struct{})}
	go func() { q.err = cmd.Wait(); close(q.done) }()
	return q, nil
}

func (q *templateQEMU) exited() bool {
	select {
	case <-q.done:
		return true
	default:
		return false
	}
}

// stop kills qemu unless it has exited, waits for it and closes its log.
func (q *templateQEMU) stop() {
	if !q.exited() {
		q.cmd.Process.Kill()
		<-q.done
	}
	q.logf.Close()
}

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
	return p.waitGate(ctx, rec)
}

// The seed gate's verdict on a restored node, on its console.
const (
	gateRenewed = "bcmtest-seed: seed found after restore"
	gateFailed  = "bcmtest-seed: FAILED:"
)

// GateError is a restored node's seed gate saying it could not renew the
// node's identity; the node has powered itself off.
type GateError struct {
	VM   string
	Line string // the gate's console line
}

func (e *GateError) Error() string {
	return fmt.Sprintf("the seed gate of %s could not renew its identity: %s", e.VM, e.Line)
}

// waitGate waits for the seed gate of a just restored node to say it
// renewed the node's identity. A node whose gate failed, or whose qemu
// ended first, is not a restored node: the caller boots it cold.
func (p *Provider) waitGate(ctx context.Context, rec *record) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Intervals.Boot)
	defer cancel()
	verdict := func() (bool, error) {
		console := readFile(rec.path("serial.log"))
		for _, l := range strings.Split(console, "\n") {
			if i := strings.Index(l, gateFailed); i >= 0 {
				return false, &GateError{VM: rec.Name, Line: strings.TrimSpace(l[i:])}
			}
		}
		return strings.Contains(console, gateRenewed), nil
	}
	err := wait.Until(ctx, p.cfg.Intervals.QMP.Poll, 10*p.cfg.Intervals.QMP.Poll, func(context.Context) (bool, string, error) {
		if ok, err := verdict(); ok || err != nil {
			return ok, "", err
		}
		if !rec.qemuAlive() {
			// Read again: the gate may have spoken just before the end.
			if ok, err := verdict(); ok || err != nil {
				return ok, "", err
			}
			return false, "", fmt.Errorf("qemu exited before the seed gate renewed the identity: %s", tailFile(rec.path("qemu.log"), 5))
		}
		return false, "waiting for the seed gate to renew the identity", nil
	})
	if err != nil {
		return fmt.Errorf("after the restore: %w", err)
	}
	return nil
}

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
	// InUse lists the VMs whose disks are layered on it (a VM of another
	// state dir sharing the cache is named with its directory).
	InUse []string `json:"in_use,omitempty"`
	// RestoreFailed says why it failed to restore, if it did; prune
	// removes such a snapshot once unused.
	RestoreFailed string `json:"restore_failed,omitempty"`
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
	local, err := snapshotUsers(vmsDir(d))
	if err != nil {
		return nil, err
	}
	var out []SnapshotInfo
	for _, e := range es {
		s, err := openSnapshot(e.Dir)
		if err != nil {
			continue
		}
		users, _ := liveUsers(d, e.Key, local[e.Key])
		out = append(out, SnapshotInfo{Key: e.Key, Dir: e.Dir, Manifest: s.Manifest, InUse: users, RestoreFailed: restoreFailed(d, e.Key)})
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

// Snapshots live in the cache, which several state dirs (users, CI jobs)
// may share, while VM records live in a state dir. So each VM layered on
// a snapshot also leaves a user marker in the cache: a file under
// snapshot-users/<key>/ naming its VM directory. A marker counts while the
// record there still names the snapshot; one whose VM is gone, or moved to
// another snapshot or a cold boot, is stale and removed by the next prune.

// snapshotUser is a user marker's content.
type snapshotUser struct {
	VMDir string `json:"vm_dir"`
	Name  string `json:"name"`
}

func snapshotUsersDir(d state.Dirs, key string) string {
	return filepath.Join(d.Cache, "snapshot-users", key)
}

func snapshotLockPath(d state.Dirs, key string) string {
	return filepath.Join(snapshotsDir(d), key+".lock")
}

func userMarkerName(vmDir string) string {
	sum := sha256.Sum256([]byte(vmDir))
	return hex.EncodeToString(sum[:12]) + ".json"
}

// claimSnapshot records that rec is about to be layered on snap, before
// its overlay exists: under the snapshot's lock (which prune takes too) it
// checks the snapshot is still there, makes rec's record name it and leaves
// a user marker in the cache. A prune from any state dir then keeps it.
func (p *Provider) claimSnapshot(ctx context.Context, rec *record, snap Snapshot) error {
	key := snap.Manifest.Key
	lock, err := artifact.LockContext(ctx, snapshotLockPath(p.cfg.Dirs, key))
	if err != nil {
		return fmt.Errorf("locking snapshot %s: %w", key, err)
	}
	defer lock.Unlock()
	if err := snapshotComplete(snap.Dir); err != nil {
		return fmt.Errorf("snapshot %s is gone (pruned?): %w", key, err)
	}
	rec.Snapshot = key
	if err := rec.save(); err != nil {
		return err
	}
	dir := snapshotUsersDir(p.cfg.Dirs, key)
	if err := state.MkdirPrivate(dir); err != nil {
		return fmt.Errorf("recording %s as a user of snapshot %s: %w", rec.Name, key, err)
	}
	if err := state.SaveJSON(filepath.Join(dir, userMarkerName(rec.Dir)), snapshotUser{VMDir: rec.Dir, Name: rec.Name}); err != nil {
		return fmt.Errorf("recording %s as a user of snapshot %s: %w", rec.Name, key, err)
	}
	return nil
}

// liveUsers returns the VMs layered on snapshot key: local (this state
// dir's records naming it) and every live user marker, and the markers
// found stale. A marker whose record cannot be read (another user's state
// dir) counts as live: only a VM shown gone frees a snapshot.
func liveUsers(d state.Dirs, key string, local []string) (users, stale []string) {
	users = append(users, local...)
	own := vmsDir(d)
	seen := map[string]bool{}
	for _, n := range local {
		seen[filepath.Join(own, n)] = true
	}
	dir := snapshotUsersDir(d, key)
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		if de.IsDir() || !strings.HasSuffix(de.Name(), ".json") {
			continue
		}
		marker := filepath.Join(dir, de.Name())
		var u snapshotUser
		if err := state.LoadJSON(marker, &u); err != nil || u.VMDir == "" {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			// Half-written or foreign: cannot tell, so it holds.
			users = append(users, "unreadable marker "+marker)
			continue
		}
		if seen[u.VMDir] {
			continue
		}
		r, err := loadRecord(u.VMDir)
		switch {
		case errors.Is(err, os.ErrNotExist):
			stale = append(stale, marker)
		case err != nil:
			users = append(users, u.Name+" ("+u.VMDir+")")
		case r.Snapshot != key:
			stale = append(stale, marker)
		case filepath.Dir(u.VMDir) == own:
			users = append(users, r.Name)
		default:
			users = append(users, r.Name+" ("+u.VMDir+")")
		}
		seen[u.VMDir] = true
	}
	return users, stale
}

// PruneSnapshots removes snapshots no VM is layered on: every one of an
// image other than currentImages or that failed to restore, and beyond the
// newest keep of each current image.
// It returns the keys removed.
func (p *Provider) PruneSnapshots(keep int, currentImages ...string) ([]string, error) {
	return PruneSnapshots(p.cfg.Dirs, keep, currentImages...)
}

// PruneSnapshots is Provider.PruneSnapshots for the cache under d, without
// a provider (`bcmtest image prune`). Each snapshot's users are counted
// under its lock, the one a restore holds while it claims the snapshot, so
// a VM is either seen as a user or finds the snapshot gone and boots cold.
func PruneSnapshots(d state.Dirs, keep int, currentImages ...string) ([]string, error) {
	snaps, err := Snapshots(d)
	if err != nil {
		return nil, err
	}
	local, err := snapshotUsers(vmsDir(d))
	if err != nil {
		return nil, err
	}
	kept := map[string]int{}
	for _, img := range currentImages {
		kept[img] = 0
	}
	var removed []string
	var errs []error
	for _, s := range snaps {
		if len(s.InUse) > 0 {
			continue
		}
		img := s.Manifest.Shape.Image
		if n, current := kept[img]; current && s.RestoreFailed == "" && n < keep {
			kept[img]++
			continue
		}
		gone, err := pruneOne(d, s.Key, local[s.Key])
		if err != nil {
			errs = append(errs, err)
		}
		if gone {
			removed = append(removed, s.Key)
		}
	}
	pruneRestoreMarks(d, kept)
	return removed, errors.Join(errs...)
}

// pruneOne removes snapshot key under its lock unless a VM is layered on
// it; a snapshot being made or claimed right now (locked) is left alone.
func pruneOne(d state.Dirs, key string, local []string) (bool, error) {
	lock, err := state.TryLock(snapshotLockPath(d, key))
	if errors.Is(err, state.ErrLocked) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("removing snapshot %s: %w", key, err)
	}
	defer lock.Unlock()
	users, stale := liveUsers(d, key, local)
	if len(users) > 0 {
		return false, nil
	}
	for _, m := range stale {
		os.Remove(m)
	}
	if err := os.RemoveAll(artifact.Store{Dir: snapshotsDir(d)}.Path(key)); err != nil {
		return false, fmt.Errorf("removing snapshot %s: %w", key, err)
	}
	os.Remove(snapshotUsersDir(d, key)) // empty now, unless a marker could not be removed
	return true, nil
}

func (p *Provider) pruneSnapshots(keep int, currentImages ...string) error {
	removed, err := p.PruneSnapshots(keep, currentImages...)
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
