package framework

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/BitcoinCacheMachine/bcmtest/harness/kernelcheck"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/fakeprovider"
)

func TestExpectKernelHealthy(t *testing.T) {
	fake := fakeprovider.New()
	fake.Add(provider.Info{Name: "bcm-00"})
	fake.Add(provider.Info{Name: "bcm-01"})
	fake.ExecFunc = func(name string, argv []string) provider.ExecResult {
		if name == "bcm-01" && argv[0] == "journalctl" {
			return provider.ExecResult{Stdout: []byte("[   77.123456] bcm-01 kernel: INFO: task lxd:812 blocked for more than 120 seconds.\n")}
		}
		return provider.ExecResult{Stdout: []byte("[    0.000000] x kernel: Linux version 6.1.0\n")}
	}
	in := KernelHealthInput{Provider: fake, Nodes: []string{"bcm-00", "bcm-01"}}

	res, err := ExpectKernelHealthyE(context.Background(), &fakeT{TB: t}, in)
	var kerr *kernelcheck.Error
	if !errors.As(err, &kerr) || len(kerr.Findings) != 1 || len(res.Findings) != 1 {
		t.Fatalf("ExpectKernelHealthyE: %v, %+v", err, res)
	}
	if f := kerr.Findings[0]; f.Node != "bcm-01" || f.Kind != kernelcheck.HungTask || f.When() != "77.123 s after boot" {
		t.Errorf("finding %+v", f)
	}

	ft := &fakeT{TB: t}
	ft.run(func() { ExpectKernelHealthy(context.Background(), ft, in) })
	if len(ft.fatal) != 1 || !strings.Contains(ft.fatal[0], "bcm-01: hung task 77.123 s after boot (kernel log): [   77.123456] INFO: task lxd:812") {
		t.Errorf("ExpectKernelHealthy failed with %q", ft.fatal)
	}

	in.Nodes = []string{"bcm-00"}
	ft = &fakeT{TB: t}
	ft.run(func() { ExpectKernelHealthy(context.Background(), ft, in) })
	if len(ft.fatal) != 0 {
		t.Errorf("a healthy node failed the test: %q", ft.fatal)
	}

	if _, err := ExpectKernelHealthyE(context.Background(), &fakeT{TB: t}, KernelHealthInput{Provider: fake}); err == nil || !strings.Contains(err.Error(), "Nodes is empty") {
		t.Errorf("no nodes: %v", err)
	}
}
