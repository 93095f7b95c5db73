package e2e

import (
	"bytes"
	"regexp"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/BitcoinCacheMachine/bcmtest/suites/framework"
)

var onionHostname = regexp.MustCompile(`^[a-z2-7]{56}\.onion$`)

// torControl sends commands to the control socket, authenticating with the
// cookie; the reply is Tor's raw text.
const torControl = `c=$(od -An -tx1 /run/tor/control.authcookie | tr -d ' \n'); printf 'AUTHENTICATE %s\r\n%s\r\nQUIT\r\n' "$c" "$1" | nc -w 5 -U /run/tor/control`

var _ = Describe("Tor", Label("tor"), sizeLabel(), func() {
	in := forEachSpec()

	It("runs tor with SOCKS on 9050 on every node", Label("smoke"), func(ctx SpecContext) {
		for _, m := range in.Cluster.Members() {
			n := in.node(m.Name)
			Eventually(func(g Gomega) string {
				res, err := framework.ExecE(ctx, GinkgoT(), n, "systemctl", "is-active", "tor@default.service")
				g.Expect(err).NotTo(HaveOccurred())
				return strings.TrimSpace(string(res.Stdout))
			}, framework.GetIntervals("tor-active")...).WithContext(ctx).Should(Equal("active"), "tor@default on %s", m.Name)
			Eventually(func(g Gomega) string {
				out, err := framework.RunE(ctx, GinkgoT(), n, "ss", "-ltnH", "sport = :9050")
				g.Expect(err).NotTo(HaveOccurred())
				return out
			}, framework.GetIntervals("tor-active")...).WithContext(ctx).Should(ContainSubstring("127.0.0.1:9050"), "SOCKS listener on %s", m.Name)
		}
	})

	It("answers PROTOCOLINFO on the control socket with the Tor version", Label("smoke"), func(ctx SpecContext) {
		for _, m := range in.Cluster.Members() {
			out := in.run(ctx, m.Name, "sh", "-c", `printf 'PROTOCOLINFO 1\r\nQUIT\r\n' | nc -w 5 -U /run/tor/control`)
			Expect(out).To(MatchRegexp(`250-VERSION Tor="[0-9.]+`), "PROTOCOLINFO on %s", m.Name)
		}
	})

	It("has produced the fixture's onion service hostname", Label("nightly"), func(ctx SpecContext) {
		if !bytes.Contains(in.CloudInit, []byte("bcmtest-onion")) {
			Skip("the cloud-init file under test configures no bcmtest-onion service")
		}
		for _, m := range in.Cluster.Members() {
			n := in.node(m.Name)
			Eventually(func(g Gomega) string {
				res, err := framework.ExecE(ctx, GinkgoT(), n, "cat", "/var/lib/tor/bcmtest-onion/hostname")
				g.Expect(err).NotTo(HaveOccurred())
				return strings.TrimSpace(string(res.Stdout))
			}, framework.GetIntervals("onion-hostname")...).WithContext(ctx).Should(
				And(MatchRegexp(onionHostname.String()), HaveLen(62)), "onion hostname on %s", m.Name)
		}
	})

	It("stays offline by construction: no route out, no circuit", Label("nightly"), func(ctx SpecContext) {
		for _, m := range in.Cluster.Members() {
			res := in.result(ctx, m.Name, "nc", "-z", "-w", "3", "1.1.1.1", "443")
			Expect(res.ExitCode).NotTo(Equal(0), "%s reached 1.1.1.1:443", m.Name)
			out := in.run(ctx, m.Name, "sh", "-c", torControl, "sh", "GETINFO status/circuit-established")
			Expect(out).To(ContainSubstring("250-status/circuit-established=0"), "tor on %s", m.Name)
		}
	})
})
