// Package fakeprovider is an in-memory provider.Provider for unit tests of
// the harness's bookkeeping (teardown order, cleanup on error, sweeps). It
// boots nothing and is never used outside _test files.
package fakeprovider

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
)

// Provider records every call and keeps VMs in a map.
type Provider struct {
	mu  sync.Mutex
	vms map[string]provider.Info
	// Calls is the ordered log of operations ("launch X", "delete X").
	Calls []string
	// FailLaunch makes Launch of these names fail.
	FailLaunch map[string]error
	// OnLaunch runs at the start of every Launch (to observe state then).
	OnLaunch func(in provider.LaunchInput)
	// ExecFunc answers Exec; nil answers exit 0 with no output.
	ExecFunc func(name string, argv []string) provider.ExecResult
	// Forwards gives the VM of that name these guest-port forwards when it
	// is launched (a test server standing in for a guest's port, as a
	// backend's host forwarding would).
	Forwards map[string]map[int]string
}

// New returns an empty fake.
func New() *Provider {
	return &Provider{vms: map[string]provider.Info{}, FailLaunch: map[string]error{}}
}

func (p *Provider) Name() string { return "fake" }

func (p *Provider) log(s string) {
	p.mu.Lock()
	p.Calls = append(p.Calls, s)
	p.mu.Unlock()
}

// Add puts a VM in place as if an earlier run had launched it.
func (p *Provider) Add(info provider.Info) {
	p.mu.Lock()
	defer p.mu.Unlock()
	info.Provider = "fake"
	if info.State == "" {
		info.State = provider.StateRunning
	}
	p.vms[info.Name] = info
}

func (p *Provider) Launch(ctx context.Context, in provider.LaunchInput) (provider.Info, error) {
	if p.OnLaunch != nil {
		p.OnLaunch(in)
	}
	p.log("launch " + in.Name)
	p.mu.Lock()
	if _, ok := p.vms[in.Name]; ok {
		p.mu.Unlock()
		return provider.Info{}, fmt.Errorf("VM %s already exists", in.Name)
	}
	info := provider.Info{Name: in.Name, Group: in.Group, Provider: "fake", State: provider.StateRunning, PrivateIP: fmt.Sprintf("10.0.0.%d", len(p.vms)+10),
		Forwards: p.Forwards[in.Name]}
	p.vms[in.Name] = info
	err := p.FailLaunch[in.Name]
	p.mu.Unlock()
	if err != nil {
		return info, err
	}
	select {
	case <-ctx.Done():
		return info, ctx.Err()
	default:
	}
	return info, nil
}

func (p *Provider) Exec(ctx context.Context, name string, in provider.ExecInput) (provider.ExecResult, error) {
	if _, err := p.Info(ctx, name); err != nil {
		return provider.ExecResult{}, err
	}
	if p.ExecFunc != nil {
		return p.ExecFunc(name, in.Argv), nil
	}
	return provider.ExecResult{}, nil
}

func (p *Provider) CopyIn(ctx context.Context, name, path string, content []byte, mode uint32) error {
	_, err := p.Info(ctx, name)
	return err
}

func (p *Provider) CopyOut(ctx context.Context, name, path string) ([]byte, error) {
	if _, err := p.Info(ctx, name); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%s: %w", path, provider.ErrNotSupported)
}

func (p *Provider) Info(ctx context.Context, name string) (provider.Info, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i, ok := p.vms[name]
	if !ok {
		return provider.Info{}, fmt.Errorf("VM %s: %w", name, provider.ErrNotFound)
	}
	return i, nil
}

func (p *Provider) List(ctx context.Context, group string) ([]provider.Info, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []provider.Info
	for _, i := range p.vms {
		if group == "" || i.Group == group {
			out = append(out, i)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out, nil
}

func (p *Provider) Stop(ctx context.Context, name string) error  { p.log("stop " + name); return nil }
func (p *Provider) Start(ctx context.Context, name string) error { p.log("start " + name); return nil }

func (p *Provider) Delete(ctx context.Context, name string) error {
	p.log("delete " + name)
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.vms, name)
	return nil
}

func (p *Provider) Close() error { return nil }

// Names returns the VMs that exist now.
func (p *Provider) Names() []string {
	infos, _ := p.List(context.Background(), "")
	var out []string
	for _, i := range infos {
		out = append(out, i.Name)
	}
	return out
}
