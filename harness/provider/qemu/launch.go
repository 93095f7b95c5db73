package qemu

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/common"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

// Launch creates, boots and waits for one VM.
func (p *Provider) Launch(ctx context.Context, in provider.LaunchInput) (provider.Info, error) {
	if in.Group == "" {
		in.Group = in.Name
	}
	if err := common.ValidateLaunch(in, p.cfg.Recipe.RootSizeGiB); err != nil {
		return provider.Info{}, err
	}
	if free := freeDiskGiB(p.vmsDir); free >= 0 && free < 2 {
		return provider.Info{}, fmt.Errorf("launching %s: only %d GiB free under %s for its overlay", in.Name, free, p.vmsDir)
	}
	img, err := p.Image(ctx)
	if err != nil {
		return provider.Info{}, fmt.Errorf("launching %s: getting the VM image: %w", in.Name, err)
	}
	accel, err := p.chooseAccel(ctx, img.Kernel, img.Initrd)
	if err != nil {
		return provider.Info{}, err
	}
	aptPort, err := p.ensureAptCache(ctx)
	if err != nil {
		return provider.Info{}, fmt.Errorf("launching %s: %w", in.Name, err)
	}
	rec, err := p.allocate(in, img, accel)
	if err != nil {
		return provider.Info{}, fmt.Errorf("launching %s: %w", in.Name, err)
	}
	created := false
	defer func() {
		if !created {
			p.Delete(context.Background(), in.Name)
		}
	}()
	if err := p.ensureSegment(ctx, rec); err != nil {
		return provider.Info{}, fmt.Errorf("launching %s: %w", in.Name, err)
	}
	seed, err := BuildSeed(SeedInput{Name: in.Name, InstanceID: in.Name + "-" + strconv.FormatInt(rec.Created.UnixNano(), 36),
		UserData: in.UserData, AuthorizedKey: p.authKey, PrivateCIDR: rec.PrivateIP + "/24", MACs: rec.MACs, Clock: time.Now(),
		DefaultRouteAsRoute: p.cfg.Recipe.Release().DefaultRouteAsRoute()})
	if err != nil {
		return provider.Info{}, fmt.Errorf("launching %s: rendering seed: %w", in.Name, err)
	}
	if err := seed.WriteISO(ctx, rec.path("seed.iso")); err != nil {
		return provider.Info{}, fmt.Errorf("launching %s: %w", in.Name, err)
	}
	start := time.Now()
	how, err := p.boot(ctx, rec, img, accel, aptPort)
	if err != nil {
		return provider.Info{}, fmt.Errorf("launching %s: %w", in.Name, err)
	}
	created = true // from here the caller owns cleanup and can read logs
	p.logf("%s: qemu started, %s (%s, %d vCPU, %d MiB, ssh 127.0.0.1:%d, private %s)", in.Name, how, accel, in.CPUs, in.MemoryMiB, rec.SSHPort, rec.PrivateIP)
	var phases *phaseReporter
	if in.OnPhase != nil {
		phases = &phaseReporter{on: in.OnPhase}
		phases.report(provider.BootQEMUStarted)
		// The console shows the phases between qemu starting and SSH
		// answering; the watch ends before Launch returns.
		stop := watchConsole(ctx, rec.path("serial.log"), consolePoll, phases)
		defer stop()
	}
	if err := p.waitSSH(ctx, rec); err != nil {
		return rec.info(p), err
	}
	phases.report(provider.BootSSH)
	p.logf("%s: SSH up after %s; waiting for cloud-init", in.Name, time.Since(start).Round(time.Second))
	if err := p.waitCloudInit(ctx, rec); err != nil {
		return rec.info(p), err
	}
	phases.report(provider.BootDone)
	p.logf("%s: cloud-init done after %s", in.Name, time.Since(start).Round(time.Second))
	return rec.info(p), nil
}

