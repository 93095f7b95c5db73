package multipass

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
)

// Info asks multipass about one instance and adds the harness's record.
func (p *Provider) Info(ctx context.Context, name string) (provider.Info, error) {
	if err := provider.ValidateVMName(name); err != nil {
		return provider.Info{}, err
	}
	out, err := p.call(ctx, "info", name, "--format", "json")
	if err != nil {
		return provider.Info{}, fmt.Errorf("reading info of %s with multipass: %w", name, err)
	}
	reply, err := parseInfo(out)
	if err != nil {
		return provider.Info{}, fmt.Errorf("reading info of %s with multipass: %w", name, err)
	}
	inst, ok := reply.Info[name]
	if !ok {
		return provider.Info{}, fmt.Errorf("reading info of %s with multipass: not in its answer: %w", name, provider.ErrNotFound)
	}
	rec, err := p.records.load(name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return provider.Info{}, err
	}
	return toInfo(name, inst.State, inst.IPv4, rec), nil
}

// List returns the VMs this harness launched whose group is exactly group
// ("" = all of them). Instances without a record are someone else's and
// are never listed, so a sweep cannot delete a user's own VMs. A record
// whose instance multipass no longer knows is listed as StateUnknown, so
// the sweep can remove it with Delete.
func (p *Provider) List(ctx context.Context, group string) ([]provider.Info, error) {
	recs, err := p.records.all()
	if err != nil {
		return nil, fmt.Errorf("listing VMs of group %q: %w", group, err)
	}
	out, err := p.call(ctx, "list", "--format", "json")
	if err != nil {
		return nil, fmt.Errorf("listing VMs of group %q with multipass: %w", group, err)
	}
	reply, err := parseList(out)
	if err != nil {
		return nil, fmt.Errorf("listing VMs of group %q with multipass: %w", group, err)
	}
	items := map[string]listItem{}
	for _, it := range reply.List {
		items[it.Name] = it
	}
	var infos []provider.Info
	for name, rec := range recs {
		if group != "" && rec.Group != group {
			continue
		}
		it, ok := items[name]
		if !ok {
			it = listItem{Name: name, State: string(provider.StateUnknown)}
		}
		infos = append(infos, toInfo(name, it.State, it.IPv4, rec))
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	return infos, nil
}

// toInfo builds the provider's view. LXD is reached at PrivateIP:8443
// directly, so there are no forwards.
func toInfo(name, st string, ipv4 []string, rec record) provider.Info {
	info := provider.Info{
		Name:      name,
		Group:     rec.Group,
		Provider:  "multipass",
		State:     mapState(st),
		Addresses: append([]string(nil), ipv4...),
		Owner:     rec.Owner,
	}
	if len(ipv4) > 0 {
		info.PrivateIP = ipv4[0]
	}
	return info
}

// Stop shuts the instance down (multipass stop).
func (p *Provider) Stop(ctx context.Context, name string) error {
	return p.simple(ctx, "stopping", "stop", name)
}

// Start boots a stopped instance (multipass start).
func (p *Provider) Start(ctx context.Context, name string) error {
	return p.simple(ctx, "starting", "start", name)
}

func (p *Provider) simple(ctx context.Context, doing, sub, name string) error {
	if err := provider.ValidateVMName(name); err != nil {
		return err
	}
	if _, err := p.call(ctx, sub, name); err != nil {
		return fmt.Errorf("%s %s with multipass: %w", doing, name, err)
	}
	return nil
}

// Delete deletes and purges exactly this instance, then its record. It
// never runs the global `multipass purge`, which would also purge instances
// the user deleted but meant to recover. A missing instance is not an error.
func (p *Provider) Delete(ctx context.Context, name string) error {
	if err := provider.ValidateVMName(name); err != nil {
		return err
	}
	if _, err := p.call(ctx, "delete", "--purge", name); err != nil && !errors.Is(err, provider.ErrNotFound) {
		return fmt.Errorf("deleting %s with multipass: %w", name, err)
	}
	if err := p.records.remove(name); err != nil {
		return fmt.Errorf("deleting %s: %w", name, err)
	}
	return nil
}
