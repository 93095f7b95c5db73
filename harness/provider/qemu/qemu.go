// Package qemu is the embedded VM provider: real QEMU VMs booted directly
// from a Debian image the harness builds itself, configured by cloud-init
// through a NoCloud seed, where multipass is absent.
package qemu

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/BitcoinCacheMachine/bcmtest/harness/aptcache"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
	"github.com/BitcoinCacheMachine/bcmtest/harness/sshx"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

const qemuBinary = "qemu-system-x86_64"

// Config configures the provider. Zero values get defaults.
type Config struct {
	Dirs      state.Dirs
	Recipe    image.Recipe
	Accel     string // auto (default), kvm or tcg
	Intervals wait.Intervals
	// NoAptCache skips the apt cache (VMs then cannot install packages).
	NoAptCache bool
	Log        io.Writer
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
}

var _ provider.Provider = (*Provider)(nil)
var _ provider.Faults = (*Provider)(nil)

// CheckHost names the Debian package for every tool the provider needs that
// is missing, before any VM starts.
func CheckHost() error {
	var missing []string
	for _, t := range []struct{ bin, pkg string }{
		{qemuBinary, "qemu-system-x86"}, {"qemu-img", "qemu-utils"}, {"genisoimage", "genisoimage"}, {"nc", "netcat-openbsd"},
	} {
		if _, err := exec.LookPath(t.bin); err != nil {
			missing = append(missing, fmt.Sprintf("%s (package %s)", t.bin, t.pkg))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the qemu provider needs %s; install with `make deps`", strings.Join(missing, ", "))
	}
	return nil
}

// New prepares the provider's state directory and SSH key.
func New(cfg Config) (*Provider, error) {
	if err := CheckHost(); err != nil {
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
	if cfg.Intervals.Boot == 0 {
		cfg.Intervals = wait.DefaultIntervals()
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	switch cfg.Accel {
	case "", AccelAuto, AccelKVM, AccelTCG:
	default:
		return nil, fmt.Errorf("accel %q: must be auto, kvm or tcg", cfg.Accel)
	}
	p := &Provider{cfg: cfg, root: filepath.Join(cfg.Dirs.State, "qemu"), clients: map[string]*ssh.Client{}}
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
	c, err := aptcache.Start(ctx, filepath.Join(p.cfg.Dirs.Cache, "apt"), p.cfg.Log)
	if err != nil {
		return 0, err
	}
	p.apt = c
	return c.Port, nil
}

// Close stops the apt cache and drops SSH connections.
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
	return nil
}

// ValidateLaunch checks an input against the rules and this host, so bad
// input fails before anything is created.
func ValidateLaunch(in provider.LaunchInput, rootGiB int) error {
	if err := provider.ValidateVMName(in.Name); err != nil {
		return err
	}
	if in.Group != "" {
		if err := provider.ValidateVMName(in.Group); err != nil {
			return fmt.Errorf("group: %w", err)
		}
	}
	if in.CPUs < 1 {
		return fmt.Errorf("cpus %d for %s: must be at least 1", in.CPUs, in.Name)
	}
	if in.MemoryMiB < 512 {
		return fmt.Errorf("memory %d MiB for %s: must be at least 512 MiB", in.MemoryMiB, in.Name)
	}
	if total := hostMemoryMiB(); total > 0 && in.MemoryMiB > total {
		return fmt.Errorf("memory %d MiB for %s: exceeds this host's %d MiB", in.MemoryMiB, in.Name, total)
	}
	if in.DiskGiB < rootGiB {
		return fmt.Errorf("disk %d GiB for %s: must be at least the image's %d GiB root filesystem", in.DiskGiB, in.Name, rootGiB)
	}
	if len(in.UserData) == 0 {
		return fmt.Errorf("user-data for %s: must not be empty", in.Name)
	}
	return nil
}

// hostMemoryMiB reads MemTotal; 0 when unknown.
func hostMemoryMiB() int {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.Atoi(f[1])
			return kb / 1024
		}
	}
	return 0
}

