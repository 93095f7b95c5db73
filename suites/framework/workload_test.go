package framework

import (
	"context"
	"strings"
	"testing"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
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
