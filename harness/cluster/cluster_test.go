package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canonical/lxd/shared/api"
	"gopkg.in/yaml.v3"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/fakeprovider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

func TestBootstrapPreseedParsesBackIntoLXDTypes(t *testing.T) {
	b, err := MarshalPreseed(BootstrapPreseed(BootstrapInput{ServerName: "CLUS1-00", Address: "10.77.0.10", PoolName: "local", PoolGiB: 5}))
	if err != nil {
		t.Fatal(err)
	}
	var p api.InitPreseed
	if err := yaml.Unmarshal(b, &p); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if got := p.Node.Config["core.https_address"]; got != "10.77.0.10:8443" {
		t.Errorf("core.https_address = %v", got)
	}
	if p.Cluster == nil || !p.Cluster.Enabled || p.Cluster.ServerName != "CLUS1-00" {
		t.Errorf("cluster = %+v", p.Cluster)
	}
	if len(p.Node.StoragePools) != 1 || p.Node.StoragePools[0].Driver != "zfs" || p.Node.StoragePools[0].Config["size"] != "5GiB" || p.Node.StoragePools[0].Name != "local" {
		t.Errorf("pools = %+v", p.Node.StoragePools)
	}
	if p.Node.Profiles[0].Devices["root"]["pool"] != "local" {
		t.Errorf("default profile root = %+v", p.Node.Profiles)
	}
	for _, absent := range []string{"cluster_token", "cluster_password", "server_address", "networks"} {
		if strings.Contains(string(b), absent) {
			t.Errorf("empty field %s rendered:\n%s", absent, b)
		}
	}
}

const pemCert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

func TestJoinPreseedCarriesTokenCertificateAndMemberConfig(t *testing.T) {
	asked := []api.ClusterMemberConfigKey{
		{Entity: "storage-pool", Name: "local", Key: "source", Description: "d"},
		{Entity: "storage-pool", Name: "local", Key: "size"},
		{Entity: "storage-pool", Name: "local", Key: "zfs.pool_name"},
	}
	mc, err := FillMemberConfig(asked, "local", 5)
	if err != nil {
		t.Fatal(err)
	}
	b, err := MarshalPreseed(JoinPreseed(JoinInput{ServerName: "CLUS1-02", Address: "10.77.0.12", ClusterAddress: "10.77.0.10",
		ClusterCertificate: pemCert, Token: "tok123", PoolName: "local", PoolGiB: 5, MemberConfig: mc}))
	if err != nil {
		t.Fatal(err)
	}
	var p api.InitPreseed
	if err := yaml.Unmarshal(b, &p); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	c := p.Cluster
	if c.ClusterToken != "tok123" || c.ServerAddress != "10.77.0.12:8443" || c.ClusterAddress != "10.77.0.10:8443" || c.ServerName != "CLUS1-02" || !c.Enabled {
		t.Errorf("cluster = %+v", c)
	}
	if c.ClusterCertificate != pemCert {
		t.Errorf("certificate changed: %q", c.ClusterCertificate)
	}
	got := map[string]string{}
	for _, k := range c.MemberConfig {
		got[k.Key] = k.Value
	}
	if len(got) != 3 || got["size"] != "5GiB" || got["source"] != "" || got["zfs.pool_name"] != "local" {
		t.Errorf("member_config = %+v\n%s", c.MemberConfig, b)
	}
	if !strings.Contains(string(b), "value: \"\"") {
		t.Errorf("empty source answer dropped:\n%s", b)
	}
	if _, err := FillMemberConfig([]api.ClusterMemberConfigKey{{Entity: "network", Name: "br0", Key: "parent"}}, "local", 5); err == nil {
		t.Error("unknown member config key accepted")
	}
}

func TestNameValidation(t *testing.T) {
	for _, ok := range []string{"CLUS1", "a", "bcm-test", strings.Repeat("a", 60)} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("%q rejected: %v", ok, err)
		}
	}
	bad := map[string]string{
		"":                      "must not be empty",
		"CLUS_1":                "only letters, digits and hyphens",
		"1CLUS":                 "must not start with a digit",
		"-CLUS":                 "must not start with a hyphen",
		"CLUS-":                 "must not end with a hyphen",
		"CLUS1-00":              "must not end in -NN",
		strings.Repeat("a", 61): "at most 60 characters",
		"CLUS 1":                "only letters",
	}
	for name, want := range bad {
		err := ValidateName(name)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "cluster name") {
			t.Errorf("%q: want error containing %q, got %v", name, want, err)
		}
	}
}