// Launch creates, boots and waits for one VM.
func (p *Provider) Launch(ctx context.Context, in provider.LaunchInput) (provider.Info, error) {
	if in.Group == "" {
		in.Group = in.Name
	}
	if err := ValidateLaunch(in, p.cfg.Recipe.RootSizeGiB); err != nil {
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
	if out, err := exec.CommandContext(ctx, "qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", img.Root,
		rec.path("overlay.qcow2"), strconv.Itoa(in.DiskGiB)+"G").CombinedOutput(); err != nil {
		return provider.Info{}, fmt.Errorf("launching %s: creating overlay: %w: %s", in.Name, err, out)
	}
	seed, err := BuildSeed(SeedInput{Name: in.Name, InstanceID: in.Name + "-" + strconv.FormatInt(rec.Created.UnixNano(), 36),
		UserData: in.UserData, AuthorizedKey: p.authKey, PrivateCIDR: rec.PrivateIP + "/24"})
	if err != nil {
		return provider.Info{}, fmt.Errorf("launching %s: rendering seed: %w", in.Name, err)
	}
	if err := seed.WriteISO(ctx, rec.path("seed.iso")); err != nil {
		return provider.Info{}, fmt.Errorf("launching %s: %w", in.Name, err)
	}
	start := time.Now()
	if err := p.startQEMU(ctx, rec, img, aptPort); err != nil {
		return provider.Info{}, fmt.Errorf("launching %s: %w", in.Name, err)
	}
	created = true // from here the caller owns cleanup and can read logs
	p.logf("%s: qemu started (%s, %d vCPU, %d MiB, ssh 127.0.0.1:%d, private %s)", in.Name, accel, in.CPUs, in.MemoryMiB, rec.SSHPort, rec.PrivateIP)
	if err := p.waitSSH(ctx, rec); err != nil {
		return rec.info(p), err
	}
	p.logf("%s: SSH up after %s; waiting for cloud-init", in.Name, time.Since(start).Round(time.Second))
	if err := p.waitCloudInit(ctx, rec); err != nil {
		return rec.info(p), err
	}
	p.logf("%s: cloud-init done after %s", in.Name, time.Since(start).Round(time.Second))
	return rec.info(p), nil
}

func freeDiskGiB(dir string) int {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return -1
	}
	return int(st.Bavail * uint64(st.Bsize) >> 30)
}

