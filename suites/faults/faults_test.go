package faults

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// LXD marks a member Offline after cluster.offline_threshold (20 s by
// default) without heartbeats; detection is allowed a generous multiple of
// that under software emulation.
const (
	detectWithin  = 3 * time.Minute
	recoverWithin = 8 * time.Minute
)

var _ = Describe("faults", Ordered, Label("faults", "nightly"), func() {
	It("reports a powered-off member Offline, keeps answering, and takes it back Online with its pool ONLINE", func(ctx SpecContext) {
		victim, survivor := pick()
		Expect(faults.PowerOff(ctx, victim)).To(Succeed())
		det := waitStatus(ctx, survivor, victim, "Offline", detectWithin)
		_, err := members(survivor)
		Expect(err).NotTo(HaveOccurred(), "the cluster API stopped answering")
		start := time.Now()
		Expect(bcm.Provider().Start(ctx, victim)).To(Succeed())
		waitStatus(ctx, survivor, victim, "Online", recoverWithin)
		poolOnline(ctx, victim)
		record(Measurement{Fault: "power-off", Node: victim, Detection: det, Recovery: time.Since(start)})
	})

	It("elects a new database leader when the leader is powered off, stays writable, and takes the old leader back", func(ctx SpecContext) {
		_, oldLeader := pick()
		var survivor string
		for _, m := range bcm.Members() {
			if m.Name != oldLeader {
				survivor = m.Name
				break
			}
		}
		Expect(faults.PowerOff(ctx, oldLeader)).To(Succeed())
		start := time.Now()
		Eventually(func() string {
			l := ""
			func() {
				defer func() { recover() }()
				l = leader(survivor)
			}()
			return l
		}).WithContext(ctx).WithTimeout(detectWithin).WithPolling(time.Second).ShouldNot(Or(BeEmpty(), Equal(oldLeader)))
		det := time.Since(start)
		writable(ctx, survivor)
		start = time.Now()
		Expect(bcm.Provider().Start(ctx, oldLeader)).To(Succeed())
		waitStatus(ctx, survivor, oldLeader, "Online", recoverWithin)
		record(Measurement{Fault: "leader power-off", Node: oldLeader, Detection: det, Recovery: time.Since(start)})
	})

	It("reports a member whose private link is cut Offline, and takes it back when the link returns", func(ctx SpecContext) {
		victim, survivor := pick()
		Expect(faults.SetPrivateLink(ctx, victim, false)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { faults.SetPrivateLink(ctx, victim, true) })
		det := waitStatus(ctx, survivor, victim, "Offline", detectWithin)
		start := time.Now()
		Expect(faults.SetPrivateLink(ctx, victim, true)).To(Succeed())
		waitStatus(ctx, survivor, victim, "Online", recoverWithin)
		record(Measurement{Fault: "link cut", Node: victim, Detection: det, Recovery: time.Since(start)})
	})

	It("reports a member paused past the heartbeat Offline, and takes it back when resumed", func(ctx SpecContext) {
		victim, survivor := pick()
		Expect(faults.Pause(ctx, victim)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { faults.Resume(ctx, victim) })
		det := waitStatus(ctx, survivor, victim, "Offline", detectWithin)
		start := time.Now()
		Expect(faults.Resume(ctx, victim)).To(Succeed())
		waitStatus(ctx, survivor, victim, "Online", recoverWithin)
		record(Measurement{Fault: "pause", Node: victim, Detection: det, Recovery: time.Since(start)})
	})
})