func TestIsNodeOfMatchesExactly(t *testing.T) {
	cases := map[[2]string]bool{
		{"CLUS1-00", "CLUS1"}: true, {"CLUS1-03", "CLUS1"}: true,
		{"CLUS10-00", "CLUS1"}: false, {"CLUS1-000", "CLUS1"}: false, {"CLUS1-0a", "CLUS1"}: false,
		{"XCLUS1-00", "CLUS1"}: false, {"CLUS1", "CLUS1"}: false, {"CLUS1--1", "CLUS1"}: false, {"CLUS1-+1", "CLUS1"}: false,
	}
	for in, want := range cases {
		if got := IsNodeOf(in[0], in[1]); got != want {
			t.Errorf("IsNodeOf(%q, %q) = %v", in[0], in[1], got)
		}
	}
}

func host() HostResources { return HostResources{CPUs: 2, MemoryMiB: 24000, FreeDiskGiB: 80} }

func validSpec() Spec {
	return Spec{Name: "CLUS1", Members: 2, CloudInit: []byte("#cloud-config\n"), Provider: fakeprovider.New()}
}

func TestSpecValidationNamesFieldAndRule(t *testing.T) {
	if _, err := validSpec().resolve(host()); err != nil {
		t.Fatalf("valid spec rejected: %v", err)
	}
	cases := []struct {
		mut  func(*Spec)
		want string
	}{
		{func(s *Spec) { s.Members = -1 }, "members -1: must be 0"},
		{func(s *Spec) { s.Members = 100 }, "at most 99"},
		{func(s *Spec) { s.Members = 30 }, "more than this host"},
		{func(s *Spec) { s.Memory = "2X" }, `memory "2X": unknown unit`},
		{func(s *Spec) { s.Memory = "0" }, "memory"},
		{func(s *Spec) { s.Memory = "-1G" }, "memory"},
		{func(s *Spec) { s.Memory = "64G" }, "exceeds this host"},
		{func(s *Spec) { s.Disk = "5G" }, "disk \"5G\": must be at least 10G"},
		{func(s *Spec) { s.PoolSize = "25G" }, "pool size \"25G\": must leave 8G"},
		{func(s *Spec) { s.PoolName = "Bad Pool" }, "pool name"},
		{func(s *Spec) { s.CloudInit = nil }, "cloud-init"},
		{func(s *Spec) { s.Provider = nil }, "provider: must be set"},
		{func(s *Spec) { s.CPUs = -2 }, "cpus -2"},
	}
	for _, c := range cases {
		s := validSpec()
		c.mut(&s)
		_, err := s.resolve(host())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want error containing %q, got %v", c.want, err)
		}
	}
}

func TestSpecSizesDownWithANotice(t *testing.T) {
	s := validSpec()
	s.CPUs = 8
	s.Members = 9
	r, err := s.resolve(HostResources{CPUs: 2, MemoryMiB: 16000, FreeDiskGiB: 80})
	if err != nil {
		t.Fatal(err)
	}
	if r.CPUs != 2 || r.MemoryMiB >= 2048 || r.MemoryMiB < minNodeMiB {
		t.Errorf("cpus %d memory %d", r.CPUs, r.MemoryMiB)
	}
	if len(r.Notices) != 2 {
		t.Errorf("notices = %v", r.Notices)
	}
	if r.MaxLaunch != 2 {
		t.Errorf("launch %d at once on 2 cores with 2-vCPU nodes, want 2", r.MaxLaunch)
	}
	if len(r.NodeNames) != 10 || r.NodeNames[0] != "CLUS1-00" || r.NodeNames[9] != "CLUS1-09" {
		t.Errorf("node names = %v", r.NodeNames)
	}
}

