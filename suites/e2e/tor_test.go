package e2e

import (
	"bytes"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var onionHostname = regexp.MustCompile(`^[a-z2-7]{56}\.onion$`)

// torControl sends commands to the control socket, authenticating with the
// cookie; the reply is Tor's raw text.
const torControl = `c=$(od -An -tx1 /run/tor/control.authcookie | tr -d ' \n'); printf 'AUTHENTICATE %s\r\n%s\r\nQUIT\r\n' "$c" "$1" | nc -w 5 -U /run/tor/control`

var _ = Describe("Tor", Label("tor"), sizeLabel(), func() {
	It("runs tor with SOCKS on 9050 on every node", Label("smoke"), func(ctx SpecContext) {
		for _, m := range bcm.Members() {
			Eventually(func() string {
				return strings.TrimSpace(string(result(ctx, m.Name, "systemctl", "is-active", "tor@default.service").Stdout))
			}).WithContext(ctx).WithTimeout(time.Minute).Should(Equal("active"), "tor@default on %s", m.Name)
			Eventually(func() string {
				return run(ctx, m.Name, "ss", "-ltnH", "sport = :9050")
			}).WithContext(ctx).WithTimeout(time.Minute).Should(ContainSubstring("127.0.0.1:9050"), "SOCKS listener on %s", m.Name)
		}
	})

	It("answers PROTOCOLINFO on the control socket with the Tor version", Label("smoke"), func(ctx SpecContext) {
		for _, m := range bcm.Members() {
			out := run(ctx, m.Name, "sh", "-c", `printf 'PROTOCOLINFO 1\r\nQUIT\r\n' | nc -w 5 -U /run/tor/control`)
			Expect(out).To(MatchRegexp(`250-VERSION Tor="[0-9.]+`), "PROTOCOLINFO on %s", m.Name)
		}
	})

	It("has produced the fixture's onion service hostname", Label("nightly"), func(ctx SpecContext) {
		if !bytes.Contains(cloudInit, []byte("bcmtest-onion")) {
			Skip("the cloud-init file under test configures no bcmtest-onion service")
		}
		for _, m := range bcm.Members() {
			var host string
			Eventually(func() string {
				host = strings.TrimSpace(string(result(ctx, m.Name, "cat", "/var/lib/tor/bcmtest-onion/hostname").Stdout))
				return host
			}).WithContext(ctx).WithTimeout(time.Minute).Should(MatchRegexp(onionHostname.String()), "onion hostname on %s", m.Name)
			Expect(host).To(HaveLen(62))
		}
	})

	It("stays offline by construction: no route out, no circuit", Label("nightly"), func(ctx SpecContext) {
		for _, m := range bcm.Members() {
			res := result(ctx, m.Name, "nc", "-z", "-w", "3", "1.1.1.1", "443")
			Expect(res.ExitCode).NotTo(Equal(0), "%s reached 1.1.1.1:443", m.Name)
			out := run(ctx, m.Name, "sh", "-c", torControl, "sh", "GETINFO status/circuit-established")
			Expect(out).To(ContainSubstring("250-status/circuit-established=0"), "tor on %s", m.Name)
		}
	})
})
