package faults

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/BitcoinCacheMachine/bcmtest/suites/framework"
)

var _ = Describe("faults with a workload", Ordered, Label("faults", "nightly", "workload"), func() {
	in := forEachSpec()

	It("starts a powered-off member's container again when the member returns, with its synced data intact", func(ctx SpecContext) {
		victim, survivor := in.pick(ctx)
		inst := framework.RunName("wlf")
		// Registered first, so it runs after the container and the image are deleted.
		DeferCleanup(func(ctx SpecContext) {
			framework.ExpectNoLeftoverDatasets(ctx, framework.ExpectNoLeftoverDatasetsInput{Cluster: in.Cluster, Containing: []string{inst}})
		})
		framework.ImportInstanceImage(ctx, framework.ImportInstanceImageInput{Cluster: in.Cluster, Alias: "bcm-workload"})
		// No network: the fault is the member's, the data is what counts.
		framework.LaunchInstances(ctx, framework.LaunchInstancesInput{Cluster: in.Cluster, Image: "bcm-workload",
			Instances: []framework.InstanceSpec{{Name: inst, Target: victim}}})
		token := "survives-power-off-" + inst
		framework.RunInInstance(ctx, GinkgoT(), framework.ExecInInstanceInput{Cluster: in.Cluster, Instance: inst,
			Argv: []string{"sh", "-c", "cat > /root/wl-data && sync"}, Stdin: token})

		Expect(in.Faults.PowerOff(ctx, victim)).To(Succeed())
		det := framework.WaitForMemberStatus(ctx, framework.WaitForMemberStatusInput{Cluster: in.Cluster, Via: survivor, Member: victim, Status: "Offline"},
			framework.GetIntervals("fault-detect")...)
		start := time.Now()
		Expect(in.Faults.Start(ctx, victim)).To(Succeed())
		framework.WaitForMemberStatus(ctx, framework.WaitForMemberStatusInput{Cluster: in.Cluster, Via: survivor, Member: victim, Status: "Online"},
			framework.GetIntervals("fault-recover")...)
		// LXD starts what was running when its member went down: the
		// container comes back by itself, on the same member.
		framework.WaitForInstance(ctx, framework.WaitForInstanceInput{Cluster: in.Cluster, Instance: inst, Status: "Running", Location: victim},
			framework.GetIntervals("fault-recover")...)
		in.Record(Measurement{Fault: "power-off with a container", Node: victim, Detection: det, Recovery: time.Since(start)})
		framework.ExpectInstanceOnZFS(ctx, framework.ExpectInstanceOnZFSInput{Cluster: in.Cluster, Instance: inst, Member: victim})
		got := framework.RunInInstance(ctx, GinkgoT(), framework.ExecInInstanceInput{Cluster: in.Cluster, Instance: inst, Argv: []string{"cat", "/root/wl-data"}})
		Expect(got).To(Equal(token), "the synced file in %s after %s was powered off and back", inst, victim)
		in.expectWhole(ctx)
	})
})
