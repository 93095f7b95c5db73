package providers

import (
	"context"
	"errors"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
)

func detectMultipass(ctx context.Context, bin string) (string, bool) { return "", false }

func newMultipass(ctx context.Context, o Options) (provider.Provider, error) {
	return nil, errors.New("provider multipass: not wired yet")
}
