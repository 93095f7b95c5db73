package qemu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

const qemuBinary = "qemu-system-x86_64"

// incomingFD is the descriptor a restoring qemu reads the snapshot's
// migration stream from: the state file itself, opened here and handed
// over at start, instead of a `cat` process and a pipe between them.
const incomingFD = 3

// startQEMU runs qemu for rec, retrying with fresh ports if a forward port
// was taken in between. A non-empty migration names the snapshot stream a
// restore loads: qemu then waits for migrate-incoming on incomingFD.
func (p *Provider) startQEMU(ctx context.Context, rec *record, img image.Image, aptPort int, migration string) error {
	restoring := migration != ""
	if rec.Machine == "" {
		b, err := probeQEMU(ctx)
		if err != nil {
			return fmt.Errorf("starting qemu of %s: %w", rec.Name, err)
		}
		rec.Machine = b.Machine
	}
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
		in := argvInput{
			Name: rec.Name, Machine: rec.Machine, CPUs: rec.CPUs, MemoryMiB: rec.MemoryMiB, Accel: rec.Accel,
			Kernel: img.Kernel, Initrd: img.Initrd, KernelArgs: img.KernelArgs,
			Overlay: rec.path("overlay.qcow2"), Seed: rec.path("seed.iso"), Incoming: restoring,
			SSHPort: rec.SSHPort, APIPort: rec.APIPort, PrivateIP: rec.PrivateIP, AptPort: aptPort,
			Segment: p.segmentOf(rec), MACs: rec.MACs,
			Serial: rec.path("serial.log"), QMP: rec.path("qmp.sock"), PIDFile: rec.path("qemu.pid"),
		}
		if restoring {
			in.Seed = "" // inserted over QMP once the snapshot is loaded
		}
		argv := buildArgv(in)
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
		var stream *os.File
		if restoring {
			if stream, err = os.Open(migration); err != nil {
				logf.Close()
				return fmt.Errorf("opening the snapshot's migration stream: %w", err)
			}
			cmd.ExtraFiles = []*os.File{stream} // incomingFD in qemu
		}
		err = cmd.Start()
		if stream != nil {
			stream.Close() // qemu has its own copy, closed when the load ends
		}
		if err != nil {
			logf.Close()
			return fmt.Errorf("starting %s: %w", qemuBinary, err)
		}
		rec.PID = cmd.Process.Pid
		rec.Started = time.Now().UTC()
		// The log closes before the exit is reported: whoever has read
		// exited knows qemu is reaped and its log closed.
		exited := make(chan error, 1)
		go func() { e := cmd.Wait(); logf.Close(); exited <- e }()
		reaped := false
		// abandon kills a qemu that will not be used and waits until it is
		// reaped, so no zombie and no open log are left behind.
		abandon := func() {
			if !reaped {
				cmd.Process.Kill()
				<-exited
				reaped = true
			}
		}
		if err := rec.save(); err != nil {
			abandon()
			return err
		}
		// qemu writes its pidfile once its devices (and forwards) are set
		// up; bounded on its own, so a qemu that hangs as it starts is seen.
		wctx, cancel := context.WithTimeout(ctx, p.cfg.Intervals.ProcessStart.Timeout)
		err = wait.Until(wctx, p.cfg.Intervals.ProcessStart.Poll, 10*p.cfg.Intervals.ProcessStart.Poll, func(context.Context) (bool, string, error) {
			select {
			case e := <-exited:
				reaped = true
				return false, "", classifyStart(e, provider.Tail(readFile(rec.path("qemu.log")), 5))
			default:
			}
			_, err := os.Stat(rec.path("qemu.pid"))
			return err == nil, "waiting for qemu pidfile", nil
		})
		cancel()
		if err == nil {
			return nil
		}
		abandon()
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("qemu of %s wrote no pidfile within %s (process-start): %w; log: %s", rec.Name,
				p.cfg.Intervals.ProcessStart.Timeout, err, provider.Tail(readFile(rec.path("qemu.log")), 5))
		}
		lastErr = err
		var se *StartError
		if !errors.As(err, &se) || !se.PortTaken {
			return err
		}
	}
	return lastErr
}

func readFile(p string) string { b, _ := os.ReadFile(p); return string(b) }

// stopProcess ends rec's qemu: graceful when asked, then quit, then SIGKILL.
func (p *Provider) stopProcess(ctx context.Context, rec *record, graceful time.Duration) error {
	if !rec.qemuAlive() {
		return nil
	}
	gone := func(d time.Duration) bool {
		wctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return wait.Until(wctx, p.cfg.Intervals.ProcessExit.Poll, 10*p.cfg.Intervals.ProcessExit.Poll, func(context.Context) (bool, string, error) {
			return !rec.qemuAlive(), "qemu still running", nil
		}) == nil
	}
	if graceful > 0 {
		if _, err := p.qmp(ctx, rec.path("qmp.sock"), "system_powerdown", nil); err == nil && gone(graceful) {
			return nil
		}
	}
	p.qmp(ctx, rec.path("qmp.sock"), "quit", nil)
	if gone(p.cfg.Intervals.ProcessExit.Timeout) {
		return nil
	}
	syscall.Kill(rec.PID, syscall.SIGKILL)
	if gone(p.cfg.Intervals.ProcessExit.Timeout) {
		return nil
	}
	return fmt.Errorf("qemu of %s (pid %d) did not exit", rec.Name, rec.PID)
}
