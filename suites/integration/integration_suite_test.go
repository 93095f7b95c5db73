// Package integration holds the specs that boot real VMs: the provider
// (label vm), cluster formation (label cluster) and interruption (label
// interrupt). They run only when BCMTEST_INTEGRATION=1 (make integration),
// so `go test ./...` stays fast and VM-free.
package integration

import (
	"os"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/BitcoinCacheMachine/bcmtest/suites/framework"
)

func TestIntegration(t *testing.T) {
	if os.Getenv("BCMTEST_INTEGRATION") != "1" {
		t.Skip("boots real VMs; run with BCMTEST_INTEGRATION=1 (make integration)")
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, "Integration (real VMs)")
}

// ownPID is the owner the qemu provider records on the VMs this process
// launches: BCMTEST_OWNER_PID when set, else this process.
var ownPID = func() int {
	if v, err := strconv.Atoi(os.Getenv("BCMTEST_OWNER_PID")); err == nil && v > 0 {
		return v
	}
	return os.Getpid()
}()

// Every spec's VMs have their kernels checked before the spec's cleanup
// deletes them (AfterEach runs before DeferCleanup).
var _ = AfterEach(func(ctx SpecContext) { checkOwnedVMs(ctx) }, NodeTimeout(5*time.Minute))

// runID makes a unique name (terratest's random suffix), so parallel and
// repeated runs never collide.
func runID(prefix string) string { return framework.RunName(prefix) }
