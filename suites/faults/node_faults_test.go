package faults

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/canonical/lxd/shared/api"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	lxdops "github.com/BitcoinCacheMachine/bcmtest/harness/workload"
	"github.com/BitcoinCacheMachine/bcmtest/suites/framework"
)

// inventory is what the cluster holds that a fault must not lose: the
// instances and the custom storage volumes, by name.
func (in *specInput) inventory(ctx context.Context, via string) (instances, volumes []string) {
	GinkgoHelper()
	s, err := in.Cluster.LXDOn(ctx, via)
	Expect(err).NotTo(HaveOccurred())
	insts, err := s.GetInstances(api.InstanceTypeAny)
	Expect(err).NotTo(HaveOccurred(), "listing instances through %s", via)
	for _, i := range insts {
		instances = append(instances, i.Name)
	}
	vols, err := s.GetStoragePoolVolumes(in.Cluster.Spec().PoolName)
	Expect(err).NotTo(HaveOccurred(), "listing volumes through %s", via)
	for _, v := range vols {
		if v.Type == "custom" {
			volumes = append(volumes, v.Location+"/"+v.Name)
		}
	}
	slices.Sort(instances)
	slices.Sort(volumes)
	return instances, volumes
}

// run runs a shell script on a node as root.
func (in *specInput) run(ctx context.Context, node, script string) string {
	GinkgoHelper()
	return framework.Run(ctx, GinkgoT(), framework.NodeOf(in.Cluster, node), "sh", "-c", script)
}

// killLXD is the daemon's SIGKILL: its main process only, as a crash
// would end it; the containers' monitors live on.
const killLXD = `pid=$(systemctl show -p MainPID --value lxd.service); [ "$pid" -gt 0 ] && kill -KILL "$pid" && echo "$pid"`

// fillPool makes dataset %[2]s reserve every byte of pool %[1]s that ZFS
// lets a reservation take, and prints what is left available. A
// reservation of the whole "available" is refused (the dataset's own
// metadata needs a little of it: "out of space" in the first run), so the
// largest accepted one is searched for, to 4 KiB.
const fillPool = `set -e
zfs create -o mountpoint=none %[2]s
lo=0 hi=$(zfs get -Hp -o value available %[1]s)
while [ $((hi - lo)) -gt 4096 ]; do
  mid=$(( (lo + hi) / 2 ))
  if zfs set refreservation=$mid %[2]s 2>/dev/null; then lo=$mid; else hi=$mid; fi
done
zfs set refreservation=$lo %[2]s
zfs get -Hp -o value available %[1]s`

