package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/BitcoinCacheMachine/bcmtest/fixtures"
	"github.com/BitcoinCacheMachine/bcmtest/harness/inventory"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

// reviewFixture is a file of fixtures/review, read from the source tree
// (the suite runs in suites/integration).
func reviewFixture(name string) []byte {
	GinkgoHelper()
	b, err := os.ReadFile(filepath.Join("..", "..", "fixtures", "review", name))
	Expect(err).NotTo(HaveOccurred())
	return b
}

// diffRun is one `bcmtest cloudinit diff -o json` run.
type diffRun struct {
	code      int
	report    inventory.Report
	stderr    string
	artifacts string
}

// reviewArtifacts is where a run's diff artifacts are kept after the
// spec: under BCMTEST_ARTIFACTS, else the repository's artifacts/ (make's
// default), so a failed spec's inventories and logs can be read.
func reviewArtifacts(name string) string {
	GinkgoHelper()
	base := os.Getenv("BCMTEST_ARTIFACTS")
	if base == "" {
		base = filepath.Join("..", "..", "artifacts")
	}
	dir, err := filepath.Abs(filepath.Join(base, runID("review"), name))
	Expect(err).NotTo(HaveOccurred())
	return dir
}

// runDiff runs the CLI's cloudinit diff in dir with args and reads its
// JSON report. It also checks what every run must leave: the artifacts,
// and no VM, VM directory or qemu process of either node.
func runDiff(ctx context.Context, bin, dir, name string, args ...string) diffRun {
	GinkgoHelper()
	out := reviewArtifacts(name)
	cmd := exec.CommandContext(ctx, bin, append([]string{"cloudinit", "diff", "-o", "json", "--out", out}, args...)...)
	cmd.Dir = dir
	cmd.Env = os.Environ()
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	GinkgoWriter.Printf("bcmtest cloudinit diff %s: %s, %v, artifacts in %s\n--- stderr ---\n%s\n--- report ---\n%s\n", strings.Join(args, " "), time.Since(start).Round(time.Second), err, out, stderr.String(), stdout.String())
	r := diffRun{stderr: stderr.String(), artifacts: out}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else {
		Expect(err).NotTo(HaveOccurred())
	}
	Expect(json.Unmarshal(stdout.Bytes(), &r.report)).To(Succeed(), "the -o json report")
	Expect(r.report.Schema).To(Equal(inventory.ReportVersion))
	AddReportEntry("cloudinit diff "+strings.Join(args, " "), time.Since(start).Round(time.Second).String())
	for _, f := range []string{"old.inventory.json", "new.inventory.json", "old.cloud-init.log", "new.cloud-init.log", "diff.json", "diff.md", "diff.txt"} {
		Expect(filepath.Join(out, f)).To(BeARegularFile())
	}
	dirs, err := state.Default()
	Expect(err).NotTo(HaveOccurred())
	Expect(r.report.Old.Node).To(HaveSuffix("-old"))
	Expect(leftovers(dirs, strings.TrimSuffix(r.report.Old.Node, "-old"))).To(BeEmpty(), "both nodes torn down")
	return r
}

// keys are the differences as "section op key".
func keys(r inventory.Report) []string {
	var out []string
	for _, c := range r.Differences {
		out = append(out, c.Section+" "+c.Op+" "+c.Key)
	}
	return out
}