// allocate reserves the name, private address and ports, and writes the
// record before anything runs.
func (p *Provider) allocate(in provider.LaunchInput, img image.Image, accel string) (*record, error) {
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
	segPort := 0
	usedSeg := map[int]string{}
	for _, r := range recs {
		if r.Name == in.Name {
			return nil, fmt.Errorf("VM %s already exists (group %s); remove it first", in.Name, r.Group)
		}
		usedSeg[r.SegmentPort] = r.Group
		if r.Group == in.Group {
			segPort = r.SegmentPort
			usedIP[r.PrivateIP] = true
		}
	}
	if segPort == 0 {
		segPort = segmentPort(in.Group, usedSeg)
	}
	ip := ""
	for host := 10; host < 250; host++ {
		cand := fmt.Sprintf("10.77.0.%d", host)
		if !usedIP[cand] {
			ip = cand
			break
		}
	}
	if ip == "" {
		return nil, fmt.Errorf("no free private address in group %s", in.Group)
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
		CPUs: in.CPUs, MemoryMiB: in.MemoryMiB, DiskGiB: in.DiskGiB, PrivateIP: ip, SegmentPort: segPort,
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

// segmentPort picks a UDP port for a group's multicast segment, stable for a
// name and distinct from every other live group's.
func segmentPort(group string, used map[int]string) int {
	h := fnv.New32a()
	h.Write([]byte(group))
	port := 20000 + int(h.Sum32()%10000)
	for {
		if g, ok := used[port]; !ok || g == group {
			return port
		}
		port = 20000 + (port-20000+1)%10000
	}
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

// startQEMU runs qemu for rec, retrying with fresh ports if a forward port
// was taken in between.
func (p *Provider) startQEMU(ctx context.Context, rec *record, img image.Image, aptPort int) error {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 || !portFree(rec.SSHPort) || !portFree(rec.APIPort) {
			var err error
			if rec.SSHPort, err = freePort(); err != nil {
				return err
			}
			if rec.APIPort, err = freePort(); err != nil {
				return err
			}
		}
		argv := buildArgv(argvInput{
			Name: rec.Name, CPUs: rec.CPUs, MemoryMiB: rec.MemoryMiB, Accel: rec.Accel,
			Kernel: img.Kernel, Initrd: img.Initrd, KernelArgs: img.KernelArgs,
			Overlay: rec.path("overlay.qcow2"), Seed: rec.path("seed.iso"),
			SSHPort: rec.SSHPort, APIPort: rec.APIPort, PrivateIP: rec.PrivateIP, AptPort: aptPort,
			SegmentPort: rec.SegmentPort, MACs: rec.MACs,
			Serial: rec.path("serial.log"), QMP: rec.path("qmp.sock"), PIDFile: rec.path("qemu.pid"),
		})
		os.Remove(rec.path("qemu.pid"))
		os.WriteFile(rec.path("qemu.argv"), []byte(strings.Join(argv, "\n")+"\n"), 0o600)
		logf, err := os.OpenFile(rec.path("qemu.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		cmd := exec.Command(qemuBinary, argv...)
		// Own process group: a Ctrl-C on the terminal reaches the harness,
		// which tears VMs down in order, not qemu directly.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			logf.Close()
			return fmt.Errorf("starting %s: %w", qemuBinary, err)
		}
		rec.PID = cmd.Process.Pid
		if err := rec.save(); err != nil {
			cmd.Process.Kill()
			return err
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait(); logf.Close() }()
		// qemu writes its pidfile once its devices (and forwards) are set up.
		err = wait.Until(ctx, 50*time.Millisecond, 500*time.Millisecond, func(context.Context) (bool, string, error) {
			select {
			case e := <-exited:
				return false, "", fmt.Errorf("qemu exited at start (%v): %s", e, provider.Tail(readFile(rec.path("qemu.log")), 5))
			default:
			}
			_, err := os.Stat(rec.path("qemu.pid"))
			return err == nil, "waiting for qemu pidfile", nil
		})
		if err == nil {
			return nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "host forwarding") && !strings.Contains(err.Error(), "Address already in use") {
			return err
		}
	}
	return lastErr
}

func readFile(p string) string { b, _ := os.ReadFile(p); return string(b) }

func (p *Provider) load(name string) (*record, error) {
	if err := provider.ValidateVMName(name); err != nil {
		return nil, err
	}
	r, err := loadRecord(filepath.Join(p.vmsDir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("VM %s: %w", name, provider.ErrNotFound)
	}
	return r, err
}

// client returns a cached SSH connection to the VM, dialling when needed and
// pinning the host key seen first.
func (p *Provider) client(ctx context.Context, rec *record) (*ssh.Client, error) {
	p.mu.Lock()
	c := p.clients[rec.Name]
	p.mu.Unlock()
	if c != nil {
		if _, _, err := c.SendRequest("keepalive@bcmtest", true, nil); err == nil {
			return c, nil
		}
		c.Close()
	}
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	c, seen, err := sshx.Dial(dctx, fmt.Sprintf("127.0.0.1:%d", rec.SSHPort), HarnessUser, p.signer, rec.HostKey)
	if err != nil {
		return nil, err
	}
	if rec.HostKey == "" && seen != "" {
		rec.HostKey = seen
		rec.save()
	}
	p.mu.Lock()
	p.clients[rec.Name] = c
	p.mu.Unlock()
	return c, nil
}

func (p *Provider) dropClient(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.clients[name]; c != nil {
		c.Close()
		delete(p.clients, name)
	}
}

func (p *Provider) waitSSH(ctx context.Context, rec *record) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Intervals.Boot)
	defer cancel()
	err := wait.Until(ctx, time.Second, 3*time.Second, func(ctx context.Context) (bool, string, error) {
		if !rec.qemuAlive() {
			return false, "", fmt.Errorf("qemu of %s exited: %s", rec.Name, provider.Tail(readFile(rec.path("qemu.log")), 5))
		}
		if _, err := p.client(ctx, rec); err != nil {
			return false, "SSH: " + err.Error(), nil
		}
		return true, "", nil
	})
	if err != nil {
		return &provider.CloudInitError{VM: rec.Name, Status: "not reachable over SSH", Cause: err, ConsoleTail: p.consoleTail(rec, 30)}
	}
	return nil
}

func (p *Provider) consoleTail(rec *record, n int) string {
	return provider.Tail(readFile(rec.path("serial.log")), n)
}

// cloudInitStatus is the part of /run/cloud-init/status.json we read.
type cloudInitStatus struct {
	V1 map[string]json.RawMessage `json:"v1"`
}

type stageStatus struct {
	Errors []string `json:"errors"`
}

var moduleInError = regexp.MustCompile(`^\('([A-Za-z0-9_-]+)'`)

// waitCloudInit blocks on `cloud-init status --wait` and turns an error
// status into a CloudInitError with the failing modules and logs.
func (p *Provider) waitCloudInit(ctx context.Context, rec *record) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Intervals.CloudInit)
	defer cancel()
	return CheckCloudInit(ctx, p, rec.Name, func() string { return p.consoleTail(rec, 30) })
}

