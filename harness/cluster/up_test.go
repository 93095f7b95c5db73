package cluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/fakeprovider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

// specOnFakeLXD is a three-node CLUS1 on the fake provider with a fake LXD
// behind every node; the readiness wait is short so a cluster that never
// settles fails fast, and the polls are quick.
func specOnFakeLXD(t *testing.T) (Spec, *fakeprovider.Provider, *fakeLXD) {
	fp := fakeprovider.New()
	s := validSpec()
	s.Provider, s.StateDir, s.Members, s.MaxParallel, s.Log = fp, t.TempDir(), 2, 3, testLog{t}
	s.Intervals = wait.Intervals{Ready: 2 * time.Second, Poll: 5 * time.Millisecond, PollMax: 20 * time.Millisecond}
	f := newFakeLXD(t, fp, NodeName(s.Name, 0), NodeName(s.Name, 1), NodeName(s.Name, 2))
	return s, fp, f
}

// TestUpFormsAClusterOnTheFakeLXD shows the fake LXD carries Up to the
// end, so each failure row below fails where it injects its failure and
// nowhere else.
func TestUpFormsAClusterOnTheFakeLXD(t *testing.T) {
	s, fp, f := specOnFakeLXD(t)
	c, err := Up(t.Context(), s)
	if err != nil {
		t.Fatalf("Up on the fake LXD: %v", err)
	}
	if got := len(c.Members()); got != 3 {
		t.Errorf("%d members, want 3", got)
	}
	f.mu.Lock()
	members := slices.Clone(f.members)
	f.mu.Unlock()
	if len(members) != 3 || members[0] != "CLUS1-00" {
		t.Errorf("lxd init ran on %v, want CLUS1-00 first and then both members", members)
	}
	if got := c.Credentials().ClusterCert; got != f.certPEM {
		t.Errorf("pinned cluster certificate is not the one the node reported")
	}
	if err := c.Destroy(context.Background()); err != nil {
		t.Fatal(err)
	}
	if left := fp.Names(); len(left) > 0 {
		t.Errorf("VMs left after Destroy: %v", left)
	}
}

// TestUpFailurePathsNameTheirContextOnce injects one failure on each of
// Up's paths (launch, bootstrap, join, readiness) and checks the error
// carries each layer's context exactly once, no other path's context, and
// the injected cause; and that Up tore down every VM it launched and the
// cluster's state.
func TestUpFailurePathsNameTheirContextOnce(t *testing.T) {
	const (
		up        = "bringing up CLUS1: "
		launch    = "launching CLUS1-01: "
		bootstrap = "bootstrapping CLUS1-00: "
		join      = "joining CLUS1-01 to CLUS1: "
		ready     = "waiting for CLUS1 to be ready: "
		preseed   = "lxd init --preseed: "
	)
	all := []string{up, launch, bootstrap, join, ready, preseed}
	rows := []struct {
		name   string
		inject func(fp *fakeprovider.Provider, f *fakeLXD)
		want   []string // prefixes that appear exactly once; the rest of all never
		cause  func(err error) bool
	}{
		{
			name:   "launch",
			inject: func(fp *fakeprovider.Provider, f *fakeLXD) { fp.FailLaunch["CLUS1-01"] = errBoom },
			want:   []string{up, launch},
			cause:  func(err error) bool { return errors.Is(err, errBoom) },
		},
		{
			name:   "bootstrap",
			inject: func(fp *fakeprovider.Provider, f *fakeLXD) { f.failPreseed["CLUS1-00"] = true },
			want:   []string{up, bootstrap, preseed},
			cause:  func(err error) bool { return strings.Contains(err.Error(), "injected preseed failure on CLUS1-00") },
		},
		{
			name:   "join",
			inject: func(fp *fakeprovider.Provider, f *fakeLXD) { f.failPreseed["CLUS1-01"] = true },
			want:   []string{up, join, preseed},
			cause:  func(err error) bool { return strings.Contains(err.Error(), "injected preseed failure on CLUS1-01") },
		},
		{
			name:   "readiness/roles never settle",
			inject: func(fp *fakeprovider.Provider, f *fakeLXD) { f.unsettled = true },
			want:   []string{up, ready},
			cause: func(err error) bool {
				return errors.Is(err, context.DeadlineExceeded) && strings.Contains(err.Error(), "roles not settled")
			},
		},
		{
			name:   "readiness/a member never trusts the harness",
			inject: func(fp *fakeprovider.Provider, f *fakeLXD) { f.untrusted["CLUS1-01"] = true },
			want:   []string{up, ready},
			cause: func(err error) bool {
				return errors.Is(err, context.DeadlineExceeded) && strings.Contains(err.Error(), "CLUS1-01 does not trust the harness certificate")
			},
		},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			s, fp, f := specOnFakeLXD(t)
			row.inject(fp, f)
			c, err := Up(t.Context(), s)
			if err == nil {
				c.Destroy(context.Background())
				t.Fatal("Up succeeded despite the injected failure")
			}
			t.Logf("Up: %v", err)
			for _, prefix := range all {
				want := 0
				if slices.Contains(row.want, prefix) {
					want = 1
				}
				if got := strings.Count(err.Error(), prefix); got != want {
					t.Errorf("%q appears %d times, want %d, in: %v", prefix, got, want, err)
				}
			}
			if !strings.HasPrefix(err.Error(), up) {
				t.Errorf("the cluster's context is not outermost: %v", err)
			}
			if !row.cause(err) {
				t.Errorf("the injected cause is lost: %v", err)
			}

			// Up tore down everything it launched, and the cluster's state.
			for _, call := range fp.Calls {
				if vm, ok := strings.CutPrefix(call, "launch "); ok && !slices.Contains(fp.Calls, "delete "+vm) {
					t.Errorf("%s was launched and never deleted: %v", vm, fp.Calls)
				}
			}
			if left := fp.Names(); len(left) > 0 {
				t.Errorf("VMs left after the failed Up: %v", left)
			}
			if _, err := os.Stat(filepath.Join(ClustersDir(s.StateDir), s.Name)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the cluster's state is left after the failed Up (%v)", err)
			}
			if row.name == "join" {
				// The failed member's join token is revoked, and it is
				// removed from the cluster.
				f.mu.Lock()
				var op string
				for id, member := range f.tokens {
					if member == "CLUS1-01" {
						op = id
					}
				}
				f.mu.Unlock()
				if got := f.revocations(); op == "" || !slices.Contains(got, "operation "+op) || !slices.Contains(got, "member CLUS1-01") {
					t.Errorf("join token %q of CLUS1-01 not revoked: %v", op, got)
				}
			}
		})
	}
}
