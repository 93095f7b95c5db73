package qemu

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

// TestPathsWithCommasAndSpacesReachQEMUIntact starts the real qemu (paused
// with -S: no guest code runs) with every host path of buildArgv under a
// directory whose name has a comma and a space, and asks it over QMP which
// files it opened. QEMU splits its options at commas, so an unquoted comma
// in a path breaks -drive and -qmp.
func TestPathsWithCommasAndSpacesReachQEMUIntact(t *testing.T) {
	if _, err := exec.LookPath(qemuBinary); err != nil {
		t.Skipf("%s not installed (make deps)", qemuBinary)
	}
	dir := filepath.Join(t.TempDir(), "ci cache,x=1")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	overlay, seed := filepath.Join(dir, "overlay.qcow2"), filepath.Join(dir, "seed,iso")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", overlay, "1G").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v: %s", err, out)
	}
	if err := os.WriteFile(seed, make([]byte, 2048), 0o600); err != nil {
		t.Fatal(err)
	}
	ssh, _ := freePort()
	api, _ := freePort()
	// The QMP socket's path must fit a unix socket name (108 bytes).
	run, err := os.MkdirTemp("", "q,m p")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(run)
	in := argvInput{Name: "paths", CPUs: 1, MemoryMiB: 128, Accel: "tcg", Kernel: "/k", Initrd: "/i",
		Overlay: overlay, Seed: seed, SSHPort: ssh, APIPort: api, PrivateIP: "10.77.0.10", Segment: segment{},
		MACs: macs("paths", "test"), Serial: filepath.Join(dir, "serial.log"), QMP: filepath.Join(run, "qmp.sock"), PIDFile: filepath.Join(dir, "qemu.pid")}
	var argv []string
	full := buildArgv(in)
	for i := 0; i < len(full); i++ {
		switch full[i] {
		case "-kernel", "-initrd", "-append": // plain arguments; there is no kernel here
			i++
			continue
		}
		argv = append(argv, full[i])
	}
	argv = append(argv, "-S")
	cmd := exec.Command(qemuBinary, argv...)
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()
	p := &Provider{cfg: Config{Intervals: wait.Intervals{}.WithDefaults()}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var raw json.RawMessage
	err = wait.Until(ctx, 20*time.Millisecond, 100*time.Millisecond, func(ctx context.Context) (bool, string, error) {
		select {
		case e := <-exited:
			exited <- e
			t.Fatalf("qemu exited (%v): %s", e, stderr.String())
		default:
		}
		raw, err = p.qmp(ctx, in.QMP, "query-block", nil)
		return err == nil, "qmp", nil
	})
	if err != nil {
		t.Fatalf("QMP at %s never answered: %v; qemu said: %s", in.QMP, err, stderr.String())
	}
	var blocks []struct {
		Device   string `json:"device"`
		QDev     string `json:"qdev"`
		Inserted *struct {
			File string `json:"file"`
		} `json:"inserted"`
	}
	if err := json.Unmarshal(raw, &blocks); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, b := range blocks {
		if b.Inserted != nil {
			files[b.Device] = b.Inserted.File
		}
	}
	if files[diskID] != overlay || files[seedID] != seed {
		t.Errorf("qemu opened %v, want %s=%s and %s=%s", files, diskID, overlay, seedID, seed)
	}
	for _, f := range []string{in.Serial, in.PIDFile} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("qemu did not write %s: %v", f, err)
		}
	}
	rec := &record{Dir: dir, PID: cmd.Process.Pid}
	if !rec.qemuAlive() {
		t.Errorf("a running qemu over %s is not recognised as the VM's", overlay)
	}
}

// The switch's socket directory lives under the state dir, which may hold a
// comma; QEMU's option parser splits on a single one.
func TestSwitchSocketPathWithACommaIsDoubled(t *testing.T) {
	got := segment{Kind: SegmentSwitch, Sock: "/state,dir/qemu/segments/C1"}.netdev("n1")
	if want := "vde,id=n1,sock=/state,,dir/qemu/segments/C1"; got != want {
		t.Errorf("netdev: got %q, want %q", got, want)
	}
}