func TestExpectedRoles(t *testing.T) {
	for n, want := range map[int][2]int{1: {1, 0}, 2: {1, 1}, 3: {3, 0}, 4: {3, 1}, 5: {3, 2}, 7: {3, 2}} {
		v, s := ExpectedRoles(n)
		if v != want[0] || s != want[1] {
			t.Errorf("ExpectedRoles(%d) = %d, %d; want %v", n, v, s, want)
		}
	}
	ms := []api.ClusterMember{
		{ServerName: "a", Status: "Online", Roles: []string{"database-leader", "database"}},
		{ServerName: "b", Status: "Online", Roles: []string{"database-standby"}},
	}
	if ok, why := RolesSettled(ms, 2); !ok {
		t.Errorf("settled cluster judged unsettled: %s", why)
	}
	ms[1].Status = "Offline"
	if ok, _ := RolesSettled(ms, 2); ok {
		t.Error("offline member accepted")
	}
	ms[1].Status = "Online"
	ms[1].Roles = nil
	if ok, _ := RolesSettled(ms, 2); ok {
		t.Error("missing standby accepted")
	}
}

func TestUpRegistersCleanupBeforeLaunchAndRemovesEverythingOnError(t *testing.T) {
	dir := t.TempDir()
	fp := fakeprovider.New()
	fp.FailLaunch["CLUS1-02"] = errors.New("cloud-init failed on purpose")
	// Launches run concurrently: every one must see the record.
	var launches, withRecord atomic.Int32
	fp.OnLaunch = func(in provider.LaunchInput) {
		launches.Add(1)
		if _, err := os.Stat(filepath.Join(ClustersDir(dir), "CLUS1", "cluster.json")); err == nil {
			withRecord.Add(1)
		}
	}
	s := validSpec()
	s.Provider, s.StateDir = fp, dir
	_, err := Up(t.Context(), s)
	if err == nil || !strings.Contains(err.Error(), "bringing up CLUS1: launching CLUS1-02: cloud-init failed on purpose") {
		t.Fatalf("err = %v", err)
	}
	if launches.Load() == 0 || withRecord.Load() != launches.Load() {
		t.Errorf("%d of %d VM(s) launched before the cluster's record (its cleanup) existed", launches.Load()-withRecord.Load(), launches.Load())
	}
	if left := fp.Names(); len(left) != 0 {
		t.Errorf("VMs left after failed Up: %v", left)
	}
	for _, p := range []string{"CLUS1", "CLUS1.lock"} {
		if _, err := os.Stat(filepath.Join(ClustersDir(dir), p)); !os.IsNotExist(err) {
			t.Errorf("%s left after failed Up: %v", p, err)
		}
	}
	launched, deleted := map[string]bool{}, map[string]bool{}
	for _, c := range fp.Calls {
		if n, ok := strings.CutPrefix(c, "launch "); ok {
			launched[n] = true
		}
		if n, ok := strings.CutPrefix(c, "delete "); ok {
			if !launched[n] {
				t.Errorf("deleted %s before launching it: %v", n, fp.Calls)
			}
			deleted[n] = true
		}
	}
	for n := range launched {
		if !deleted[n] {
			t.Errorf("%s launched but never deleted: %v", n, fp.Calls)
		}
	}
}

func TestUpKeepsOnFailureWhenAsked(t *testing.T) {
	dir := t.TempDir()
	fp := fakeprovider.New()
	fp.FailLaunch["CLUS1-01"] = errors.New("boom")
	s := validSpec()
	s.Provider, s.StateDir, s.KeepOnFailure, s.Members = fp, dir, true, 1
	if _, err := Up(t.Context(), s); err == nil {
		t.Fatal("Up succeeded")
	}
	if _, err := fp.Info(t.Context(), "CLUS1-01"); err != nil {
		t.Errorf("keep-on-failure removed the failed VM: %v", err)
	}
	for _, c := range fp.Calls {
		if strings.HasPrefix(c, "delete") {
			t.Errorf("keep-on-failure deleted: %v", fp.Calls)
		}
	}
}

