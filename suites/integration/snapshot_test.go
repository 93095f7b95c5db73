package integration

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/BitcoinCacheMachine/bcmtest/fixtures"
	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
	"github.com/BitcoinCacheMachine/bcmtest/suites/framework"
)

// identity is what must differ between nodes restored from one snapshot.
type identity struct {
	Hostname, MachineIDFile, MachineIDPID1, MachineIDJournal string
	MAC0, MAC1, PrivateIP, SSHHostKey, LXDCert, OnionHost    string
	GenerationID, InstanceID                                 string
	// BootID is the kernel's (/proc/sys/kernel/random/boot_id) and
	// JournalBootID the _BOOT_ID journald stamped on a fresh entry.
	BootID, JournalBootID string
	ClockSkew             time.Duration
}

var _ = Describe("nodes restored from the booted snapshot", Label("snapshot", "ci"), Ordered, func() {
	var (
		p     *qemu.Provider
		c     *cluster.Cluster
		nodes []string
	)
	BeforeAll(func(ctx SpecContext) {
		dirs, err := state.Default()
		Expect(err).NotTo(HaveOccurred())
		p, err = qemu.New(qemu.Config{Dirs: dirs, Log: GinkgoWriter})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(p.Close)
		name := runID("snap")
		c, err = cluster.Up(ctx, cluster.Spec{
			Name: name, Members: 1, CPUs: framework.NodeCPUs, Memory: framework.NodeMemory, Disk: "12G", PoolSize: "2G",
			CloudInit: fixtures.MustRead(fixtures.BCMDebian), CloudInitName: fixtures.BCMDebian,
			Provider: p, StateDir: dirs.State, Log: GinkgoWriter,
		})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) { Expect(c.Destroy(ctx)).To(Succeed()) }, NodeTimeout(3*time.Minute))
		AddReportEntry("timings "+name, c.Timings().String())
		for i := 0; i <= 1; i++ {
			nodes = append(nodes, cluster.NodeName(name, i))
		}
	}, NodeTimeout(40*time.Minute))

	It("restored every node from a snapshot and renewed it at the seed gate", func(ctx SpecContext) {
		for _, n := range nodes {
			snap, err := p.SnapshotOf(n)
			Expect(err).NotTo(HaveOccurred())
			Expect(snap).NotTo(BeEmpty(), "%s booted cold", n)
			console, err := p.Console(ctx, n)
			Expect(err).NotTo(HaveOccurred())
			Expect(string(console)).To(ContainSubstring("bcmtest-seed: seed found after restore"), "%s", n)
			Expect(string(console)).NotTo(ContainSubstring("bcmtest-seed: FAILED"), "%s", n)
		}
	})

	It("gives each node its own identity, and a clock within 5 s of the host", func(ctx SpecContext) {
		ids := map[string]identity{}
		for _, n := range nodes {
			ids[n] = readIdentity(ctx, p, n)
			id := ids[n]
			Expect(id.Hostname).To(Equal(n))
			Expect(id.MachineIDPID1).To(Equal(id.MachineIDFile), "%s: PID 1 sees another machine-id than /etc/machine-id", n)
			Expect(id.MachineIDJournal).To(Equal(id.MachineIDFile), "%s: journald sees another machine-id than /etc/machine-id", n)
			Expect(id.ClockSkew).To(BeNumerically("<", 5*time.Second), "%s clock", n)
			Expect(id.InstanceID).To(HavePrefix(n+"-"), "%s instance-id", n)
		}
		fields := map[string]func(identity) string{
			"machine-id":             func(i identity) string { return i.MachineIDFile },
			"eth0 MAC":               func(i identity) string { return i.MAC0 },
			"eth1 MAC":               func(i identity) string { return i.MAC1 },
			"private IP":             func(i identity) string { return i.PrivateIP },
			"SSH host key":           func(i identity) string { return i.SSHHostKey },
			"LXD server certificate": func(i identity) string { return i.LXDCert },
			"Tor onion hostname":     func(i identity) string { return i.OnionHost },
			"VM generation ID":       func(i identity) string { return i.GenerationID },
			"cloud-init instance-id": func(i identity) string { return i.InstanceID },
		}
		for what, get := range fields {
			seen := map[string]string{}
			for _, n := range nodes {
				v := get(ids[n])
				Expect(v).NotTo(BeEmpty(), "%s of %s", what, n)
				Expect(seen).NotTo(HaveKey(v), "%s of %s is also %s's", what, n, seen[v])
				seen[v] = n
			}
		}
	})

	// The kernel makes its boot ID once per boot, and a restored node's
	// kernel booted in the template: every node restored from one snapshot
	// has the template's boot ID, and nothing short of a boot changes it.
	// What keys on it is journald (_BOOT_ID on every entry, `journalctl
	// -b`); within a node that is one boot, as it is for its kernel, and
	// across nodes entries differ by _MACHINE_ID, renewed at the gate.
	It("shares the template's boot ID on every node, while journald tells the nodes apart by machine-id", func(ctx SpecContext) {
		boot := map[string]string{}
		for _, n := range nodes {
			id := readIdentity(ctx, p, n)
			Expect(id.BootID).To(MatchRegexp(`^[0-9a-f-]{36}$`), "%s boot ID", n)
			Expect(id.JournalBootID).To(Equal(strings.ReplaceAll(id.BootID, "-", "")), "%s: journald's _BOOT_ID is not the kernel's", n)
			Expect(id.MachineIDJournal).To(Equal(id.MachineIDFile), "%s: journald's _MACHINE_ID is not the node's", n)
			boot[n] = id.BootID
		}
		AddReportEntry("boot IDs of the restored nodes", fmt.Sprint(boot))
		for _, n := range nodes[1:] {
			Expect(boot[n]).To(Equal(boot[nodes[0]]), "restored nodes %s and %s have different boot IDs: the README says they share the template's", n, nodes[0])
		}
		By(fmt.Sprintf("outcome: all %d restored nodes share boot ID %s (the template's); their journals differ by machine-id", len(nodes), boot[nodes[0]]))
	})

	It("ran every cloud-init stage with each node's own seed", func(ctx SpecContext) {
		for _, n := range nodes {
			out, err := provider.Run(ctx, p, n, "cloud-init", "status", "--long")
			Expect(err).NotTo(HaveOccurred())
			Expect(out).To(MatchRegexp(`(?m)^status: done$`), "%s", n)
			host, err := provider.Run(ctx, p, n, "cloud-init", "query", "local_hostname")
			Expect(err).NotTo(HaveOccurred())
			Expect(strings.TrimSpace(host)).To(Equal(n))
			raw, err := provider.Run(ctx, p, n, "cat", "/run/cloud-init/status.json")
			Expect(err).NotTo(HaveOccurred())
			var st struct {
				V1 map[string]json.RawMessage `json:"v1"`
			}
			Expect(json.Unmarshal([]byte(raw), &st)).To(Succeed())
			for _, stage := range []string{"init-local", "init", "modules-config", "modules-final"} {
				var s struct {
					Start    *float64 `json:"start"`
					Finished *float64 `json:"finished"`
					Errors   []string `json:"errors"`
				}
				Expect(st.V1).To(HaveKey(stage), "%s", n)
				Expect(json.Unmarshal(st.V1[stage], &s)).To(Succeed())
				Expect(s.Start).NotTo(BeNil(), "%s: stage %s never started", n, stage)
				Expect(s.Finished).NotTo(BeNil(), "%s: stage %s never finished", n, stage)
				Expect(s.Errors).To(BeEmpty(), "%s: stage %s", n, stage)
			}
		}
	})
})

