// Package integration holds the specs that boot real VMs: the provider
// (label vm), cluster formation (label cluster) and interruption (label
// interrupt). They run only when BCMTEST_INTEGRATION=1 (make integration),
// so `go test ./...` stays fast and VM-free.
package integration

import (
	"os"
	"testing"

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

// runID makes a unique name (terratest's random suffix), so parallel and
// repeated runs never collide.
func runID(prefix string) string { return framework.RunName(prefix) }
