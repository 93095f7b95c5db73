package framework

import (
	"context"
	"strings"
	"testing"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/fakeprovider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/workload"
)

// Bad input is refused before any cluster is asked, naming what and why.
func TestWorkloadHelpersRejectBadInput(t *testing.T) {
	ctx := context.Background()
	var c *cluster.Cluster // never reached
	for name, err := range map[string]error{
		"instance action": SetInstanceStateE(ctx, t, InstanceStateInput{Cluster: c, Instance: "wl-a", Action: "pause"}),
		"member action":   SetMemberStateE(ctx, t, MemberStateInput{Cluster: c, Member: "C-01", Action: "drain"}),
		"exec command": func() error {
			_, err := ExecInInstanceE(ctx, t, ExecInInstanceInput{Cluster: c, Instance: "wl-a"})
			return err
		}(),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		for _, want := range []string{"wl-a", "C-01"} {
			if strings.Contains(name, "member") == (want == "C-01") && !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %v does not name %s", name, err, want)
			}
		}
	}
}

func TestInstanceDatasetIsWhereLXDKeepsContainers(t *testing.T) {
	if got := InstanceDataset("local", "wlabc-m00"); got != "local/containers/wlabc-m00" {
		t.Errorf("InstanceDataset = %q", got)
	}
}

// Outputs of `zfs list -H -o name,type DS` as OpenZFS prints them: only
// its "dataset does not exist" says the dataset is absent; a zfs that
// could not answer is an error, never "absent".
func TestDatasetListedTellsAbsentFromFailed(t *testing.T) {
	const ds = "local/containers/wl-a"
	for _, c := range []struct {
		name   string
		res    provider.ExecResult
		listed bool
		err    string // in the error; "" for none
	}{
		{name: "there", res: provider.ExecResult{Stdout: []byte(ds + "\tfilesystem\n")}, listed: true},
		{name: "absent", res: provider.ExecResult{ExitCode: 1, Stderr: []byte("cannot open '" + ds + "': dataset does not exist\n")}},
		{name: "a volume of that name", res: provider.ExecResult{Stdout: []byte(ds + "\tvolume\n")}, err: "volume"},
		{name: "another dataset absent", res: provider.ExecResult{ExitCode: 1, Stderr: []byte("cannot open 'local/containers/wl-b': dataset does not exist\n")}, err: "wl-b"},
		{name: "module not loaded", res: provider.ExecResult{ExitCode: 1, Stderr: []byte("The ZFS modules are not loaded.\nTry running '/sbin/modprobe zfs' as root to load them.\n")}, err: "modules are not loaded"},
		{name: "no zfs command", res: provider.ExecResult{ExitCode: 127, Stderr: []byte("sh: 1: zfs: not found\n")}, err: "exited 127"},
		{name: "permission denied", res: provider.ExecResult{ExitCode: 1, Stderr: []byte("cannot open '" + ds + "': permission denied\n")}, err: "permission denied"},
		{name: "pool faulted", res: provider.ExecResult{ExitCode: 1, Stderr: []byte("cannot open '" + ds + "': pool I/O is currently suspended\n")}, err: "suspended"},
	} {
		listed, err := datasetListed(ds, c.res)
		switch {
		case c.err == "" && (err != nil || listed != c.listed):
			t.Errorf("%s: datasetListed = %v, %v; want %v, no error", c.name, listed, err, c.listed)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: datasetListed = %v, %v; want an error saying %q", c.name, listed, err, c.err)
		}
	}
}

// trixieProvider is a provider whose nodes run trixie.
type trixieProvider struct{ provider.Provider }

func (trixieProvider) Release() string { return "trixie" }

// The instance image follows the nodes' release; a provider that chooses
// none (multipass) gets the default, bookworm's.
func TestTheInstanceImageFollowsTheNodesRelease(t *testing.T) {
	fp := fakeprovider.New()
	if r := InstanceImageRecipe(trixieProvider{fp}); r.Suite != "trixie" || !strings.HasPrefix(r.Key(), "instance-trixie-") {
		t.Errorf("trixie nodes: instance image %s (suite %s)", r.Key(), r.Suite)
	}
	if r := InstanceImageRecipe(fp); r.Key() != workload.DefaultImageRecipe().Key() {
		t.Errorf("no release: instance image %s, want the default %s", r.Key(), workload.DefaultImageRecipe().Key())
	}
}
