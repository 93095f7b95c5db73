package providers

import (
	"context"
	"path/filepath"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/multipass"
)

func detectMultipass(ctx context.Context, bin string) (string, bool) {
	return multipass.Detect(ctx, bin)
}

func newMultipass(ctx context.Context, o Options) (provider.Provider, error) {
	return multipass.New(multipass.Config{
		Binary: o.MultipassBinary, Image: o.MultipassImage, Log: o.Log, Intervals: o.Intervals,
		StateDir: filepath.Join(o.Dirs.State, "multipass"),
	})
}
