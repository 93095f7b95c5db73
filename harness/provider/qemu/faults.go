package qemu

import (
	"context"
	"fmt"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
)

// Pause freezes the VM's vCPUs (QMP stop).
func (p *Provider) Pause(ctx context.Context, name string) error {
	return p.qmpOn(ctx, name, "stop", nil)
}

// Resume continues a paused VM (QMP cont) and steps its clock to the
// host's. Under software emulation the guest's clock stands still while
// its vCPUs are stopped, and a node has no time server to catch up from
// (it may only talk to this machine): left alone it stays behind by the
// pause for good, and once it leads the cluster every other member takes
// its heartbeats for stale and reports the others Offline.
func (p *Provider) Resume(ctx context.Context, name string) error {
	if err := p.qmpOn(ctx, name, "cont", nil); err != nil {
		return err
	}
	now := time.Now()
	if _, err := provider.Run(ctx, p, name, "date", "-u", "-s", fmt.Sprintf("@%d.%09d", now.Unix(), now.Nanosecond())); err != nil {
		return fmt.Errorf("setting the clock of resumed %s to the host's: %w", name, err)
	}
	return nil
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
