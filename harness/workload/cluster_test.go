package workload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	lxd "github.com/canonical/lxd/client"
	"github.com/canonical/lxd/shared/api"
)

// fakeLXD records the calls Import and CreateNetwork make; every other
// method of the interface is nil and would panic if called.
type fakeLXD struct {
	lxd.InstanceServer
	target   string
	calls    *[]string
	images   map[string]bool
	aliases  map[string]string
	networks map[string]*api.Network
	// computed is the fingerprint the fake "LXD" reports for an upload.
	computed string
	uploaded *[]byte
	// netFail fails a network create with this target ("" for the
	// cluster-wide one); onNetCreate runs after each create that succeeds.
	netFail     map[string]error
	onNetCreate func(target string)
}

func newFake() *fakeLXD {
	return &fakeLXD{calls: &[]string{}, images: map[string]bool{}, aliases: map[string]string{}, networks: map[string]*api.Network{},
		uploaded: new([]byte), netFail: map[string]error{}}
}

func notFound() error { return api.StatusErrorf(http.StatusNotFound, "not found") }

func (f *fakeLXD) call(format string, args ...any) {
	*f.calls = append(*f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeLXD) UseTarget(name string) lxd.InstanceServer { g := *f; g.target = name; return &g }

func (f *fakeLXD) GetImage(fp string) (*api.Image, string, error) {
	if f.images[fp] {
		return &api.Image{Fingerprint: fp}, "", nil
	}
	return nil, "", notFound()
}

type fakeOp struct {
	lxd.Operation
	meta map[string]any
}

func (o fakeOp) WaitContext(context.Context) error { return nil }
func (o fakeOp) Get() api.Operation                { return api.Operation{Metadata: o.meta} }

func (f *fakeLXD) CreateImage(img api.ImagesPost, args *lxd.ImageCreateArgs) (lxd.Operation, error) {
	b, _ := io.ReadAll(args.MetaFile)
	*f.uploaded = b
	f.call("upload %s (%d bytes, rootfs separate: %v)", args.Type, len(b), args.RootfsFile != nil)
	f.images[f.computed] = true
	return fakeOp{meta: map[string]any{"fingerprint": f.computed}}, nil
}

func (f *fakeLXD) GetImageAlias(name string) (*api.ImageAliasesEntry, string, error) {
	if t, ok := f.aliases[name]; ok {
		return &api.ImageAliasesEntry{Name: name, Target: t}, "", nil
	}
	return nil, "", notFound()
}

func (f *fakeLXD) CreateImageAlias(a api.ImageAliasesPost) error {
	f.call("alias %s -> %s", a.Name, a.Target[:12])
	f.aliases[a.Name] = a.Target
	return nil
}

func (f *fakeLXD) UpdateImageAlias(name string, a api.ImageAliasesEntryPut, _ string) error {
	f.call("realias %s -> %s", name, a.Target[:12])
	f.aliases[name] = a.Target
	return nil
}

func (f *fakeLXD) GetNetwork(name string) (*api.Network, string, error) {
	if n, ok := f.networks[name]; ok {
		return n, "", nil
	}
	return nil, "", notFound()
}

// CreateNetwork keeps the network as LXD does: Pending once a member has
// it, Created by the cluster-wide create (Errored when that fails).
func (f *fakeLXD) CreateNetwork(n api.NetworksPost) error {
	f.call("network %s type %s target %q config %v", n.Name, n.Type, f.target, n.Config)
	cur := f.networks[n.Name]
	if err := f.netFail[f.target]; err != nil {
		if f.target == "" && cur != nil {
			cur.Status = "Errored"
		}
		return err
	}
	switch {
	case f.target != "" && cur == nil:
		f.networks[n.Name] = &api.Network{Name: n.Name, Type: n.Type, Managed: true, Status: "Pending"}
	case f.target != "":
	case cur == nil:
		return api.StatusErrorf(http.StatusBadRequest, "network not pending on any node (use --target first)")
	default:
		cur.Status = "Created"
	}
	if f.onNetCreate != nil {
		f.onNetCreate(f.target)
	}
	return nil
}

func (f *fakeLXD) DeleteNetwork(name string) error {
	f.call("delete network %s target %q", name, f.target)
	if _, ok := f.networks[name]; !ok {
		return notFound()
	}
	delete(f.networks, name)
	return nil
}

func cachedImage(t *testing.T) Image {
	s := ImageStore{Dir: t.TempDir()}
	return fakeEntry(t, s, DefaultImageRecipe())
}

func TestImportUploadsTheUnifiedTarballOnceAndAliasesIt(t *testing.T) {
	img := cachedImage(t)
	f := newFake()
	f.computed = img.Fingerprint()
	res, err := Import(context.Background(), ImportInput{Server: f, Image: img, Alias: "bcm-workload"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Uploaded || res.Fingerprint != img.Fingerprint() {
		t.Errorf("result %+v, want an upload of %s", res, img.Fingerprint())
	}
	want := []string{
		fmt.Sprintf("upload container (%d bytes, rootfs separate: false)", img.Manifest.SizeBytes),
		"alias bcm-workload -> " + img.Fingerprint()[:12],
	}
	if strings.Join(*f.calls, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(*f.calls, "\n"), strings.Join(want, "\n"))
	}
	// A second import finds the image and the alias: nothing uploaded.
	*f.calls = nil
	res, err = Import(context.Background(), ImportInput{Server: f, Image: img, Alias: "bcm-workload"})
	if err != nil || res.Uploaded || len(*f.calls) != 0 {
		t.Errorf("second import: %+v %v, calls %v; want no upload and no alias change", res, err, *f.calls)
	}
}

func TestImportRepointsAnAliasThatNamesAnotherImage(t *testing.T) {
	img := cachedImage(t)
	f := newFake()
	f.images[img.Fingerprint()] = true
	f.aliases["bcm-workload"] = strings.Repeat("0", 64)
	if _, err := Import(context.Background(), ImportInput{Server: f, Image: img, Alias: "bcm-workload"}); err != nil {
		t.Fatal(err)
	}
	if f.aliases["bcm-workload"] != img.Fingerprint() {
		t.Errorf("alias points at %s, want %s", f.aliases["bcm-workload"], img.Fingerprint())
	}
}

func TestImportFailsWhenLXDComputesAnotherFingerprint(t *testing.T) {
	img := cachedImage(t)
	f := newFake()
	f.computed = strings.Repeat("a", 64)
	_, err := Import(context.Background(), ImportInput{Server: f, Image: img, Alias: "bcm-workload"})
	if err == nil || !strings.Contains(err.Error(), "LXD computed fingerprint") {
		t.Errorf("Import = %v, want a fingerprint mismatch error", err)
	}
}

func TestImportRejectsBadInput(t *testing.T) {
	img := cachedImage(t)
	for name, in := range map[string]ImportInput{
		"no server":      {Image: img, Alias: "a"},
		"bad alias":      {Server: newFake(), Image: img, Alias: "a/b"},
		"no fingerprint": {Server: newFake(), Image: Image{Key: "k"}, Alias: "a"},
	} {
		if _, err := Import(context.Background(), in); err == nil {
			t.Errorf("%s: Import accepted it", name)
		}
	}
}

func TestCreateNetworkIsPendingOnEachMemberThenClusterWide(t *testing.T) {
	f := newFake()
	err := CreateNetwork(context.Background(), NetworkInput{Server: f, Name: "bcmwl0", CleanupTimeout: time.Second,
		Parents: map[string]string{"C-01": "eth1", "C-00": "eth1"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`network bcmwl0 type macvlan target "C-00" config map[parent:eth1]`,
		`network bcmwl0 type macvlan target "C-01" config map[parent:eth1]`,
		`network bcmwl0 type macvlan target "" config map[]`,
	}
	if strings.Join(*f.calls, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(*f.calls, "\n"), strings.Join(want, "\n"))
	}
}

// A member that refuses its pending create leaves a Pending network that
// every later run on a reused cluster trips over ("exists ... Pending"):
// CreateNetwork removes what it made before it returns the error.
func TestCreateNetworkLeavesNothingWhenAMemberFails(t *testing.T) {
	for _, failing := range []string{"C-01", ""} {
		f := newFake()
		f.netFail[failing] = api.StatusErrorf(http.StatusInternalServerError, "parent eth9 not found")
		err := CreateNetwork(context.Background(), NetworkInput{Server: f, Name: "bcmwl0", CleanupTimeout: time.Second,
			Parents: map[string]string{"C-00": "eth1", "C-01": "eth1", "C-02": "eth1"}})
		if err == nil || !strings.Contains(err.Error(), "parent eth9 not found") {
			t.Errorf("create failing on %q: %v, want LXD's error", failing, err)
		}
		if n, ok := f.networks["bcmwl0"]; ok {
			t.Errorf("create failing on %q left network bcmwl0 %s; calls:\n%s", failing, n.Status, strings.Join(*f.calls, "\n"))
		}
	}
}

// A context that ends while the network is being made: either the
// network is there and CreateNetwork says so (the caller deletes it at
// cleanup), or it returns an error and nothing is left.
func TestCreateNetworkLeavesNothingWhenItReturnsAnError(t *testing.T) {
	for _, at := range []string{"C-00", ""} {
		f := newFake()
		ctx, cancel := context.WithCancel(context.Background())
		f.onNetCreate = func(target string) {
			if target == at {
				cancel()
			}
		}
		err := CreateNetwork(ctx, NetworkInput{Server: f, Name: "bcmwl0", CleanupTimeout: time.Second, Parents: map[string]string{"C-00": "eth1", "C-01": "eth1"}})
		n, left := f.networks["bcmwl0"]
		switch {
		case err != nil && left:
			t.Errorf("context ended after the create on %q: error %v, yet network bcmwl0 is left %s", at, err, n.Status)
		case err == nil && (!left || n.Status != "Created"):
			t.Errorf("context ended after the create on %q: no error, yet the network is not Created (%v)", at, n)
		}
		cancel()
	}
}

func TestCreateNetworkKeepsACreatedMacvlanAndRefusesAnythingElse(t *testing.T) {
	f := newFake()
	f.networks["bcmwl0"] = &api.Network{Name: "bcmwl0", Type: "macvlan", Managed: true, Status: "Created"}
	in := NetworkInput{Server: f, Name: "bcmwl0", CleanupTimeout: time.Second, Parents: map[string]string{"C-00": "eth1"}}
	if err := CreateNetwork(context.Background(), in); err != nil || len(*f.calls) != 0 {
		t.Errorf("existing macvlan: %v, calls %v; want it kept", err, *f.calls)
	}
	f.networks["bcmwl0"] = &api.Network{Name: "bcmwl0", Type: "bridge", Managed: true, Status: "Created"}
	if err := CreateNetwork(context.Background(), in); err == nil || !strings.Contains(err.Error(), "type bridge") {
		t.Errorf("existing bridge: %v, want an error naming its type", err)
	}
}

func TestCreateNetworkRejectsBadInput(t *testing.T) {
	for name, in := range map[string]NetworkInput{
		"no server":          {Name: "n", Parents: map[string]string{"a": "eth1"}, CleanupTimeout: time.Second},
		"long name":          {Server: newFake(), Name: "a-name-longer-than-fifteen", Parents: map[string]string{"a": "eth1"}, CleanupTimeout: time.Second},
		"no parents":         {Server: newFake(), Name: "n", CleanupTimeout: time.Second},
		"empty parent":       {Server: newFake(), Name: "n", Parents: map[string]string{"a": ""}, CleanupTimeout: time.Second},
		"leading digit":      {Server: newFake(), Name: "0n", Parents: map[string]string{"a": "eth1"}, CleanupTimeout: time.Second},
		"no cleanup timeout": {Server: newFake(), Name: "n", Parents: map[string]string{"a": "eth1"}},
	} {
		if err := CreateNetwork(context.Background(), in); err == nil {
			t.Errorf("%s: CreateNetwork accepted it", name)
		}
	}
}

func TestParseIPAddrNIC(t *testing.T) {
	out := "3: eth1    inet 10.77.0.10/24 brd 10.77.0.255 scope global eth1\\       valid_lft forever preferred_lft forever\n"
	nic, err := parseIPAddrNIC(out, "C-00", "10.77.0.10")
	if err != nil || nic != "eth1" {
		t.Errorf("parse = %q, %v; want eth1", nic, err)
	}
	if _, err := parseIPAddrNIC("", "C-00", "10.77.0.10"); err == nil || !strings.Contains(err.Error(), "no interface holds 10.77.0.10") {
		t.Errorf("empty output: %v, want an error naming the address", err)
	}
	if _, err := parseIPAddrNIC(out, "C-00", "10.77.0.1"); err == nil {
		t.Error("10.77.0.1 matched 10.77.0.10's line")
	}
}

// Import and CreateNetwork ask LXD through a copy of the client bound to
// their context: a member that holds their requests (paused) does not
// hold them past it, the upload included.
func TestImportAndCreateNetworkEndWithTheirContext(t *testing.T) {
	img := cachedImage(t)
	importing := func(ctx context.Context, srv lxd.InstanceServer) error {
		_, err := Import(ctx, ImportInput{Server: srv, Image: img, Alias: "bcm-workload"})
		return err
	}
	for name, c := range map[string]struct {
		hold func(*http.Request) bool
		call func(context.Context, lxd.InstanceServer) error
	}{
		"import": {hold: func(*http.Request) bool { return true }, call: importing},
		"upload": {hold: func(r *http.Request) bool { return r.Method == http.MethodPost }, call: importing},
		"network": {hold: func(*http.Request) bool { return true }, call: func(ctx context.Context, srv lxd.InstanceServer) error {
			return CreateNetwork(ctx, NetworkInput{Server: srv, Name: "bcmwl0", CleanupTimeout: time.Second, Parents: map[string]string{"C-00": "eth1"}})
		}},
	} {
		srv, h := newHeldAsks(t, c.hold)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		done := make(chan error, 1)
		go func() { done <- c.call(ctx, srv) }()
		select {
		case err := <-done:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s: %v, want the context's deadline", name, err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s: still waiting 5 s after its 50 ms context ended (%d requests held)", name, h.asks.Load())
		}
		cancel()
	}
}