// allocate reserves the name, private address and ports, and writes the
// record before anything runs. A group's nodes share its segment kind (a
// cluster made before a change of setting keeps its own).
func (p *Provider) allocate(in provider.LaunchInput, img image.Image, accel string) (*record, error) {
	if err := provider.ValidateVMName(in.Group); err != nil {
		return nil, fmt.Errorf("group %q: %w", in.Group, err)
	}
	lock, err := state.LockFile(filepath.Join(p.root, "allocate.lock"))
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	recs, _, err := loadRecords(p.vmsDir)
	if err != nil {
		return nil, err
	}
	usedIP := map[string]bool{}
	kind, segPort, grouped := p.cfg.Segment, 0, false
	usedSeg := map[int]string{}
	for _, r := range recs {
		if r.Name == in.Name {
			return nil, fmt.Errorf("VM %s already exists (group %s); remove it first", in.Name, r.Group)
		}
		if r.SegmentPort != 0 {
			usedSeg[r.SegmentPort] = r.Group
		}
		if r.Group == in.Group {
			if !grouped {
				kind, segPort, grouped = r.Segment, r.SegmentPort, true
				if kind == "" {
					kind = SegmentMulticast
				}
			}
			usedIP[r.PrivateIP] = true
		}
	}
	if kind == SegmentMulticast && segPort == 0 {
		segPort = multicastPort(p.cfg.Dirs.State, in.Group, usedSeg)
	}
	// A group's first node starts its list of given addresses again (what
	// a killed run left of a cluster of the same name is not this one's).
	seg := p.switchDir(in.Group)
	given := map[string]bool{}
	if grouped {
		if given, err = readGiven(seg); err != nil {
			return nil, fmt.Errorf("group %s: reading the private addresses given so far: %w", in.Group, err)
		}
	}
	ip := ""
	for host := 10; host < 250; host++ {
		cand := fmt.Sprintf("10.77.0.%d", host)
		if !usedIP[cand] && !given[cand] {
			ip = cand
			break
		}
	}
	if ip == "" {
		return nil, fmt.Errorf("no private address left in group %s: each of 10.77.0.10-249 was given to a node of it once", in.Group)
	}
	if err := recordGiven(seg, ip, !grouped); err != nil {
		return nil, fmt.Errorf("group %s: recording the private address %s: %w", in.Group, ip, err)
	}
	sshPort, err := freePort()
	if err != nil {
		return nil, err
	}
	apiPort, err := freePort()
	if err != nil {
		return nil, err
	}
	r := &record{
		Name: in.Name, Group: in.Group, Dir: filepath.Join(p.vmsDir, in.Name), Image: img.Key,
		CPUs: in.CPUs, MemoryMiB: in.MemoryMiB, DiskGiB: in.DiskGiB, PrivateIP: ip, Segment: kind, SegmentPort: segPort,
		SSHPort: sshPort, APIPort: apiPort, MACs: macs(in.Group, in.Name), Accel: accel,
		Owner: owner(), Created: time.Now().UTC(),
	}
	// Write the record in a temporary directory and rename it into place, so
	// a VM directory without a record never exists.
	tmp := filepath.Join(p.vmsDir, "."+in.Name+".tmp")
	os.RemoveAll(tmp)
	if err := state.MkdirPrivate(tmp); err != nil {
		return nil, err
	}
	r.Dir = tmp
	if err := r.save(); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, filepath.Join(p.vmsDir, in.Name)); err != nil {
		return nil, err
	}
	r.Dir = filepath.Join(p.vmsDir, in.Name)
	return r, nil
}

// owner is the pid recorded as a VM's owner: this process, or the one a
// short-lived wrapper (the multipass stand-in) names in BCMTEST_OWNER_PID, so
// a sweep does not take the wrapper's exit for its owner's death.
func owner() int {
	if v, err := strconv.Atoi(os.Getenv("BCMTEST_OWNER_PID")); err == nil && v > 0 {
		return v
	}
	return os.Getpid()
}