// CheckCloudInit waits for cloud-init on a VM of any provider and reports
// its failures. console supplies the serial console tail when there is one.
func CheckCloudInit(ctx context.Context, p provider.Provider, name string, console func() string) error {
	res, err := p.Exec(ctx, name, provider.ExecInput{Argv: []string{"cloud-init", "status", "--wait"}})
	if err != nil {
		e := &provider.CloudInitError{VM: name, Status: "running", Cause: fmt.Errorf("waiting for cloud-init: %w", err)}
		if console != nil {
			e.ConsoleTail = console()
		}
		tctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		e.OutputTail = outputTail(tctx, p, name)
		return e
	}
	statusOut := strings.TrimSpace(string(res.Stdout))
	js, err := p.Exec(ctx, name, provider.ExecInput{Argv: []string{"cat", "/run/cloud-init/status.json"}})
	if err != nil {
		return fmt.Errorf("reading cloud-init status on %s: %w", name, err)
	}
	var st cloudInitStatus
	if err := json.Unmarshal(js.Stdout, &st); err != nil {
		return fmt.Errorf("parsing /run/cloud-init/status.json on %s: %w", name, err)
	}
	var errs, mods []string
	for stage, raw := range st.V1 {
		var s stageStatus
		if json.Unmarshal(raw, &s) != nil {
			continue
		}
		for _, e := range s.Errors {
			errs = append(errs, stage+": "+e)
			if m := moduleInError.FindStringSubmatch(e); m != nil {
				mods = append(mods, m[1])
			}
		}
	}
	if len(errs) == 0 && res.ExitCode == 0 {
		return nil
	}
	status := "error"
	if f := strings.Fields(statusOut); len(f) >= 2 {
		status = f[len(f)-1]
	}
	e := &provider.CloudInitError{VM: name, Status: status, FailedModules: mods, Errors: errs}
	e.OutputTail = outputTail(ctx, p, name)
	if console != nil {
		e.ConsoleTail = console()
	}
	return e
}

// outputTail is the end of cloud-init's output log, or "" if unreadable.
func outputTail(ctx context.Context, p provider.Provider, name string) string {
	out, err := p.Exec(ctx, name, provider.ExecInput{Argv: []string{"tail", "-n", "40", "/var/log/cloud-init-output.log"}})
	if err != nil {
		return ""
	}
	return string(out.Stdout)
}

