package integration

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
	"github.com/BitcoinCacheMachine/bcmtest/suites/framework"
)

// The apt cache is the one door from a VM to the host's network: it must
// open onto Debian's archive and nothing else. The test server listens on
// this machine's loopback only; nothing here aims at an outside address.
var _ = Describe("the apt cache seen from inside a VM", Label("security", "ci"), Ordered, func() {
	var (
		p     *qemu.Provider
		name  string
		hits  atomic.Int32
		conns atomic.Int32
	)
	BeforeAll(func(ctx SpecContext) {
		l, err := net.Listen("tcp", "127.0.0.1:80")
		if err != nil {
			Skip(fmt.Sprintf("cannot listen on 127.0.0.1:80 for the test server (needs root): %v", err))
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			fmt.Fprintln(w, "this must never reach a VM")
		}), ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}}
		go srv.Serve(l)
		DeferCleanup(srv.Close)

		dirs, err := state.Default()
		Expect(err).NotTo(HaveOccurred())
		p, err = qemu.New(qemu.Config{Dirs: dirs, Log: GinkgoWriter})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(p.Close)
		name = runID("sec") + "-00"
		DeferCleanup(func(ctx SpecContext) { Expect(p.Delete(ctx, name)).To(Succeed()) }, NodeTimeout(2*time.Minute))
		_, err = p.Launch(ctx, provider.LaunchInput{Name: name, CPUs: framework.NodeCPUs, MemoryMiB: framework.NodeMemoryMiB, DiskGiB: 10,
			UserData: []byte("#cloud-config\npackage_update: true\n"), Log: GinkgoWriter})
		Expect(err).NotTo(HaveOccurred())
	}, NodeTimeout(30*time.Minute))

	curl := func(ctx SpecContext, args ...string) (code string, exit int) {
		GinkgoHelper()
		res, err := p.Exec(ctx, name, provider.ExecInput{Argv: append([]string{"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
			"--max-time", "20", "-x", "http://" + qemu.AptProxyAddr}, args...)})
		Expect(err).NotTo(HaveOccurred())
		GinkgoWriter.Printf("curl %v: exit %d, %s %s\n", args, res.ExitCode, res.Stdout, res.Stderr)
		return strings.TrimSpace(string(res.Stdout)), res.ExitCode
	}

	It("refuses a file from another host, by name or by address", func(ctx SpecContext) {
		for _, u := range []string{"http://localhost/exfil-DATA/x.deb", "http://127.0.0.1/exfil-DATA/x.deb", "http://localhost/debian/dists/bookworm/InRelease"} {
			code, _ := curl(ctx, u)
			Expect(code).To(Or(HavePrefix("4"), HavePrefix("5")), "GET %s through the cache", u)
		}
	})

	It("refuses a CONNECT tunnel", func(ctx SpecContext) {
		for _, u := range []string{"http://localhost:80/", "http://127.0.0.1:80/"} {
			_, exit := curl(ctx, "--proxytunnel", u)
			Expect(exit).NotTo(BeZero(), "CONNECT for %s through the cache", u)
		}
	})

	It("let nothing reach the test server", func() {
		Expect(hits.Load()).To(BeZero(), "requests that reached the test server")
		Expect(conns.Load()).To(BeZero(), "connections that reached the test server")
	})

	It("still serves Debian's archive, security suite included", func(ctx SpecContext) {
		out, err := provider.Run(ctx, p, name, "apt-get", "update")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(MatchRegexp(`(Get|Hit):\d+ http://deb.debian.org/debian-security bookworm-security InRelease`))
		Expect(out).To(MatchRegexp(`(Get|Hit):\d+ http://deb.debian.org/debian bookworm InRelease`))
		Expect(out).NotTo(ContainSubstring("Err:"))
	})
})
