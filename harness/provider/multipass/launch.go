package multipass

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/common"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

// launchArgs is the `multipass launch` command line. --memory, not the
// deprecated --mem; sizes carry multipass's binary units.
func launchArgs(in provider.LaunchInput, userData string, timeoutSec int, image string) []string {
	return []string{"launch",
		"--name", in.Name,
		"--cpus", strconv.Itoa(in.CPUs),
		"--memory", strconv.Itoa(in.MemoryMiB) + "M",
		"--disk", strconv.Itoa(in.DiskGiB) + "G",
		"--cloud-init", userData,
		"--timeout", strconv.Itoa(timeoutSec),
		image,
	}
}

// Launch records the VM, runs `multipass launch`, and waits for cloud-init.
// On a cloud-init failure or a launch timeout it returns a
// *provider.CloudInitError and leaves the VM for the caller to inspect and
// delete; on any other failure it deletes what it made.
func (p *Provider) Launch(ctx context.Context, in provider.LaunchInput) (provider.Info, error) {
	if in.Group == "" {
		in.Group = in.Name
	}
	if err := common.ValidateLaunch(in, minDiskGiB); err != nil {
		return provider.Info{}, err
	}
	log := in.Log
	if log == nil {
		log = p.cfg.Log
	}
	if err := p.claim(ctx, in); err != nil {
		return provider.Info{}, err
	}
	userData, err := p.writeUserData(in)
	if err != nil {
		p.records.remove(in.Name)
		return provider.Info{}, err
	}
	defer os.Remove(userData)

	start := time.Now()
	logf(log, "%s: launching with multipass (image %s, %d vCPU, %d MiB, %d GiB disk, group %s)", in.Name, p.cfg.Image, in.CPUs, in.MemoryMiB, in.DiskGiB, in.Group)
	args := launchArgs(in, userData, timeoutSeconds(ctx, p.cfg.LaunchTimeout), p.cfg.Image)
	if _, err := p.call(ctx, args...); err != nil {
		return provider.Info{}, p.launchFailed(ctx, in.Name, err)
	}
	logf(log, "%s: launched after %s; checking cloud-init", in.Name, time.Since(start).Round(time.Second))

	cctx, cancel := context.WithTimeout(ctx, p.cfg.Intervals.CloudInit)
	defer cancel()
	if err := common.CheckCloudInit(cctx, p, in.Name, nil); err != nil {
		// What the VM is now goes with the error, even after ctx ended.
		ictx, icancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.Intervals.DiagExec.Timeout)
		defer icancel()
		info, _ := p.Info(ictx, in.Name)
		return info, err
	}
	logf(log, "%s: cloud-init done after %s", in.Name, time.Since(start).Round(time.Second))
	info, err := p.Info(ctx, in.Name)
	if err != nil {
		return info, fmt.Errorf("launching %s with multipass: %w", in.Name, err)
	}
	return info, nil
}

// claim writes the VM's record before anything is created. An existing
// record is honoured while its instance exists or its launcher still runs;
// otherwise it is left over from a killed run and replaced.
func (p *Provider) claim(ctx context.Context, in provider.LaunchInput) error {
	rec := record{Name: in.Name, Group: in.Group, Image: p.cfg.Image, Owner: os.Getpid(), Created: time.Now().UTC()}
	err := p.records.create(rec)
	if !errors.Is(err, fs.ErrExist) {
		return err
	}
	old, lerr := p.records.load(in.Name)
	if lerr != nil {
		return fmt.Errorf("launching %s with multipass: %w", in.Name, lerr)
	}
	_, ierr := p.Info(ctx, in.Name)
	switch {
	case ierr == nil:
		return fmt.Errorf("launching %s with multipass: instance %q already exists (group %s): %w", in.Name, in.Name, old.Group, ErrAlreadyExists)
	case !errors.Is(ierr, provider.ErrNotFound):
		return fmt.Errorf("launching %s: checking its earlier record: %w", in.Name, ierr)
	case old.Owner != os.Getpid() && state.ProcessAlive(old.Owner):
		return fmt.Errorf("launching %s with multipass: process %d is launching it: %w", in.Name, old.Owner, ErrAlreadyExists)
	}
	if err := p.records.remove(in.Name); err != nil {
		return err
	}
	return p.records.create(rec)
}

// writeUserData puts the user's cloud-init file, byte for byte, in a 0600
// file the multipass client can read.
func (p *Provider) writeUserData(in provider.LaunchInput) (string, error) {
	f, err := os.CreateTemp(p.cfg.TempDir, "user-data-"+in.Name+"-*.yaml")
	if err != nil {
		return "", fmt.Errorf("launching %s: writing user-data: %w", in.Name, err)
	}
	_, werr := f.Write(in.UserData)
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("launching %s: writing user-data: %w", in.Name, werr)
	}
	return f.Name(), nil
}

// launchFailed cleans up after a failed `multipass launch` and says why.
// A timeout leaves a VM whose boot or cloud-init did not finish: it is
// kept, with what cloud-init logged so far. An existing instance is not
// ours, so only our record goes. Anything else may have left a half-made
// instance, which is deleted.
func (p *Provider) launchFailed(ctx context.Context, name string, err error) error {
	err = fmt.Errorf("launching %s with multipass: %w", name, err)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.Intervals.Teardown)
	defer cancel()
	switch {
	case errors.Is(err, ErrTimeout):
		e := &provider.CloudInitError{VM: name, Status: "not finished", Cause: err}
		if res, xerr := p.Exec(cctx, name, provider.ExecInput{Argv: []string{"tail", "-n", "40", "/var/log/cloud-init-output.log"}}); xerr == nil {
			e.OutputTail = string(res.Stdout)
		}
		return e
	case errors.Is(err, ErrAlreadyExists):
		p.records.remove(name)
		return err
	}
	if derr := p.Delete(cctx, name); derr != nil {
		return fmt.Errorf("%w (cleanup also failed: %v)", err, derr)
	}
	return err
}

// timeoutMargin is how much sooner than ctx multipass's --timeout ends,
// so multipass gives up (and says so) before ctx kills the client.
const timeoutMargin = 2 * time.Second

// timeoutSeconds is multipass's --timeout: d, or less when ctx ends sooner.
func timeoutSeconds(ctx context.Context, d time.Duration) int {
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl) - timeoutMargin; left < d {
			d = left
		}
	}
	if s := int(d / time.Second); s > 1 {
		return s
	}
	return 1
}
