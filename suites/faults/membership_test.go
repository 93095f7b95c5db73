package faults

import (
	"context"
	"slices"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/suites/framework"
)

// workload is a container with a synced file, made before a fault and
// checked after recovery.
type workload struct {
	in    *specInput
	name  string
	token string
}

// startWorkload imports the workload image, launches a container on
// target and writes a token to a file in it, synced to its ZFS dataset.
// The container is deleted at the spec's cleanup.
func (in *specInput) startWorkload(ctx context.Context, target, fault string) workload {
	GinkgoHelper()
	w := workload{in: in, name: framework.RunName("wlf")}
	framework.ImportInstanceImage(ctx, framework.ImportInstanceImageInput{Cluster: in.Cluster, Alias: "bcm-workload"})
	framework.LaunchInstances(ctx, framework.LaunchInstancesInput{Cluster: in.Cluster, Image: "bcm-workload",
		Instances: []framework.InstanceSpec{{Name: w.name, Target: target}}})
	w.token = "survives-" + fault + "-" + w.name
	framework.RunInInstance(ctx, GinkgoT(), framework.ExecInInstanceInput{Cluster: in.Cluster, Instance: w.name,
		Argv: []string{"sh", "-c", "cat > /root/wl-data && sync"}, Stdin: w.token})
	return w
}

// expectIntact checks the container runs (on location, unless "") and
// its synced file holds the token written before the fault.
func (w workload) expectIntact(ctx context.Context, location string) {
	GinkgoHelper()
	framework.WaitForInstance(ctx, framework.WaitForInstanceInput{Cluster: w.in.Cluster, Instance: w.name, Status: "Running", Location: location},
		framework.GetIntervals("fault-recover")...)
	got := framework.RunInInstance(ctx, GinkgoT(), framework.ExecInInstanceInput{Cluster: w.in.Cluster, Instance: w.name, Argv: []string{"cat", "/root/wl-data"}})
	Expect(got).To(Equal(w.token), "the synced file in %s", w.name)
}

// expectWholeWith checks the cluster lists exactly members, every one
// Online with its pool, the database roles filled, through every member.
func (in *specInput) expectWholeWith(ctx context.Context, members []string) time.Duration {
	GinkgoHelper()
	Expect(memberNames(in.Cluster)).To(ConsistOf(members), "the harness's members")
	took := framework.WaitForRolesFilled(ctx, framework.WaitForRolesFilledInput{Cluster: in.Cluster, Via: members[0], Members: len(members)},
		framework.GetIntervals("fault-recover")...)
	framework.ExpectMembersOnlineOnZFS(ctx, framework.ExpectMembersOnlineOnZFSInput{Cluster: in.Cluster, Members: members},
		framework.GetIntervals("fault-recover")...)
	return took
}

// The cluster changes under load: a member added while a container is
// created elsewhere, a non-leader and then the leader removed while a
// container runs; the last spec grows the cluster back to its size, so
// the specs of other containers find it as the suite made it (their
// names may differ: see memberNames).
var _ = Describe("faults on a changing cluster", Ordered, Label("faults", "nightly", "membership"), func() {
	in := forEachSpec()

	It("grows by one member while a container is created on another, and the workload's data survives", func(ctx SpecContext) {
		leader := framework.DatabaseLeader(ctx, GinkgoT(), framework.MembersInput{Cluster: in.Cluster, Via: in.Members[0]})
		wl := in.startWorkload(ctx, leader, "grow")
		var other string
		for _, m := range in.Members {
			if m != leader {
				other = m
			}
		}
		// The Grow runs beside the create; a failed create still waits for
		// it at cleanup, so no VM is left half-joined.
		var wg sync.WaitGroup
		DeferCleanup(wg.Wait)
		var added []cluster.Member
		var growErr error
		start := time.Now()
		wg.Add(1)
		go func() {
			defer wg.Done()
			added, growErr = in.Cluster.Grow(ctx, cluster.GrowInput{Members: 1})
		}()
		created := framework.RunName("wlc")
		framework.LaunchInstances(ctx, framework.LaunchInstancesInput{Cluster: in.Cluster, Image: "bcm-workload",
			Instances: []framework.InstanceSpec{{Name: created, Target: other}}})
		wg.Wait()
		Expect(growErr).NotTo(HaveOccurred(), "growing %s while creating %s on %s", in.Cluster.Name(), created, other)
		Expect(added).To(HaveLen(1))
		joined := in.Cluster.Timings().Formed
		in.Record(Measurement{Fault: "grow under a create", Node: added[0].Name, Detection: joined, Recovery: time.Since(start)})
		in.expectWholeWith(ctx, append(slices.Clone(in.Members), added[0].Name))
		framework.WaitForInstance(ctx, framework.WaitForInstanceInput{Cluster: in.Cluster, Instance: created, Status: "Running", Location: other})
		wl.expectIntact(ctx, leader)
	})

	It("shrinks a non-leader member while a container runs on another, and the workload's data survives", func(ctx SpecContext) {
		victim, leader := in.pick(ctx)
		wl := in.startWorkload(ctx, leader, "shrink")
		start := time.Now()
		Expect(in.Cluster.Shrink(ctx, cluster.ShrinkInput{Member: victim})).To(Succeed())
		gone := time.Since(start)
		rest := slices.DeleteFunc(slices.Clone(in.Members), func(m string) bool { return m == victim })
		in.expectWholeWith(ctx, rest)
		in.Record(Measurement{Fault: "shrink a non-leader", Node: victim, Detection: gone, Recovery: time.Since(start)})
		wl.expectIntact(ctx, leader)
	})

	It("shrinks the database leader: its roles move to the others, the workload's data survives, and the cluster grows back", func(ctx SpecContext) {
		victim, oldLeader := in.pick(ctx)
		wl := in.startWorkload(ctx, victim, "shrink-leader") // not on the leader
		start := time.Now()
		Expect(in.Cluster.Shrink(ctx, cluster.ShrinkInput{Member: oldLeader})).To(Succeed())
		rest := slices.DeleteFunc(slices.Clone(in.Members), func(m string) bool { return m == oldLeader })
		newLeader := framework.WaitForNewLeader(ctx, framework.WaitForNewLeaderInput{Cluster: in.Cluster, Via: rest[0], Old: oldLeader},
			framework.GetIntervals("fault-detect")...)
		moved := time.Since(start)
		Expect(rest).To(ContainElement(newLeader))
		in.expectWholeWith(ctx, rest)
		framework.ExpectWritable(ctx, framework.ExpectWritableInput{Cluster: in.Cluster, Via: newLeader})
		in.Record(Measurement{Fault: "shrink the leader", Node: oldLeader, Detection: moved, Recovery: time.Since(start)})
		wl.expectIntact(ctx, victim)

		// Back to the suite's size for the specs that follow.
		added, err := in.Cluster.Grow(ctx, cluster.GrowInput{Members: 1})
		Expect(err).NotTo(HaveOccurred())
		in.expectWholeWith(ctx, append(rest, added[0].Name))
		wl.expectIntact(ctx, victim)
	})
})
