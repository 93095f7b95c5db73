package integration

import (
	"context"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/BitcoinCacheMachine/bcmtest/fixtures"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
	"github.com/BitcoinCacheMachine/bcmtest/suites/framework"
)

// Where it runs: `make integration` (label current-snapshot), about 15
// minutes: three snapshots made anew and three BCM nodes. Not in CI.
var _ = Describe("snapshots that stay current", Label("current-snapshot"), Ordered, func() {
	var dirs state.Dirs
	BeforeAll(func() {
		real, err := state.Default()
		Expect(err).NotTo(HaveOccurred())
		// Every snapshot here is made anew.
		dirs = state.Dirs{State: real.State, Cache: scratchCache(real)}
	})

	// bcmNode launches one node with BCM's file from a snapshot made with
	// sim, and returns its provider and what cloud-final's package_upgrade
	// upgraded (apt's history since cloud-final started).
	bcmNode := func(ctx context.Context, prefix string, sim qemu.SimulatedUpdate) (*qemu.Provider, string, []string) {
		p, err := qemu.New(qemu.Config{Dirs: dirs, Log: GinkgoWriter, Simulate: sim})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(p.Close)
		name := runID(prefix)
		// A launch that fails removes what it made; one that succeeds is
		// removed with the spec.
		_, err = p.Launch(ctx, provider.LaunchInput{Name: name, CPUs: framework.NodeCPUs, MemoryMiB: framework.NodeMemoryMiB, DiskGiB: 12,
			UserData: fixtures.MustRead(fixtures.BCMDebian)})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) { Expect(p.Delete(ctx, name)).To(Succeed()) }, NodeTimeout(2*time.Minute))
		snap, err := p.SnapshotOf(name)
		Expect(err).NotTo(HaveOccurred())
		Expect(snap).NotTo(BeEmpty(), "%s booted cold", name)

		final, err := provider.Run(ctx, p, name, "systemctl", "show", "-p", "ExecMainStartTimestamp", "--value", "cloud-final.service")
		Expect(err).NotTo(HaveOccurred())
		since, err := framework.SystemdTime(final)
		Expect(err).NotTo(HaveOccurred(), "cloud-final's start on %s", name)
		// No history.log at all: apt never ran dpkg in this node.
		history, err := provider.Run(ctx, p, name, "sh", "-c", "cat /var/log/apt/history.log 2>/dev/null || true")
		Expect(err).NotTo(HaveOccurred())
		upgrades := framework.AptUpgrades(history, since)
		AddReportEntry(name+": cloud-final upgraded", strings.Join(upgrades, "; "))
		return p, name, upgrades
	}

	snapshotOf := func(p *qemu.Provider, name string) qemu.SnapshotInfo {
		key, err := p.SnapshotOf(name)
		Expect(err).NotTo(HaveOccurred())
		snaps, err := p.Snapshots()
		Expect(err).NotTo(HaveOccurred())
		for _, s := range snaps {
			if s.Key == key {
				return s
			}
		}
		Fail("snapshot " + key + " of " + name + " is not in the cache")
		return qemu.SnapshotInfo{}
	}

	It("upgrades nothing in cloud-final on a node of the current snapshot", func(ctx SpecContext) {
		_, _, upgrades := bcmNode(ctx, "cur", qemu.SimulatedUpdate{})
		Expect(upgrades).To(BeEmpty(), "package_upgrade upgraded packages on a node of the current snapshot")
	}, NodeTimeout(20*time.Minute))

	It("upgrades the updated packages in every node of a snapshot made before the update", func(ctx SpecContext) {
		_, _, upgrades := bcmNode(ctx, "stl", qemu.SimulatedUpdate{Packages: framework.SimulatedUpdate, Stale: true})
		for _, pkg := range framework.SimulatedUpdate {
			Expect(upgrades).To(ContainElement(And(HavePrefix(pkg+":"), ContainSubstring("~bcmtestaged, "))),
				"cloud-final did not upgrade %s on a node of the stale snapshot", pkg)
		}
	}, NodeTimeout(20*time.Minute))

	It("upgrades them once in the template instead, so its nodes upgrade nothing, with the kernel and ZFS held", func(ctx SpecContext) {
		p, name, upgrades := bcmNode(ctx, "upg", qemu.SimulatedUpdate{Packages: framework.SimulatedUpdate})
		Expect(upgrades).To(BeEmpty(), "package_upgrade upgraded packages on a node of the upgraded snapshot")
		snap := snapshotOf(p, name)
		Expect(snap.Manifest.Upgrade).NotTo(BeNil(), "snapshot %s has no upgrade record", snap.Key)
		AddReportEntry("upgrade boot", snap.Manifest.Upgrade)
		for _, pkg := range framework.SimulatedUpdate {
			Expect(snap.Manifest.Upgrade.Names).To(ContainElement(HavePrefix(pkg+" ")), "the template did not upgrade %s", pkg)
			v, err := provider.Run(ctx, p, name, "dpkg-query", "-W", "-f", "${Version}", pkg)
			Expect(err).NotTo(HaveOccurred())
			Expect(v).NotTo(ContainSubstring("bcmtestaged"), "%s on %s", pkg, name)
		}
		held, err := provider.Run(ctx, p, name, "apt-mark", "showhold")
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.Fields(held)).To(ContainElements("linux-image-amd64", "zfs-dkms", "zfsutils-linux"))
		// The upgrade boot's policy-rc.d (no service starts) is not left
		// to the node.
		out, err := provider.Run(ctx, p, name, "sh", "-c", "test -e /usr/sbin/policy-rc.d && echo left || echo gone")
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.TrimSpace(out)).To(Equal("gone"), "policy-rc.d left in the node")
	}, NodeTimeout(25*time.Minute))
})
