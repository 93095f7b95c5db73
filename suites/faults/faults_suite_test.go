// Package faults is the fault-injection suite (label faults, nightly): a
// member powered off, the database leader powered off, a member's private
// link cut, a member paused past the heartbeat. Each spec measures the time
// to detection and to recovery. Run with `make faults` (BCMTEST_FAULTS=1).
package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	lxd "github.com/canonical/lxd/client"
	"github.com/canonical/lxd/shared/api"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/BitcoinCacheMachine/bcmtest/fixtures"
	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/diag"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/providers"
)

func TestFaults(t *testing.T) {
	if os.Getenv("BCMTEST_FAULTS") != "1" {
		t.Skip("powers VMs of a real cluster off and on; run with BCMTEST_FAULTS=1 (make faults)")
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, "BCM LXD cluster faults")
}

// Measurement is one fault's detection and recovery times.
type Measurement struct {
	Fault     string        `json:"fault"`
	Node      string        `json:"node"`
	Detection time.Duration `json:"detection_ns"`
	Recovery  time.Duration `json:"recovery_ns"`
}

var (
	bcm       *cluster.Cluster
	faults    provider.Faults
	mu        sync.Mutex
	measured  []Measurement
	artifacts string
)

func record(m Measurement) {
	mu.Lock()
	defer mu.Unlock()
	measured = append(measured, m)
	AddReportEntry(fmt.Sprintf("%s on %s", m.Fault, m.Node), fmt.Sprintf("detected in %s, recovered in %s", m.Detection.Round(time.Second), m.Recovery.Round(time.Second)))
	GinkgoWriter.Printf("FAULT %s on %s: detection %s, recovery %s\n", m.Fault, m.Node, m.Detection.Round(time.Second), m.Recovery.Round(time.Second))
}

var failed bool

var _ = ReportAfterEach(func(r SpecReport) {
	if r.Failed() {
		failed = true
	}
})

var _ = BeforeSuite(func(ctx SpecContext) {
	members := 2
	if v := os.Getenv("BCMTEST_MEMBERS"); v != "" {
		n, err := strconv.Atoi(v)
		Expect(err).NotTo(HaveOccurred(), "BCMTEST_MEMBERS=%q must be a number", v)
		members = n
	}
	Expect(members).To(BeNumerically(">=", 2), "the fault suite needs at least 2 members (three database members)")
	artifacts = os.Getenv("BCMTEST_ARTIFACTS")
	if artifacts == "" {
		artifacts = "artifacts"
	}
	artifacts = filepath.Join(artifacts, "faults-"+time.Now().UTC().Format("20060102-150405"))
	Expect(os.MkdirAll(artifacts, 0o755)).To(Succeed())

	p, err := providers.New(ctx, providers.Options{Log: GinkgoWriter})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(p.Close)
	f, ok := p.(provider.Faults)
	if !ok {
		Skip(fmt.Sprintf("provider %s cannot inject faults", p.Name()))
	}
	faults = f
	bcm, err = cluster.Up(ctx, cluster.Spec{
		Name: fmt.Sprintf("bcmflt%d", os.Getpid()%100000), Members: members, CPUs: 1, Memory: "1536M", Disk: "12G", PoolSize: "2G",
		CloudInit: fixtures.MustRead(fixtures.For(p.Name())), Provider: p, Log: GinkgoWriter,
	})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx SpecContext) { Expect(bcm.Destroy(ctx)).To(Succeed()) }, NodeTimeout(5*time.Minute))
	DeferCleanup(func() {
		b, _ := json.MarshalIndent(measured, "", "  ")
		os.WriteFile(filepath.Join(artifacts, "faults.json"), b, 0o644)
	})
	// Registered after teardown, so it runs first: logs before teardown.
	DeferCleanup(func(ctx SpecContext) {
		if !failed {
			return
		}
		var nodes []string
		for _, m := range bcm.Members() {
			nodes = append(nodes, m.Name)
		}
		diag.Collect(ctx, diag.CollectInput{Provider: p, Nodes: nodes, Dir: artifacts, Log: GinkgoWriter})
	}, NodeTimeout(5*time.Minute))
}, NodeTimeout(60*time.Minute))

// members reads the member list through survivor's own API.
func members(survivor string) ([]api.ClusterMember, error) {
	s, err := bcm.LXDOn(survivor)
	if err != nil {
		return nil, err
	}
	return s.GetClusterMembers()
}

// statusOf polls until victim has status as seen from survivor.
func waitStatus(ctx context.Context, survivor, victim, status string, timeout time.Duration) time.Duration {
	GinkgoHelper()
	start := time.Now()
	Eventually(func() (string, error) {
		ms, err := members(survivor)
		if err != nil {
			return "", err
		}
		for _, m := range ms {
			if m.ServerName == victim {
				return m.Status, nil
			}
		}
		return "missing", nil
	}).WithContext(ctx).WithTimeout(timeout).WithPolling(time.Second).Should(Equal(status), "%s seen from %s", victim, survivor)
	return time.Since(start)
}

func leader(survivor string) string {
	GinkgoHelper()
	ms, err := members(survivor)
	Expect(err).NotTo(HaveOccurred())
	for _, m := range ms {
		for _, r := range m.Roles {
			if r == "database-leader" {
				return m.ServerName
			}
		}
	}
	return ""
}

// pick returns a node that is not the leader and one survivor besides it.
func pick() (victim, survivor string) {
	GinkgoHelper()
	l := leader(bcm.Members()[0].Name)
	var others []string
	for _, m := range bcm.Members() {
		if m.Name != l {
			others = append(others, m.Name)
		}
	}
	Expect(len(others)).To(BeNumerically(">=", 2))
	return others[len(others)-1], l
}

func poolOnline(ctx context.Context, node string) {
	GinkgoHelper()
	n, err := bcm.Node(node)
	Expect(err).NotTo(HaveOccurred())
	Eventually(func() (string, error) {
		return n.Exec(ctx, "zpool", "list", "-H", "-o", "name,health", bcm.Spec().PoolName)
	}).WithContext(ctx).WithTimeout(2 * time.Minute).Should(ContainSubstring("ONLINE"))
}

func writable(ctx context.Context, via string) {
	GinkgoHelper()
	s, err := bcm.LXDOn(via)
	Expect(err).NotTo(HaveOccurred())
	vol := fmt.Sprintf("flt%d", time.Now().UnixNano()%1e9)
	var target lxd.InstanceServer = s.UseTarget(via)
	Eventually(func() error {
		return target.CreateStoragePoolVolume(bcm.Spec().PoolName, api.StorageVolumesPost{Name: vol, Type: "custom"})
	}).WithContext(ctx).WithTimeout(2*time.Minute).Should(Succeed(), "creating a volume through %s", via)
	Expect(target.DeleteStoragePoolVolume(bcm.Spec().PoolName, "custom", vol)).To(Succeed())
}
