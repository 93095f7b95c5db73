package e2e

import (
	"fmt"
	"strconv"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("wait-for-it", Label("wait-for-it"), sizeLabel(), func() {
	in := forEachSpec()

	It("is installed on every node", Label("smoke"), func(ctx SpecContext) {
		for _, m := range in.Cluster.Members() {
			Expect(in.result(ctx, m.Name, "sh", "-c", "command -v wait-for-it").ExitCode).To(Equal(0), "wait-for-it on %s", m.Name)
		}
	})

	It("reaches every peer's LXD port from every node", Label("smoke"), func(ctx SpecContext) {
		for _, from := range in.Cluster.Members() {
			for _, to := range in.Cluster.Members() {
				res := in.result(ctx, from.Name, "wait-for-it", "-t", "10", fmt.Sprintf("%s:8443", to.Address))
				Expect(res.ExitCode).To(Equal(0), "wait-for-it from %s to %s: %s", from.Name, to.Name, res.Stderr)
			}
		}
	})

	It("exits 124 within its timeout against a closed port", Label("nightly"), func(ctx SpecContext) {
		n := in.Cluster.Members()[0].Name
		out := in.run(ctx, n, "sh", "-c", `s=$(date +%s); wait-for-it -q -t 3 127.0.0.1:1; rc=$?; echo "$rc $(( $(date +%s) - s ))"`)
		f := strings.Fields(out)
		Expect(f).To(HaveLen(2))
		Expect(f[0]).To(Equal("124"))
		secs, _ := strconv.Atoi(f[1])
		Expect(secs).To(And(BeNumerically(">=", 2), BeNumerically("<=", 8)), "seconds waited")
	})

	It("with -s refuses to run the command after a timeout", Label("nightly"), func(ctx SpecContext) {
		n := in.Cluster.Members()[0].Name
		in.run(ctx, n, "rm", "-f", "/tmp/bcmtest-strict")
		res := in.result(ctx, n, "wait-for-it", "-s", "-q", "-t", "2", "127.0.0.1:1", "--", "touch", "/tmp/bcmtest-strict")
		Expect(res.ExitCode).To(Equal(124))
		Expect(in.result(ctx, n, "test", "-e", "/tmp/bcmtest-strict").ExitCode).NotTo(Equal(0), "the command ran despite -s")
	})
})
