package faults

import (
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/BitcoinCacheMachine/bcmtest/suites/framework"
)

// Detection waits fault-detect (LXD marks a member Offline after
// cluster.offline_threshold, 20 s by default; the interval allows a
// generous multiple under software emulation), recovery fault-recover.
var _ = Describe("faults", Ordered, Label("faults", "nightly"), func() {
	in := forEachSpec()
	status := func(via, member, status string) framework.WaitForMemberStatusInput {
		return framework.WaitForMemberStatusInput{Cluster: in.Cluster, Via: via, Member: member, Status: status}
	}

	It("reports a powered-off member Offline, keeps answering, and takes it back Online with its pool ONLINE", func(ctx SpecContext) {
		victim, survivor := in.pick(ctx)
		Expect(in.Faults.PowerOff(ctx, victim)).To(Succeed())
		det := framework.WaitForMemberStatus(ctx, status(survivor, victim, "Offline"), framework.GetIntervals("fault-detect")...)
		_, err := framework.MembersE(ctx, GinkgoT(), framework.MembersInput{Cluster: in.Cluster, Via: survivor})
		Expect(err).NotTo(HaveOccurred(), "the cluster API stopped answering")
		start := time.Now()
		Expect(in.Faults.Start(ctx, victim)).To(Succeed())
		framework.WaitForMemberStatus(ctx, status(survivor, victim, "Online"), framework.GetIntervals("fault-recover")...)
		framework.WaitForPoolOnline(ctx, framework.WaitForPoolOnlineInput{Cluster: in.Cluster, Node: victim})
		in.Record(Measurement{Fault: "power-off", Node: victim, Detection: det, Recovery: time.Since(start)})
		in.expectWhole(ctx)
	})

	It("elects a new database leader when the leader is powered off, stays writable, and takes the old leader back", func(ctx SpecContext) {
		_, oldLeader := in.pick(ctx)
		var survivor string
		for _, m := range in.Members {
			if m != oldLeader {
				survivor = m
				break
			}
		}
		Expect(in.Faults.PowerOff(ctx, oldLeader)).To(Succeed())
		start := time.Now()
		framework.WaitForNewLeader(ctx, framework.WaitForNewLeaderInput{Cluster: in.Cluster, Via: survivor, Old: oldLeader},
			framework.GetIntervals("fault-detect")...)
		det := time.Since(start)
		framework.ExpectWritable(ctx, framework.ExpectWritableInput{Cluster: in.Cluster, Via: survivor})
		start = time.Now()
		Expect(in.Faults.Start(ctx, oldLeader)).To(Succeed())
		framework.WaitForMemberStatus(ctx, status(survivor, oldLeader, "Online"), framework.GetIntervals("fault-recover")...)
		in.Record(Measurement{Fault: "leader power-off", Node: oldLeader, Detection: det, Recovery: time.Since(start)})
		in.expectWhole(ctx)
	})

	It("reports a member whose private link is cut Offline, and takes it back when the link returns", func(ctx SpecContext) {
		victim, survivor := in.pick(ctx)
		Expect(in.Faults.SetPrivateLink(ctx, victim, false)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { in.Faults.SetPrivateLink(ctx, victim, true) })
		det := framework.WaitForMemberStatus(ctx, status(survivor, victim, "Offline"), framework.GetIntervals("fault-detect")...)
		start := time.Now()
		Expect(in.Faults.SetPrivateLink(ctx, victim, true)).To(Succeed())
		framework.WaitForMemberStatus(ctx, status(survivor, victim, "Online"), framework.GetIntervals("fault-recover")...)
		in.Record(Measurement{Fault: "link cut", Node: victim, Detection: det, Recovery: time.Since(start)})
		in.expectWhole(ctx)
	})

	It("reports a member paused past the heartbeat Offline, and takes it back when resumed", func(ctx SpecContext) {
		victim, survivor := in.pick(ctx)
		Expect(in.Faults.Pause(ctx, victim)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { in.Faults.Resume(ctx, victim) })
		det := framework.WaitForMemberStatus(ctx, status(survivor, victim, "Offline"), framework.GetIntervals("fault-detect")...)
		start := time.Now()
		Expect(in.Faults.Resume(ctx, victim)).To(Succeed())
		framework.WaitForMemberStatus(ctx, status(survivor, victim, "Online"), framework.GetIntervals("fault-recover")...)
		in.Record(Measurement{Fault: "pause", Node: victim, Detection: det, Recovery: time.Since(start)})
		// Its clock stood still while it was paused; left behind, the
		// cluster would take its heartbeats for stale once it leads.
		guest, err := strconv.ParseFloat(strings.TrimSpace(in.run(ctx, victim, "date +%s.%N")), 64)
		Expect(err).NotTo(HaveOccurred())
		Expect(time.Since(time.Unix(0, int64(guest*1e9)))).To(BeNumerically("~", 0, 5*time.Second), "the clock of %s after it was resumed", victim)
		in.expectWhole(ctx)
	})
})