// Exec runs argv as root through sudo over SSH.
func (p *Provider) Exec(ctx context.Context, name string, in provider.ExecInput) (provider.ExecResult, error) {
	rec, err := p.load(name)
	if err != nil {
		return provider.ExecResult{}, err
	}
	if len(in.Argv) == 0 {
		return provider.ExecResult{}, fmt.Errorf("exec on %s: empty command", name)
	}
	c, err := p.client(ctx, rec)
	if err != nil {
		return provider.ExecResult{}, fmt.Errorf("exec on %s: connecting over SSH: %w", name, err)
	}
	o, e, code, err := sshx.Run(ctx, c, "sudo -n -- "+sshx.Quote(in.Argv), in.Stdin)
	if err != nil {
		p.dropClient(name)
		return provider.ExecResult{Stdout: o, Stderr: e, ExitCode: code}, fmt.Errorf("exec on %s: %w", name, err)
	}
	return provider.ExecResult{Stdout: o, Stderr: e, ExitCode: code}, nil
}

// CopyIn writes content to path inside the VM with mode.
func (p *Provider) CopyIn(ctx context.Context, name, path string, content []byte, mode uint32) error {
	script := `set -e; d=$(dirname "$1"); mkdir -p "$d"; cat > "$1.bcmtest-tmp"; chmod "$2" "$1.bcmtest-tmp"; mv "$1.bcmtest-tmp" "$1"`
	_, err := provider.RunInput(ctx, p, name, bytes.NewReader(content), "sh", "-c", script, "sh", path, strconv.FormatUint(uint64(mode), 8))
	if err != nil {
		return fmt.Errorf("copying into %s:%s: %w", name, path, err)
	}
	return nil
}

// CopyOut reads a file from the VM.
func (p *Provider) CopyOut(ctx context.Context, name, path string) ([]byte, error) {
	res, err := p.Exec(ctx, name, provider.ExecInput{Argv: []string{"cat", "--", path}})
	if err != nil {
		return nil, fmt.Errorf("copying %s:%s: %w", name, path, err)
	}
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("copying %s:%s: %s", name, path, strings.TrimSpace(string(res.Stderr)))
	}
	return res.Stdout, nil
}

func (p *Provider) Info(ctx context.Context, name string) (provider.Info, error) {
	rec, err := p.load(name)
	if err != nil {
		return provider.Info{}, err
	}
	return rec.info(p), nil
}

func (p *Provider) List(ctx context.Context, group string) ([]provider.Info, error) {
	recs, _, err := loadRecords(p.vmsDir)
	if err != nil {
		return nil, err
	}
	var out []provider.Info
	for _, r := range recs {
		if group == "" || r.Group == group {
			out = append(out, r.info(p))
		}
	}
	return out, nil
}

// stopProcess ends rec's qemu: graceful when asked, then quit, then SIGKILL.
func (p *Provider) stopProcess(ctx context.Context, rec *record, graceful time.Duration) error {
	if !rec.qemuAlive() {
		return nil
	}
	gone := func(d time.Duration) bool {
		wctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return wait.Until(wctx, 100*time.Millisecond, time.Second, func(context.Context) (bool, string, error) {
			return !rec.qemuAlive(), "qemu still running", nil
		}) == nil
	}
	if graceful > 0 {
		if _, err := qmp(ctx, rec.path("qmp.sock"), "system_powerdown", nil); err == nil && gone(graceful) {
			return nil
		}
	}
	qmp(ctx, rec.path("qmp.sock"), "quit", nil)
	if gone(5 * time.Second) {
		return nil
	}
	syscall.Kill(rec.PID, syscall.SIGKILL)
	if gone(5 * time.Second) {
		return nil
	}
	return fmt.Errorf("qemu of %s (pid %d) did not exit", rec.Name, rec.PID)
}

