package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/suites/framework"
)

// Workload names: the image alias and network are the suite's own; every
// instance name starts with a per-run prefix, which the leftover check
// looks for in every pool.
const (
	workloadAlias   = "bcm-workload"
	workloadNetwork = "bcmwl0"
	// workloadSubnet is on the private segment's wire but apart from the
	// nodes' 10.77.0.0/24; the suite gives each instance an address.
	workloadSubnet = "10.78.0."
)

func workloadAddr(host int) string { return fmt.Sprintf("%s%d/24", workloadSubnet, host) }

func ipOf(cidr string) string { return strings.SplitN(cidr, "/", 2)[0] }

var _ = Describe("workload", Ordered, Label("workload"), sizeLabel(), func() {
	var (
		c       *cluster.Cluster
		members []string // node names, bootstrap first
		prefix  string
		// placed is the container launched on each member, addr each
		// container's address.
		placed = map[string]string{}
		addr   = map[string]string{}
	)
	exec := func(inst string, argv ...string) framework.ExecInInstanceInput {
		return framework.ExecInInstanceInput{Cluster: c, Instance: inst, Argv: argv}
	}
	// write puts token in /root/wl-data and syncs it to disk.
	write := func(ctx SpecContext, inst, token string) {
		GinkgoHelper()
		framework.RunInInstance(ctx, GinkgoT(), framework.ExecInInstanceInput{Cluster: c, Instance: inst,
			Argv: []string{"sh", "-c", "cat > /root/wl-data && sync"}, Stdin: token})
	}
	read := func(ctx SpecContext, inst string) string {
		GinkgoHelper()
		return framework.RunInInstance(ctx, GinkgoT(), exec(inst, "cat", "/root/wl-data"))
	}
	// reaches polls until from pings to's address on the instance network.
	reaches := func(ctx SpecContext, from, to string) {
		GinkgoHelper()
		Eventually(func(g Gomega) {
			res, err := framework.ExecInInstanceE(ctx, GinkgoT(), exec(from, "ping", "-c", "1", "-W", "2", ipOf(addr[to])))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(res.ExitCode).To(Equal(0), "ping %s (%s) from %s: %s%s", ipOf(addr[to]), to, from, res.Stdout, res.Stderr)
		}, framework.GetIntervals("instance-network")...).WithContext(ctx).Should(Succeed(), "%s reaching %s over %s", from, to, workloadNetwork)
	}

	BeforeAll(func(ctx SpecContext) {
		in := suiteInput()
		c = in.Cluster
		members = framework.MemberNames(c.Name(), in.Members)
		prefix = framework.RunName("wl")
		var img framework.ImportedImage
		// Registered first, so it runs last: after every instance, the
		// network and the image are gone, nothing of them is left in a pool.
		DeferCleanup(func(ctx SpecContext) {
			left := []string{prefix}
			if img.Import.Uploaded {
				left = append(left, img.Import.Fingerprint)
			}
			framework.ExpectNoLeftoverDatasets(ctx, framework.ExpectNoLeftoverDatasetsInput{Cluster: c, Containing: left})
		})
		img = framework.ImportInstanceImage(ctx, framework.ImportInstanceImageInput{Cluster: c, Alias: workloadAlias})
		framework.CreateInstanceNetwork(ctx, framework.CreateInstanceNetworkInput{Cluster: c, Name: workloadNetwork})

		var specs []framework.InstanceSpec
		for i, m := range members {
			name := fmt.Sprintf("%s-m%02d", prefix, i)
			placed[m], addr[name] = name, workloadAddr(10+i)
			specs = append(specs, framework.InstanceSpec{Name: name, Target: m, Address: addr[name]})
		}
		start := time.Now()
		framework.LaunchInstances(ctx, framework.LaunchInstancesInput{Cluster: c, Image: workloadAlias, Network: workloadNetwork, Instances: specs})
		c.RecordStep(fmt.Sprintf("%d containers launched", len(specs)), time.Since(start))
		steps := cluster.StepsString(c.Steps())
		AddReportEntry("workload steps", steps)
		GinkgoWriter.Printf("workload steps: %s\n", steps)
		os.WriteFile(filepath.Join(cfg.Artifacts, "workload-steps.txt"), []byte(steps+"\n"), 0o644)
	})

	It("runs one container on each member, placed by target, with its root a ZFS dataset in that member's pool", Label("smoke"), func(ctx SpecContext) {
		for _, m := range members {
			framework.WaitForInstance(ctx, framework.WaitForInstanceInput{Cluster: c, Instance: placed[m], Status: "Running", Location: m})
			framework.ExpectInstanceOnZFS(ctx, framework.ExpectInstanceOnZFSInput{Cluster: c, Instance: placed[m], Member: m})
		}
	})

	It("runs commands inside each container through the LXD exec API, with their exit codes and output", Label("smoke"), func(ctx SpecContext) {
		for _, m := range members {
			inst := placed[m]
			Expect(framework.RunInInstance(ctx, GinkgoT(), exec(inst, "cat", "/etc/os-release"))).To(ContainSubstring("VERSION_CODENAME="+framework.InstanceImageRecipe(c.Provider()).Suite), "os-release in %s (the nodes' release)", inst)
			Expect(strings.TrimSpace(framework.RunInInstance(ctx, GinkgoT(), exec(inst, "uname", "-n")))).To(Equal(inst), "host name of %s", inst)
			res := framework.ExecInInstance(ctx, GinkgoT(), exec(inst, "sh", "-c", "echo to-out; echo to-err >&2; exit 7"))
			Expect(res).To(Equal(framework.InstanceExecResult{Stdout: "to-out\n", Stderr: "to-err\n", ExitCode: 7}), "exit code and streams in %s", inst)
			echoed := framework.RunInInstance(ctx, GinkgoT(), framework.ExecInInstanceInput{Cluster: c, Instance: inst, Argv: []string{"cat"}, Stdin: "through stdin\n"})
			Expect(echoed).To(Equal("through stdin\n"), "stdin through the exec websocket in %s", inst)
			_, err := framework.RunInInstanceE(ctx, GinkgoT(), exec(inst, "test", "-e", "/no/such/file"))
			Expect(err).To(MatchError(ContainSubstring("exited 1")), "a failing command in %s", inst)
		}
	})

	It("connects containers on different members over the instance network, both directions", Label("smoke"), func(ctx SpecContext) {
		for _, m := range members {
			inst := placed[m]
			out := framework.RunInInstance(ctx, GinkgoT(), exec(inst, "ip", "-4", "-o", "addr", "show", "dev", "eth0"))
			Expect(out).To(ContainSubstring("inet "+addr[inst]), "address of %s", inst)
		}
		for _, from := range members {
			for _, to := range members {
				if from != to {
					reaches(ctx, placed[from], placed[to])
				}
			}
		}
	})

	It("keeps a synced file across a stop and a move to another member", Label("smoke"), func(ctx SpecContext) {
		src, dst := members[0], members[1]
		mover := prefix + "-mv"
		addr[mover] = workloadAddr(50)
		framework.LaunchInstances(ctx, framework.LaunchInstancesInput{Cluster: c, Image: workloadAlias, Network: workloadNetwork,
			Instances: []framework.InstanceSpec{{Name: mover, Target: src, Address: addr[mover]}}})
		token := "moved-" + prefix
		write(ctx, mover, token)
		framework.SetInstanceState(ctx, GinkgoT(), framework.InstanceStateInput{Cluster: c, Instance: mover, Action: "stop"})
		start := time.Now()
		Expect(framework.MoveInstanceE(ctx, GinkgoT(), framework.MoveInstanceInput{Cluster: c, Instance: mover, Target: dst})).To(Succeed())
		AddReportEntry("move (stopped) "+src+" -> "+dst, time.Since(start).Round(100*time.Millisecond).String())
		framework.ExpectInstanceOnZFS(ctx, framework.ExpectInstanceOnZFSInput{Cluster: c, Instance: mover, Member: dst})
		framework.SetInstanceState(ctx, GinkgoT(), framework.InstanceStateInput{Cluster: c, Instance: mover, Action: "start"})
		framework.WaitForInstance(ctx, framework.WaitForInstanceInput{Cluster: c, Instance: mover, Status: "Running", Location: dst})
		Expect(read(ctx, mover)).To(Equal(token), "the file in %s after its move to %s", mover, dst)
		reaches(ctx, mover, placed[src])
	})

	It("restores a synced file from a snapshot, with a ZFS snapshot underneath", Label("smoke"), func(ctx SpecContext) {
		m := members[0]
		inst := placed[m]
		write(ctx, inst, "before-snapshot")
		snap := framework.SnapshotInstanceInput{Cluster: c, Instance: inst, Snapshot: "wl-snap"}
		Expect(framework.SnapshotInstanceE(ctx, GinkgoT(), snap)).To(Succeed())
		snaps, err := framework.ZFSSnapshotsE(ctx, GinkgoT(), c, m, inst)
		Expect(err).NotTo(HaveOccurred())
		Expect(snaps).To(ContainElement(HaveSuffix("/containers/"+inst+"@snapshot-wl-snap")), "ZFS snapshots of %s on %s", inst, m)
		write(ctx, inst, "after-snapshot")
		framework.SetInstanceState(ctx, GinkgoT(), framework.InstanceStateInput{Cluster: c, Instance: inst, Action: "stop"})
		Expect(framework.RestoreInstanceE(ctx, GinkgoT(), snap)).To(Succeed())
		framework.SetInstanceState(ctx, GinkgoT(), framework.InstanceStateInput{Cluster: c, Instance: inst, Action: "start"})
		framework.WaitForInstance(ctx, framework.WaitForInstanceInput{Cluster: c, Instance: inst, Status: "Running", Location: m})
		Expect(read(ctx, inst)).To(Equal("before-snapshot"), "the file in %s after restoring its snapshot", inst)
	})

	It("copies a stopped container to a third member, where it runs with the same data", Label("nightly"), func(ctx SpecContext) {
		if len(members) < 3 {
			Skip(fmt.Sprintf("needs 2 members or more (a third node); this cluster has %d", len(members)-1))
		}
		src, third := members[0], members[2]
		orig := placed[src]
		token := "copied-" + prefix
		write(ctx, orig, token)
		framework.SetInstanceState(ctx, GinkgoT(), framework.InstanceStateInput{Cluster: c, Instance: orig, Action: "stop"})
		cp := prefix + "-cp"
		addr[cp] = workloadAddr(60)
		start := time.Now()
		Expect(framework.CopyInstanceE(ctx, GinkgoT(), framework.CopyInstanceInput{Cluster: c, Source: orig, Name: cp, Target: third,
			Config: map[string]string{"environment.WORKLOAD_ADDRESS": addr[cp]}})).To(Succeed())
		AddReportEntry("copy (stopped) "+src+" -> "+third, time.Since(start).Round(100*time.Millisecond).String())
		framework.ExpectInstanceOnZFS(ctx, framework.ExpectInstanceOnZFSInput{Cluster: c, Instance: cp, Member: third})
		for _, inst := range []string{orig, cp} {
			framework.SetInstanceState(ctx, GinkgoT(), framework.InstanceStateInput{Cluster: c, Instance: inst, Action: "start"})
		}
		framework.WaitForInstance(ctx, framework.WaitForInstanceInput{Cluster: c, Instance: cp, Status: "Running", Location: third})
		framework.WaitForInstance(ctx, framework.WaitForInstanceInput{Cluster: c, Instance: orig, Status: "Running", Location: src})
		Expect(read(ctx, cp)).To(Equal(token), "the file in the copy %s on %s", cp, third)
		reaches(ctx, cp, orig)
		reaches(ctx, orig, cp)
	})

	It("evacuates a member (moving its default-mode container, stopping its stop-mode one) and restores both", Label("nightly"), func(ctx SpecContext) {
		if len(members) < 3 {
			Skip(fmt.Sprintf("needs 2 members or more; this cluster has %d", len(members)-1))
		}
		victim := members[len(members)-1]
		moved := placed[victim]
		stopped := prefix + "-st"
		addr[stopped] = workloadAddr(70)
		framework.LaunchInstances(ctx, framework.LaunchInstancesInput{Cluster: c, Image: workloadAlias, Network: workloadNetwork,
			Instances: []framework.InstanceSpec{{Name: stopped, Target: victim, Address: addr[stopped], Config: map[string]string{"cluster.evacuate": "stop"}}}})
		token := "evacuated-" + prefix
		write(ctx, moved, token)

		start := time.Now()
		Expect(framework.SetMemberStateE(ctx, GinkgoT(), framework.MemberStateInput{Cluster: c, Member: victim, Action: "evacuate"})).To(Succeed())
		AddReportEntry("evacuate "+victim, time.Since(start).Round(100*time.Millisecond).String())
		srv, err := c.LXD(ctx)
		Expect(err).NotTo(HaveOccurred())
		mem, _, err := srv.GetClusterMember(victim)
		Expect(err).NotTo(HaveOccurred())
		Expect(mem.Status).To(Equal("Evacuated"), "status of %s after its evacuation", victim)
		inst := framework.WaitForInstance(ctx, framework.WaitForInstanceInput{Cluster: c, Instance: moved, Status: "Running"})
		Expect(inst.Location).NotTo(Equal(victim), "%s (cluster.evacuate auto) still on the evacuated %s", moved, victim)
		framework.ExpectInstanceOnZFS(ctx, framework.ExpectInstanceOnZFSInput{Cluster: c, Instance: moved, Member: inst.Location})
		Expect(read(ctx, moved)).To(Equal(token), "the file in %s after evacuation to %s", moved, inst.Location)
		framework.WaitForInstance(ctx, framework.WaitForInstanceInput{Cluster: c, Instance: stopped, Status: "Stopped", Location: victim})

		start = time.Now()
		Expect(framework.SetMemberStateE(ctx, GinkgoT(), framework.MemberStateInput{Cluster: c, Member: victim, Action: "restore"})).To(Succeed())
		AddReportEntry("restore "+victim, time.Since(start).Round(100*time.Millisecond).String())
		mem, _, err = srv.GetClusterMember(victim)
		Expect(err).NotTo(HaveOccurred())
		Expect(mem.Status).To(Equal("Online"), "status of %s after its restore", victim)
		for _, name := range []string{moved, stopped} {
			framework.WaitForInstance(ctx, framework.WaitForInstanceInput{Cluster: c, Instance: name, Status: "Running", Location: victim})
		}
		framework.ExpectInstanceOnZFS(ctx, framework.ExpectInstanceOnZFSInput{Cluster: c, Instance: moved, Member: victim})
		Expect(read(ctx, moved)).To(Equal(token), "the file in %s back on %s", moved, victim)
		reaches(ctx, moved, placed[members[0]])
	})
})
