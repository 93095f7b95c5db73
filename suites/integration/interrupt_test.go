package integration

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gruntwork-io/terratest/modules/shell"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/leaks"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
	"github.com/BitcoinCacheMachine/bcmtest/suites/framework"
)

// buildCLI compiles bcmtest once per spec into a temp dir.
func buildCLI(ctx context.Context) string {
	GinkgoHelper()
	bin := filepath.Join(GinkgoT().TempDir(), "bcmtest")
	shell.RunCommandContext(GinkgoT(), ctx, framework.HostCommand("go", "build", "-o", bin, "github.com/BitcoinCacheMachine/bcmtest/cmd/bcmtest"))
	return bin
}

// downLater removes cluster name with the CLI after the spec, whatever it
// left: the safety net, so its failure is only logged.
func downLater(bin, name string) {
	DeferCleanup(func(ctx SpecContext) {
		if err := shell.RunCommandContextE(GinkgoT(), ctx, framework.HostCommand(bin, "down", name)); err != nil {
			GinkgoWriter.Printf("safety net: bcmtest down %s: %v\n", name, err)
		}
	})
}

// startUntil runs the CLI and returns once a line of its stderr contains
// marker; the rest of stderr keeps streaming to the spec's log.
func startUntil(ctx context.Context, bin, marker string, args ...string) *exec.Cmd {
	GinkgoHelper()
	cmd := exec.Command(bin, args...)
	cmd.Env = os.Environ()
	stderr, err := cmd.StderrPipe()
	Expect(err).NotTo(HaveOccurred())
	cmd.Stdout = GinkgoWriter
	Expect(cmd.Start()).To(Succeed())
	found := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		sc := bufio.NewScanner(stderr)
		closed := false
		for sc.Scan() {
			GinkgoWriter.Println("bcmtest| " + sc.Text())
			if !closed && strings.Contains(sc.Text(), marker) {
				close(found)
				closed = true
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case <-found:
	case <-ctx.Done():
		cmd.Process.Kill()
		Fail("interrupted before bcmtest printed " + marker)
	}
	return cmd
}

// leftovers lists what the host still has of a cluster: qemu processes
// (by their VM directories), its segment switch (by its socket
// directory), VM directories, the switch's state and the cluster's state.
func leftovers(dirs state.Dirs, name string) []string {
	vms := filepath.Join(dirs.State, "qemu", "vms")
	segments := filepath.Join(dirs.State, "qemu", "segments")
	out := leaks.Processes(filepath.Join(vms, name+"-"), filepath.Join(segments, name)+"/")
	out = append(out, leaks.Files(vms, 1, name+"-*", "."+name+"-*")...)
	out = append(out, leaks.Files(segments, 1, name)...)
	out = append(out, leaks.Files(cluster.ClustersDir(dirs.State), 1, name, name+".lock")...)
	return out
}

// switchOf is the running segment switch of cluster name, as the host's
// process table shows it (none on the multicast segment).
func switchOf(dirs state.Dirs, name string) []string {
	return leaks.ProcessesWithAll("vde_switch", filepath.Join(dirs.State, "qemu", "segments", name)+"/")
}

var _ = Describe("interrupting the harness", Label("interrupt", "cluster", "ci"), func() {
	It("tears down and exits non-zero on SIGINT during a member's join, leaving nothing", func(ctx SpecContext) {
		dirs, err := state.Default()
		Expect(err).NotTo(HaveOccurred())
		bin := buildCLI(ctx)
		name := runID("int")
		downLater(bin, name)
		cmd := startUntil(ctx, bin, "join token for "+name+"-01", "up", name, "1", "--cpus", "1", "--memory", "1536M", "--disk", "12G", "--pool-size", "2G", "--provider", "qemu")
		if os.Getenv("BCMTEST_SEGMENT") != "multicast" {
			Expect(switchOf(dirs, name)).To(HaveLen(1), "the cluster's segment switch while it forms")
		}
		Expect(cmd.Process.Signal(syscall.SIGINT)).To(Succeed())
		err = cmd.Wait()
		var ee *exec.ExitError
		Expect(errors.As(err, &ee)).To(BeTrue(), "bcmtest exited 0 after SIGINT")
		Expect(ee.ExitCode()).To(Equal(130))
		Expect(leftovers(dirs, name)).To(BeEmpty())
	}, NodeTimeout(20*time.Minute))
})