func (p *Provider) Stop(ctx context.Context, name string) error {
	rec, err := p.load(name)
	if err != nil {
		return err
	}
	p.dropClient(name)
	if err := p.stopProcess(ctx, rec, 60*time.Second); err != nil {
		return fmt.Errorf("stopping %s: %w", name, err)
	}
	rec.PID = 0
	return rec.save()
}

func (p *Provider) Start(ctx context.Context, name string) error {
	rec, err := p.load(name)
	if err != nil {
		return err
	}
	if rec.qemuAlive() {
		return nil
	}
	img, err := p.Image(ctx)
	if err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	if img.Key != rec.Image {
		return fmt.Errorf("starting %s: its image %s is no longer cached (current %s)", name, rec.Image, img.Key)
	}
	aptPort, err := p.ensureAptCache(ctx)
	if err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	p.dropClient(name)
	if err := p.startQEMU(ctx, rec, img, aptPort); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	return p.waitSSH(ctx, rec)
}

// Delete kills the VM's qemu and removes its directory (overlay, seed,
// logs, record). A missing VM is not an error.
func (p *Provider) Delete(ctx context.Context, name string) error {
	rec, err := p.load(name)
	if errors.Is(err, provider.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	p.dropClient(name)
	if err := p.stopProcess(ctx, rec, 0); err != nil {
		return fmt.Errorf("deleting %s: %w", name, err)
	}
	if err := os.RemoveAll(rec.Dir); err != nil {
		return fmt.Errorf("deleting %s: removing %s: %w", name, rec.Dir, err)
	}
	return nil
}

func (p *Provider) Console(ctx context.Context, name string) ([]byte, error) {
	rec, err := p.load(name)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(rec.path("serial.log"))
	if err != nil {
		return nil, fmt.Errorf("reading serial console of %s: %w", name, err)
	}
	return b, nil
}

// Pause freezes the VM's vCPUs (QMP stop).
func (p *Provider) Pause(ctx context.Context, name string) error {
	return p.qmpOn(ctx, name, "stop", nil)
}

// Resume continues a paused VM (QMP cont).
func (p *Provider) Resume(ctx context.Context, name string) error {
	return p.qmpOn(ctx, name, "cont", nil)
}

// SetPrivateLink takes the private-segment NIC's link up or down.
func (p *Provider) SetPrivateLink(ctx context.Context, name string, up bool) error {
	return p.qmpOn(ctx, name, "set_link", map[string]any{"name": "n1", "up": up})
}

// PowerOff stops the VM at once, as pulling the plug would.
func (p *Provider) PowerOff(ctx context.Context, name string) error {
	rec, err := p.load(name)
	if err != nil {
		return err
	}
	p.dropClient(name)
	if err := p.stopProcess(ctx, rec, 0); err != nil {
		return err
	}
	rec.PID = 0
	return rec.save()
}

func (p *Provider) qmpOn(ctx context.Context, name, cmd string, args map[string]any) error {
	rec, err := p.load(name)
	if err != nil {
		return err
	}
	if _, err := qmp(ctx, rec.path("qmp.sock"), cmd, args); err != nil {
		return fmt.Errorf("%s on %s: %w", cmd, name, err)
	}
	return nil
}

// ShellArgv is the ssh command line for an interactive shell on the VM,
// pinned to the host key the harness recorded.
func (p *Provider) ShellArgv(name string) ([]string, error) {
	rec, err := p.load(name)
	if err != nil {
		return nil, err
	}
	if rec.HostKey == "" {
		return nil, fmt.Errorf("ssh to %s: no host key recorded yet (has it booted?)", name)
	}
	kh := rec.path("known_hosts")
	if err := os.WriteFile(kh, []byte(fmt.Sprintf("[127.0.0.1]:%d %s\n", rec.SSHPort, rec.HostKey)), 0o600); err != nil {
		return nil, err
	}
	return []string{"ssh", "-i", filepath.Join(p.root, "id_ed25519"), "-p", strconv.Itoa(rec.SSHPort),
		"-o", "UserKnownHostsFile=" + kh, "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes",
		HarnessUser + "@127.0.0.1"}, nil
}
