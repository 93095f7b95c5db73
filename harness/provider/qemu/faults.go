package qemu

import (
	"context"
	"fmt"
)

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
	if _, err := p.qmp(ctx, rec.path("qmp.sock"), cmd, args); err != nil {
		return fmt.Errorf("%s on %s: %w", cmd, name, err)
	}
	return nil
}
