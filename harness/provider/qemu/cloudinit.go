package qemu

import (
	"context"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/common"
)

func (p *Provider) consoleTail(rec *record, n int) string {
	return provider.Tail(readFile(rec.path("serial.log")), n)
}

// waitCloudInit blocks until cloud-init has finished and turns an error
// status into a CloudInitError with the failing modules and logs.
func (p *Provider) waitCloudInit(ctx context.Context, rec *record) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Intervals.CloudInit)
	defer cancel()
	return common.CheckCloudInit(ctx, p, rec.Name, func() string { return p.consoleTail(rec, 30) })
}