var _ = Describe("bcmtest cloudinit diff", Label("review"), Ordered, ContinueOnFailure, func() {
	var bin, dir string

	BeforeAll(func(ctx SpecContext) {
		bin = buildCLI(ctx)
		dir = GinkgoT().TempDir()
		for name, data := range map[string][]byte{
			"smoke-old.yaml": fixtures.MustRead(fixtures.VMSmoke),
			"smoke-new.yaml": fixtures.MustRead(fixtures.VMSmoke),
			"base.yaml":      reviewFixture("base.yaml"),
			"changed.yaml":   reviewFixture("changed.yaml"),
			"failing.yaml":   reviewFixture("failing.yaml"),
		} {
			Expect(os.WriteFile(filepath.Join(dir, name), data, 0o644)).To(Succeed())
		}
	}, NodeTimeout(5*time.Minute))

	It("finds no difference between two copies of the same file, with timings apart", Label("review-smoke"), func(ctx SpecContext) {
		r := runDiff(ctx, bin, dir, "same", "smoke-old.yaml", "smoke-new.yaml")
		Expect(r.code).To(Equal(0), r.stderr)
		Expect(keys(r.report)).To(BeEmpty(), "the normaliser left a per-node value")
		Expect(r.report.Regressions).To(BeEmpty())
		Expect(r.report.Timings).NotTo(BeEmpty())
		Expect(r.report.Old.Status).To(Equal("done"))
		Expect(r.report.New.Status).To(Equal("done"))
		txt, err := os.ReadFile(filepath.Join(r.artifacts, "diff.txt"))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(txt)).To(ContainSubstring("Timings (seconds, OLD -> NEW"))
		Expect(string(txt)).To(HaveSuffix("\nno difference\n"))
	}, NodeTimeout(30*time.Minute))

	It("lists exactly the eight changes of NEW and nothing else", func(ctx SpecContext) {
		r := runDiff(ctx, bin, dir, "eight", "base.yaml", "changed.yaml")
		Expect(r.code).To(Equal(0), r.stderr)
		Expect(r.report.Regressions).To(BeEmpty())
		byKey := map[string]inventory.Change{}
		for _, c := range r.report.Differences {
			byKey[c.Section+" "+c.Key] = c
		}
		Expect(keys(r.report)).To(ConsistOf(
			"packages added tree",                  // one added package
			"packages removed less",                // one removed package
			"units changed nftables.service",       // one enabled service
			"users added reviewer",                 // one new user...
			"groups added reviewers",               // ...in a new group
			"sysctls changed vm.swappiness",        // one sysctl
			"sockets added tcp 127.0.0.1:8765",     // one listening port
			"zfs added dataset bcmreview/extra",    // one ZFS dataset
			"files added /etc/bcmtest-review.conf", // one file under /etc
		))
		Expect(byKey["units nftables.service"].Old).To(HavePrefix("disabled"))
		Expect(byKey["units nftables.service"].New).To(Equal("enabled, active"))
		Expect(byKey["users reviewer"].New).To(ContainSubstring("groups reviewers"))
		Expect(byKey["groups reviewers"].New).To(HaveSuffix("members reviewer"))
		Expect(byKey["sysctls vm.swappiness"].Old).To(Equal("60"))
		Expect(byKey["sysctls vm.swappiness"].New).To(Equal("13"))
		Expect(byKey["sockets tcp 127.0.0.1:8765"].New).To(Equal("python3"))
		Expect(byKey["zfs dataset bcmreview/extra"].New).To(HavePrefix("filesystem /bcmreview/extra"))
		Expect(byKey["files /etc/bcmtest-review.conf"].New).To(HavePrefix("644 root:root text"))
	}, NodeTimeout(30*time.Minute))

	It("exits 1 when NEW's runcmd exits 3, a regression naming the module and its output", func(ctx SpecContext) {
		r := runDiff(ctx, bin, dir, "failing", "base.yaml", "failing.yaml")
		Expect(r.code).To(Equal(1), r.stderr)
		Expect(r.stderr).To(ContainSubstring("REGRESSION: NEW failed"))
		Expect(r.report.New.Failed).To(BeTrue())
		Expect(r.report.Old.Failed).To(BeFalse())
		var failed, module *inventory.Finding
		for i, f := range r.report.Regressions {
			switch f.Kind {
			case "failed":
				failed = &r.report.Regressions[i]
			case "module":
				module = &r.report.Regressions[i]
			}
		}
		Expect(failed).NotTo(BeNil())
		Expect(failed.What).To(ContainSubstring("a regression"))
		Expect(strings.Join(failed.Detail, "\n")).To(And(
			MatchRegexp(`failed modules: .*scripts[-_]user`),
			ContainSubstring("exit code 3"),
			ContainSubstring("bcmtest-review: failing on purpose"),
		))
		Expect(module).NotTo(BeNil())
		// cloud-init names the module with - or _ depending on its cloud.cfg.
		Expect(module.What).To(MatchRegexp(`module modules-final/config-scripts[-_]user: FAIL on NEW \(OLD: SUCCESS\)`))
	}, NodeTimeout(30*time.Minute))

	It("compares FILE at --base HEAD with the work tree's in a temporary git repository", func(ctx SpecContext) {
		repo := GinkgoT().TempDir()
		file := filepath.Join(repo, "cloud_init.yml")
		git := func(args ...string) {
			out, err := exec.CommandContext(ctx, "git", append([]string{"-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false"}, args...)...).CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), string(out))
		}
		git("init", "-q")
		Expect(os.WriteFile(file, fixtures.MustRead(fixtures.VMSmoke), 0o644)).To(Succeed())
		git("add", "cloud_init.yml")
		git("commit", "-q", "-m", "smoke")
		changed := strings.Replace(string(fixtures.MustRead(fixtures.VMSmoke)), "write_files:\n", "write_files:\n  - path: /etc/bcmtest-base.conf\n    content: \"from the work tree\\n\"\n", 1)
		Expect(changed).To(ContainSubstring("/etc/bcmtest-base.conf"))
		Expect(os.WriteFile(file, []byte(changed), 0o644)).To(Succeed())
		r := runDiff(ctx, bin, repo, "base-head", "--base", "HEAD", "cloud_init.yml")
		Expect(r.code).To(Equal(0), r.stderr)
		Expect(r.report.Old.File).To(Equal("HEAD:cloud_init.yml"))
		Expect(r.report.New.File).To(Equal("cloud_init.yml"))
		Expect(keys(r.report)).To(ConsistOf("files added /etc/bcmtest-base.conf"))
	}, NodeTimeout(30*time.Minute))
})