func TestUpRefusesAnExistingClusterAndBadInputBeforeAnyVM(t *testing.T) {
	fp := fakeprovider.New()
	fp.Add(provider.Info{Name: "CLUS1-00", Group: "CLUS1"})
	s := validSpec()
	s.Provider, s.StateDir = fp, t.TempDir()
	_, err := Up(t.Context(), s)
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("err = %v", err)
	}
	s.Name = "bad_name"
	_, err = Up(t.Context(), s)
	if err == nil || !strings.Contains(err.Error(), "cluster name") {
		t.Fatalf("err = %v", err)
	}
	for _, c := range fp.Calls {
		if strings.HasPrefix(c, "launch") {
			t.Errorf("a VM was launched: %v", fp.Calls)
		}
	}
}

func TestDownAndSweepMatchExactNames(t *testing.T) {
	dir := t.TempDir()
	fp := fakeprovider.New()
	for _, n := range []string{"CLUS1-00", "CLUS1-01", "CLUS10-00", "CLUS10-01"} {
		fp.Add(provider.Info{Name: n, Group: strings.Split(n, "-")[0]})
	}
	fp.Add(provider.Info{Name: "CLUS1-extra", Group: "other"})
	removed, err := Down(t.Context(), fp, dir, "CLUS1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(removed, ",") != "CLUS1-00,CLUS1-01" {
		t.Errorf("removed = %v", removed)
	}
	if got := strings.Join(fp.Names(), ","); got != "CLUS1-extra,CLUS10-00,CLUS10-01" {
		t.Errorf("left = %v", got)
	}

	// A dead owner's cluster is swept; a live or persistent one is not.
	for name, r := range map[string]record{
		"DEAD": {Name: "DEAD", Owner: 999999999},
		"LIVE": {Name: "LIVE", Owner: os.Getpid()},
		"KEPT": {Name: "KEPT", Owner: 999999999, Persistent: true, Ready: true},
		"HALF": {Name: "HALF", Owner: 999999999, Persistent: true},
	} {
		r.dir = filepath.Join(ClustersDir(dir), name)
		if err := r.save(); err != nil {
			t.Fatal(err)
		}
		fp.Add(provider.Info{Name: name + "-00", Group: name})
	}
	swept, err := SweepStale(t.Context(), fp, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(swept, ";")
	if !strings.Contains(joined, "DEAD (VMs: DEAD-00)") || !strings.Contains(joined, "HALF (VMs: HALF-00)") || strings.Contains(joined, "LIVE") || strings.Contains(joined, "KEPT") {
		t.Errorf("swept = %v", swept)
	}
	if _, err := os.Stat(filepath.Join(ClustersDir(dir), "DEAD")); !os.IsNotExist(err) {
		t.Error("DEAD's state survived the sweep")
	}
	for _, n := range []string{"LIVE-00", "KEPT-00", "CLUS10-00", "CLUS1-extra"} {
		if _, err := fp.Info(t.Context(), n); err != nil {
			t.Errorf("%s was swept: %v", n, err)
		}
	}
}

func TestSpecIntervalsComeFromBCMTEST_INTERVALS(t *testing.T) {
	t.Setenv(wait.EnvVar, "join=7m")
	s := validSpec()
	r, err := s.resolve(HostResources{FreeDiskGiB: -1})
	if err != nil {
		t.Fatal(err)
	}
	if r.Intervals.Join != 7*time.Minute || r.Intervals.Boot != wait.DefaultIntervals().Boot {
		t.Errorf("join %s, boot %s", r.Intervals.Join, r.Intervals.Boot)
	}
	s.Intervals = wait.Intervals{Boot: time.Minute}
	if r, _ := s.resolve(HostResources{FreeDiskGiB: -1}); r.Intervals.Boot != time.Minute || r.Intervals.Join != wait.DefaultIntervals().Join {
		t.Errorf("a partly set spec: boot %s, join %s", r.Intervals.Boot, r.Intervals.Join)
	}
	t.Setenv(wait.EnvVar, "join=soon")
	if err := validSpec().Validate(); err == nil || !strings.Contains(err.Error(), wait.EnvVar) {
		t.Errorf("a bad BCMTEST_INTERVALS: %v", err)
	}
}
