package qemu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
)

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

func (p *Provider) Stop(ctx context.Context, name string) error {
	rec, err := p.load(name)
	if err != nil {
		return err
	}
	p.dropClient(name)
	if err := p.stopProcess(ctx, rec, p.cfg.Intervals.VMStop.Timeout); err != nil {
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
	if err := p.ensureSegment(ctx, rec); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	if err := p.startQEMU(ctx, rec, img, aptPort, ""); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	return p.waitSSH(ctx, rec)
}

// Delete kills the VM's qemu and removes its directory (overlay, seed,
// logs, record); the last VM of its cluster takes the segment switch with
// it. A missing VM is not an error.
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
	if err := p.withAllocateLock(func() error { return p.stopUnusedSwitches(ctx) }); err != nil {
		return fmt.Errorf("deleting %s: %w", name, err)
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

// ConsolePath is where the VM's serial console is written on the host.
func (p *Provider) ConsolePath(name string) (string, error) {
	rec, err := p.load(name)
	if err != nil {
		return "", err
	}
	return rec.path("serial.log"), nil
}