// macs derives two locally administered MACs from the VM's identity.
func macs(group, name string) [2]string {
	sum := sha256.Sum256([]byte(group + "/" + name))
	return [2]string{
		fmt.Sprintf("52:54:00:%02x:%02x:%02x", sum[0], sum[1], sum[2]&0xfe),
		fmt.Sprintf("52:54:01:%02x:%02x:%02x", sum[0], sum[1], sum[2]&0xfe),
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// boot starts rec's qemu: restored from the booted snapshot of its shape
// when snapshots are on, else (or when the restore fails, with a notice) a
// cold boot of the image. It says which it did.
func (p *Provider) boot(ctx context.Context, rec *record, img image.Image, accel string, aptPort int) (string, error) {
	if !p.cfg.NoSnapshot {
		sh := Shape{Image: img.Key, CPUs: rec.CPUs, MemoryMiB: rec.MemoryMiB, Accel: accel, Devices: deviceSet}
		snap, err := p.snapshot(ctx, img, sh, aptPort)
		if err != nil {
			if ctx.Err() != nil {
				return "", err
			}
			p.logf("%s: booting cold: no snapshot for shape %s: %v", rec.Name, sh, err)
		} else {
			err = p.restoreFrom(ctx, rec, img, snap, aptPort)
			if err == nil {
				return "restored from snapshot " + snap.Manifest.Key, nil
			}
			if ctx.Err() != nil {
				return "", err
			}
			p.logf("%s: booting cold: restoring snapshot %s failed: %v", rec.Name, snap.Manifest.Key, err)
			if err := p.stopProcess(ctx, rec, 0); err != nil {
				return "", err
			}
		}
	}
	rec.Snapshot = ""
	os.Remove(rec.path("overlay.qcow2"))
	if err := createOverlay(ctx, rec.path("overlay.qcow2"), img.Root, "raw", rec.DiskGiB); err != nil {
		return "", err
	}
	if err := rec.save(); err != nil {
		return "", err
	}
	if err := p.startQEMU(ctx, rec, img, aptPort, ""); err != nil {
		return "", err
	}
	return "cold boot", nil
}

// restoreFrom starts rec's qemu from a snapshot: an overlay on the
// snapshot's disk layer, the migration stream, then the node's seed.
func (p *Provider) restoreFrom(ctx context.Context, rec *record, img image.Image, snap Snapshot, aptPort int) error {
	// Recorded first (record and cache marker), so no prune removes the
	// snapshot once the overlay is layered on it.
	if err := p.claimSnapshot(ctx, rec, snap); err != nil {
		return err
	}
	os.Remove(rec.path("overlay.qcow2"))
	// The overlay starts at the template's size: the restored guest knows
	// that size, and learns the node's from block_resize.
	if err := createOverlay(ctx, rec.path("overlay.qcow2"), snap.Disk, "qcow2", snap.Manifest.RootGiB); err != nil {
		return err
	}
	rec.Machine = snap.Manifest.Shape.Machine
	if err := p.startQEMU(ctx, rec, img, aptPort, snap.State); err != nil {
		return err
	}
	if err := p.restore(ctx, rec, snap); err != nil {
		if ctx.Err() == nil {
			p.markRestoreFailed(rec, snap, err)
			// Kept for diagnostics: a cold boot starts a new console.
			os.Rename(rec.path("serial.log"), rec.path("serial.restore-failed.log"))
		}
		return err
	}
	return nil
}

// createOverlay makes a copy-on-write disk over backing.
func createOverlay(ctx context.Context, path, backing, backingFormat string, sizeGiB int) error {
	if out, err := exec.CommandContext(ctx, "qemu-img", "create", "-q", "-f", "qcow2", "-F", backingFormat, "-b", backing,
		path, strconv.Itoa(sizeGiB)+"G").CombinedOutput(); err != nil {
		return fmt.Errorf("creating overlay: %w: %s", err, out)
	}
	return nil
}

// Prepare builds or looks up what launching in needs before any VM starts:
// the image, the accelerator probe, the apt cache and, unless snapshots are
// off, the booted snapshot of in's shape, after checking the host has what
// the segment needs. Launch does the same lookups again, cheaply.
func (p *Provider) Prepare(ctx context.Context, in provider.LaunchInput) error {
	if err := checkSegmentHost(p.cfg.Segment); err != nil {
		return err
	}
	img, err := p.Image(ctx)
	if err != nil {
		return fmt.Errorf("getting the VM image: %w", err)
	}
	accel, err := p.chooseAccel(ctx, img.Kernel, img.Initrd)
	if err != nil {
		return err
	}
	aptPort, err := p.ensureAptCache(ctx)
	if err != nil {
		return err
	}
	if p.cfg.NoSnapshot {
		return nil
	}
	sh := Shape{Image: img.Key, CPUs: in.CPUs, MemoryMiB: in.MemoryMiB, Accel: accel, Devices: deviceSet}
	if _, err := p.snapshot(ctx, img, sh, aptPort); err != nil {
		if ctx.Err() != nil {
			return err
		}
		p.logf("booting cold: no snapshot for shape %s: %v", sh, err)
	}
	return nil
}