var _ = Describe("faults of one node", Ordered, ContinueOnFailure, Label("faults", "nightly", "node-faults"), func() {
	in := forEachSpec()

	for _, role := range []string{"leader", "member"} {
		It(fmt.Sprintf("recovers when LXD is SIGKILLed on the %s while an operation runs there, and loses no instance or volume", role), func(ctx SpecContext) {
			member, leader := in.pick(ctx)
			victim, survivor := member, leader
			if role == "leader" {
				victim, survivor = leader, member
			}
			wl := in.startWorkload(ctx, victim, "sigkill-"+role)
			volume := framework.RunName("vol")
			s, err := in.Cluster.LXDOn(ctx, survivor)
			Expect(err).NotTo(HaveOccurred())
			Expect(s.UseTarget(victim).CreateStoragePoolVolume(in.Cluster.Spec().PoolName, api.StorageVolumesPost{Name: volume, Type: "custom"})).To(Succeed())
			DeferCleanup(func(ctx SpecContext) {
				s, err := in.Cluster.LXDOn(ctx, survivor)
				if err == nil {
					s.UseTarget(victim).DeleteStoragePoolVolume(in.Cluster.Spec().PoolName, "custom", volume)
				}
			})
			instances, volumes := in.inventory(ctx, survivor)

			// The operation: a command running in the workload on the victim,
			// asked through the survivor; it lasts until LXD dies under it.
			op, err := s.ExecInstance(wl.name, api.InstanceExecPost{Command: []string{"sleep", "600"}}, nil)
			Expect(err).NotTo(HaveOccurred(), "starting a command in %s on %s", wl.name, victim)
			id := op.Get().ID

			pid := in.run(ctx, victim, killLXD)
			start := time.Now()
			GinkgoWriter.Printf("killed LXD (pid %s) on %s\n", strings.TrimSpace(pid), victim)
			// Detected: the survivor, asked about the operation (its wait
			// endpoint, forwarded to the member that runs it), no longer
			// reports it running: the member does not answer, or a daemon
			// started again knows nothing of it. The client's own Wait
			// listens on the event feed, where a killed daemon's operation
			// never ends (seen in the first run of this spec).
			asked := lxdops.WithContext(ctx, s)
			var seen string
			Eventually(func(g Gomega) {
				got, _, err := asked.GetOperationWait(id, 1)
				if err == nil {
					g.Expect(got.StatusCode.IsFinal()).To(BeTrue(), "operation %s is still %s", id, got.Status)
					seen = got.Status + ": " + got.Err
					return
				}
				seen = err.Error()
			}, framework.GetIntervals("fault-detect")...).WithContext(ctx).Should(Succeed(),
				"the command's operation on %s after LXD was killed there", victim)
			det := time.Since(start)
			GinkgoWriter.Printf("the in-flight operation, asked through %s after %s: %s\n", survivor, det.Round(time.Second), seen)
			// systemd may have restarted it already; starting it is then a no-op.
			in.run(ctx, victim, "systemctl start lxd.service && lxd waitready --timeout=300")
			framework.WaitForMemberStatus(ctx, framework.WaitForMemberStatusInput{Cluster: in.Cluster, Via: survivor, Member: victim, Status: "Online"},
				framework.GetIntervals("fault-recover")...)
			// The operation never comes back as running: LXD knows it no
			// more, or knows it ended in failure.
			iv := framework.Intervals().FaultRecover
			wctx, cancel := context.WithTimeout(ctx, iv.Timeout)
			defer cancel()
			_, err = lxdops.WaitOperation(wctx, s, id, iv.Poll)
			var gone *lxdops.OperationGoneError
			var failed *lxdops.OperationFailedError
			Expect(errors.As(err, &gone) || errors.As(err, &failed)).To(BeTrue(),
				"the command's operation on %s after LXD came back: want it gone or failed, got %v", victim, err)
			in.expectWholeWith(ctx, in.Members)
			in.Record(Measurement{Fault: "LXD SIGKILL on the " + role, Node: victim, Detection: det, Recovery: time.Since(start)})

			gotInstances, gotVolumes := in.inventory(ctx, survivor)
			Expect(gotVolumes).To(Equal(volumes), "custom volumes after LXD was killed on %s", victim)
			for _, i := range instances {
				Expect(gotInstances).To(ContainElement(i), "instance %s after LXD was killed on %s", i, victim)
			}
			wl.expectIntact(ctx, victim)
		})
	}

	It("keeps a member whose clock is an hour ahead answering with valid certificates, stamps its operations with its clock, and recovers when the clock returns", func(ctx SpecContext) {
		victim, leader := in.pick(ctx)
		wl := in.startWorkload(ctx, victim, "clock")
		// Time sync off, then the clock an hour ahead.
		in.run(ctx, victim, "timedatectl set-ntp false 2>/dev/null || true; systemctl stop systemd-timesyncd.service chrony.service 2>/dev/null || true; date -s @$(( $(date +%s) + 3600 ))")
		DeferCleanup(func(ctx SpecContext) {
			framework.RunE(ctx, GinkgoT(), framework.NodeOf(in.Cluster, victim), "sh", "-c", fmt.Sprintf("date -s @%d", time.Now().Unix()))
		})
		start := time.Now()
		guest, err := strconv.ParseInt(strings.TrimSpace(in.run(ctx, victim, "date +%s")), 10, 64)
		Expect(err).NotTo(HaveOccurred())
		Expect(time.Unix(guest, 0).Sub(time.Now())).To(BeNumerically("~", time.Hour, 2*time.Minute), "the guest clock of %s", victim)

		// Heartbeats: the leader stamps them with its own clock and judges
		// them by it, so it keeps the member Online; the member judges the
		// same stamps by its clock, an hour later, and sees the others Offline.
		var det time.Duration
		Eventually(func(g Gomega) {
			ms, err := framework.MembersE(ctx, GinkgoT(), framework.MembersInput{Cluster: in.Cluster, Via: victim})
			g.Expect(err).NotTo(HaveOccurred())
			for _, m := range ms {
				if m.ServerName == leader {
					g.Expect(m.Status).To(Equal("Offline"), "%s as %s, an hour ahead, sees it", leader, victim)
				}
			}
		}, framework.GetIntervals("fault-detect")...).WithContext(ctx).Should(Succeed())
		det = time.Since(start)
		ms := framework.Members(ctx, GinkgoT(), framework.MembersInput{Cluster: in.Cluster, Via: leader})
		for _, m := range ms {
			if m.ServerName == victim {
				Expect(m.Status).To(Equal("Online"), "%s as the leader sees it, with its own clock", victim)
			}
		}
		// Certificates: an hour ahead is inside every certificate's validity,
		// so the member's API still answers with the pinned certificate and
		// trusts the harness.
		s, err := in.Cluster.LXDOn(ctx, victim)
		Expect(err).NotTo(HaveOccurred())
		info, _, err := s.GetServer()
		Expect(err).NotTo(HaveOccurred(), "%s's API with its clock an hour ahead", victim)
		Expect(info.Auth).To(Equal("trusted"))
		// Operation timestamps: an operation on the member carries its clock.
		op, err := s.UseTarget(victim).UpdateInstanceState(wl.name, api.InstanceStatePut{Action: "restart", Timeout: 30, Force: true}, "")
		Expect(err).NotTo(HaveOccurred(), "restarting %s on %s", wl.name, victim)
		Expect(op.Get().CreatedAt.Sub(time.Now())).To(BeNumerically("~", time.Hour, 2*time.Minute), "the operation's created_at on %s", victim)
		Expect(op.WaitContext(ctx)).To(Succeed(), "restarting %s with its member's clock an hour ahead", wl.name)

		// The clock returns.
		back := time.Now()
		in.run(ctx, victim, fmt.Sprintf("date -s @%d", time.Now().Unix()))
		framework.WaitForMemberStatus(ctx, framework.WaitForMemberStatusInput{Cluster: in.Cluster, Via: victim, Member: leader, Status: "Online"},
			framework.GetIntervals("fault-recover")...)
		in.expectWholeWith(ctx, in.Members)
		in.Record(Measurement{Fault: "clock an hour ahead", Node: victim, Detection: det, Recovery: time.Since(back)})
		wl.expectIntact(ctx, victim)
	})

	It("refuses an instance on a member whose pool is full with a clear error, keeps the rest working, and recovers when space is freed", func(ctx SpecContext) {
		victim, leader := in.pick(ctx)
		wl := in.startWorkload(ctx, leader, "full-pool")
		pool := in.Cluster.Spec().PoolName
		// A dataset reserving every free byte fills the pool to 100%.
		fill := pool + "/bcmtest-fill"
		DeferCleanup(func(ctx SpecContext) {
			framework.RunE(ctx, GinkgoT(), framework.NodeOf(in.Cluster, victim), "sh", "-c", "zfs destroy "+fill+" 2>/dev/null || true")
		})
		left := in.run(ctx, victim, fmt.Sprintf(fillPool, pool, fill))
		GinkgoWriter.Printf("%s's pool %s filled by %s: %s bytes left available\n", victim, pool, fill, strings.TrimSpace(left))
		start := time.Now()
		s, err := in.Cluster.LXDOn(ctx, leader)
		Expect(err).NotTo(HaveOccurred())
		create := func(name, target string) error {
			framework.DeferInstanceDeletion(in.Cluster, name)
			op, err := s.UseTarget(target).CreateInstance(api.InstancesPost{Name: name, Type: api.InstanceTypeContainer,
				Source:      api.InstanceSource{Type: "image", Alias: "bcm-workload"},
				InstancePut: api.InstancePut{Devices: map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": pool}}}})
			if err != nil {
				return err
			}
			return op.WaitContext(ctx)
		}
		err = create(framework.RunName("full"), victim)
		Expect(err).To(HaveOccurred(), "creating an instance on %s with its pool full", victim)
		Expect(strings.ToLower(err.Error())).To(Or(ContainSubstring("space"), ContainSubstring("quota")), "the error names the lack of space")
		det := time.Since(start)
		GinkgoWriter.Printf("create on the full pool of %s: %v\n", victim, err)
		// The rest works.
		Expect(create(framework.RunName("elsewhere"), leader)).To(Succeed(), "creating an instance on %s while %s's pool is full", leader, victim)
		wl.expectIntact(ctx, leader)

		freed := time.Now()
		in.run(ctx, victim, "zfs destroy "+fill)
		Eventually(func() error { return create(framework.RunName("freed"), victim) }, framework.GetIntervals("fault-recover")...).
			WithContext(ctx).Should(Succeed(), "creating an instance on %s after its pool was freed", victim)
		in.Record(Measurement{Fault: "full pool", Node: victim, Detection: det, Recovery: time.Since(freed)})
		in.expectWholeWith(ctx, in.Members)
		wl.expectIntact(ctx, leader)
	})
})