// readIdentity collects a node's identity from inside it (and its
// generation ID from QEMU).
func readIdentity(ctx SpecContext, p *qemu.Provider, n string) identity {
	GinkgoHelper()
	run := func(argv ...string) string {
		GinkgoHelper()
		out, err := provider.Run(ctx, p, n, argv...)
		Expect(err).NotTo(HaveOccurred())
		return strings.TrimSpace(out)
	}
	var id identity
	id.Hostname = run("hostname")
	id.MachineIDFile = run("cat", "/etc/machine-id")
	// PID 1's own view: it expands %m in a unit it runs.
	run("sh", "-c", `printf '[Service]\nType=oneshot\nExecStart=/bin/sh -c "echo %%m > /run/bcmtest-pid1-machine-id"\n' > /run/systemd/system/bcmtest-machine-id.service && systemctl daemon-reload && systemctl start bcmtest-machine-id.service`)
	id.MachineIDPID1 = run("cat", "/run/bcmtest-pid1-machine-id")
	marker := fmt.Sprintf("bcmtest-identity-%d", time.Now().UnixNano())
	run("logger", "-t", "bcmtest-identity", marker)
	Eventually(func(g Gomega) {
		out, err := provider.Run(ctx, p, n, "journalctl", "-t", "bcmtest-identity", "-o", "json", "--no-pager", "MESSAGE="+marker)
		g.Expect(err).NotTo(HaveOccurred())
		var e struct {
			MachineID string `json:"_MACHINE_ID"`
			BootID    string `json:"_BOOT_ID"`
		}
		g.Expect(json.Unmarshal([]byte(strings.SplitN(strings.TrimSpace(out), "\n", 2)[0]), &e)).To(Succeed())
		id.MachineIDJournal, id.JournalBootID = e.MachineID, e.BootID
	}, framework.GetIntervals("journal-entry")...).WithContext(ctx).Should(Succeed())
	id.BootID = run("cat", "/proc/sys/kernel/random/boot_id")
	id.MAC0 = run("cat", "/sys/class/net/eth0/address")
	id.MAC1 = run("cat", "/sys/class/net/eth1/address")
	id.PrivateIP = run("sh", "-c", "ip -4 -o addr show dev eth1 | awk '{print $4}'")
	id.SSHHostKey = run("ssh-keygen", "-lf", "/etc/ssh/ssh_host_ed25519_key.pub")
	id.LXDCert = run("sha256sum", "/var/lib/lxd/server.crt")
	id.OnionHost = run("cat", "/var/lib/tor/bcmtest-onion/hostname")
	id.InstanceID = run("cloud-init", "query", "instance_id")
	before := time.Now()
	guest := run("date", "+%s.%N")
	after := time.Now()
	secs, err := strconv.ParseFloat(guest, 64)
	Expect(err).NotTo(HaveOccurred())
	mid := before.Add(after.Sub(before) / 2)
	skew := time.Duration(secs*float64(time.Second)) - time.Duration(mid.UnixNano())
	if skew < 0 {
		skew = -skew
	}
	id.ClockSkew = skew
	g, err := p.GenerationID(ctx, n)
	Expect(err).NotTo(HaveOccurred())
	id.GenerationID = g
	return id
}
