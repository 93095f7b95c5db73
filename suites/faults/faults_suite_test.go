// Package faults is the fault-injection suite (label faults, nightly): a
// member powered off, the database leader powered off, a member's private
// link cut, a member paused past the heartbeat; members added and removed
// under load, LXD killed, a clock an hour ahead, a full pool. Each spec
// measures the time to detection and to recovery. Run with `make faults` (BCMTEST_FAULTS=1).
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

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/BitcoinCacheMachine/bcmtest/fixtures"
	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/diag"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/providers"
	"github.com/BitcoinCacheMachine/bcmtest/suites/framework"
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
	size      int // joining members
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
	size = members
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
		Name: framework.RunName("bcmflt"), Members: members, CPUs: framework.NodeCPUs, Memory: framework.NodeMemory, Disk: "12G", PoolSize: "2G",
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
		nodes := memberNames(bcm)
		diag.Collect(ctx, diag.CollectInput{Provider: p, Nodes: nodes, Dir: artifacts, Log: GinkgoWriter})
	}, NodeTimeout(5*time.Minute))
	// LXD's heartbeat lateness during the run, from the members' logs.
	DeferCleanup(func(ctx SpecContext) {
		framework.RecordHeartbeats(ctx, framework.RecordHeartbeatsInput{Cluster: bcm, Dir: artifacts})
	}, NodeTimeout(5*time.Minute))
	// Registered last, so it runs first: every node's kernel is checked
	// while the nodes are there, and a finding counts as a failed run.
	DeferCleanup(func(ctx SpecContext) {
		framework.CheckKernelsAtTeardown(ctx, framework.TeardownKernelCheckInput{
			KernelHealthInput: framework.KernelHealthInput{Provider: p, Nodes: memberNames(bcm)},
			Dir:               artifacts, OnFindings: func() { failed = true }})
	}, NodeTimeout(5*time.Minute))
}, NodeTimeout(60*time.Minute))

// specInput is what a fault spec needs, handed to it before each spec
// instead of read from the suite's globals in its body.
type specInput struct {
	Cluster *cluster.Cluster
	Members []string // every member as the spec starts
	Faults  provider.Faults
	// Record keeps one fault's measurement for the report and faults.json.
	Record func(Measurement)
}

// forEachSpec returns the input, filled before each spec of a Describe.
func forEachSpec() *specInput {
	in := &specInput{}
	BeforeEach(func() {
		*in = specInput{Cluster: bcm, Members: memberNames(bcm), Faults: faults, Record: record}
	})
	return in
}

// memberNames are the cluster's members now: the membership specs grow
// and shrink it, so they are not always NAME-00..NN.
func memberNames(c *cluster.Cluster) []string {
	var out []string
	for _, m := range c.Members() {
		out = append(out, m.Name)
	}
	return out
}

// pick returns a node that is not the database leader (the victim) and
// the leader (a survivor that sees it).
func (in *specInput) pick(ctx context.Context) (victim, leader string) {
	GinkgoHelper()
	leader = framework.DatabaseLeader(ctx, GinkgoT(), framework.MembersInput{Cluster: in.Cluster, Via: in.Members[0]})
	Expect(leader).NotTo(BeEmpty(), "no database leader before the fault")
	var others []string
	for _, m := range in.Members {
		if m != leader {
			others = append(others, m)
		}
	}
	Expect(len(others)).To(BeNumerically(">=", 2))
	return others[len(others)-1], leader
}

// expectWhole checks the cluster is whole again after a fault: every
// member Online with its pool Created.
func (in *specInput) expectWhole(ctx context.Context) {
	GinkgoHelper()
	framework.ExpectMembersOnlineOnZFS(ctx, framework.ExpectMembersOnlineOnZFSInput{Cluster: in.Cluster, Members: in.Members},
		framework.GetIntervals("fault-recover")...)
}
