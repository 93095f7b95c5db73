package e2e

import (
	"encoding/json"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"gopkg.in/yaml.v3"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
)

var _ = Describe("cloud-init", Label("cloud-init"), sizeLabel(), func() {
	in := forEachSpec()

	It("finished with status done and no errors on every node", Label("smoke"), func(ctx SpecContext) {
		for _, m := range in.Cluster.Members() {
			Expect(in.run(ctx, m.Name, "cloud-init", "status")).To(ContainSubstring("status: done"), "on %s", m.Name)
			var st struct {
				V1 map[string]json.RawMessage `json:"v1"`
			}
			Expect(json.Unmarshal([]byte(in.run(ctx, m.Name, "cat", "/run/cloud-init/status.json")), &st)).To(Succeed())
			for stage, raw := range st.V1 {
				var s struct {
					Errors []string `json:"errors"`
				}
				if json.Unmarshal(raw, &s) == nil {
					Expect(s.Errors).To(BeEmpty(), "cloud-init stage %s on %s", stage, m.Name)
				}
			}
			d, err := cluster.CloudInitDuration(ctx, in.Cluster.Provider(), m.Name)
			Expect(err).NotTo(HaveOccurred())
			AddReportEntry("cloud-init duration "+m.Name, d.String())
		}
	})

	It("installed every package the cloud-init file lists", Label("smoke"), func(ctx SpecContext) {
		var doc struct {
			Packages []any `yaml:"packages"`
		}
		Expect(yaml.Unmarshal(in.CloudInit, &doc)).To(Succeed())
		if len(doc.Packages) == 0 {
			Skip("the cloud-init file lists no packages")
		}
		for _, m := range in.Cluster.Members() {
			for _, p := range doc.Packages {
				name, ok := p.(string)
				if !ok { // [name, version] form
					name = p.([]any)[0].(string)
				}
				out := in.run(ctx, m.Name, "dpkg-query", "-W", "-f=${Status}", name)
				Expect(out).To(Equal("install ok installed"), "package %s on %s", name, m.Name)
			}
		}
	})

	It("ran the fixture's runcmd", Label("smoke"), func(ctx SpecContext) {
		if !strings.Contains(string(in.CloudInit), "bcmtest-runcmd-marker") {
			Skip("the cloud-init file under test writes no runcmd marker")
		}
		for _, m := range in.Cluster.Members() {
			Expect(in.run(ctx, m.Name, "cat", "/var/lib/bcmtest-runcmd-marker")).To(Equal("bcm-host-ready\n"), "on %s", m.Name)
		}
	})
})
