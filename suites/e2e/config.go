// Package e2e holds the suites CI and developers run: one LXD cluster per
// run, shared by specs for membership, ZFS, Tor, wait-for-it and cloud-init.
// Configuration comes from environment variables (see README).
package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gruntwork-io/terratest/modules/random"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/suites/framework"
)

// Config is the suite's configuration, read once from the environment.
type Config struct {
	Members       int    // BCMTEST_MEMBERS: joining members (default 1: two nodes)
	Provider      string // BCMTEST_PROVIDER: auto, qemu or multipass
	CloudInit     string // BCMTEST_CLOUD_INIT: absolute path (make makes it so); "" = the project's fixture
	Artifacts     string // BCMTEST_ARTIFACTS/<run-id>
	RunID         string
	KeepOnFailure bool   // BCMTEST_KEEP_ON_FAILURE=1
	CollectAlways bool   // BCMTEST_COLLECT_ALWAYS=1: diagnostics on success too
	Reuse         string // BCMTEST_REUSE=NAME: run against an existing cluster
	SkipTeardown  bool   // BCMTEST_SKIP_TEARDOWN=1: leave the cluster for reruns
	CPUs          int    // BCMTEST_CPUS (default framework.NodeCPUs)
	Memory        string // BCMTEST_MEMORY (default framework.NodeMemory)
	Disk          string // BCMTEST_DISK (default 30G)
	Force         bool   // BCMTEST_FORCE=1: boot a cloud-init file the provider lint warns about
}

func envBool(k string) bool {
	v, _ := strconv.ParseBool(os.Getenv(k))
	return v
}

// LoadConfig reads the environment; bad values are errors naming the variable.
func LoadConfig() (Config, error) {
	c := Config{Members: 1, Provider: os.Getenv("BCMTEST_PROVIDER"), CloudInit: os.Getenv("BCMTEST_CLOUD_INIT"),
		KeepOnFailure: envBool("BCMTEST_KEEP_ON_FAILURE"), CollectAlways: envBool("BCMTEST_COLLECT_ALWAYS"),
		Reuse: os.Getenv("BCMTEST_REUSE"), SkipTeardown: envBool("BCMTEST_SKIP_TEARDOWN"), Force: envBool("BCMTEST_FORCE"),
		CPUs: framework.NodeCPUs, Memory: os.Getenv("BCMTEST_MEMORY"), Disk: os.Getenv("BCMTEST_DISK")}
	if v := os.Getenv("BCMTEST_MEMBERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return c, fmt.Errorf("BCMTEST_MEMBERS=%q: must be a whole number of joining members (0 = single node)", v)
		}
		c.Members = n
	}
	if v := os.Getenv("BCMTEST_CPUS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return c, fmt.Errorf("BCMTEST_CPUS=%q: must be a whole number", v)
		}
		c.CPUs = n
	}
	if c.Memory == "" {
		c.Memory = framework.NodeMemory
	}
	if c.Provider == "" {
		c.Provider = "auto"
	}
	c.RunID = os.Getenv("BCMTEST_RUN_ID")
	if c.RunID == "" {
		c.RunID = time.Now().UTC().Format("20060102-150405") + "-" + strings.ToLower(random.UniqueID())
	}
	base := os.Getenv("BCMTEST_ARTIFACTS")
	if base == "" {
		base = "artifacts"
	}
	abs, err := filepath.Abs(base)
	if err != nil {
		return c, fmt.Errorf("BCMTEST_ARTIFACTS=%q: %w", base, err)
	}
	c.Artifacts = filepath.Join(abs, c.RunID)
	return c, nil
}

// CheckArtifactsDir makes sure reports and diagnostics can be written to
// dir before any VM starts, so a run never ends without its evidence.
func CheckArtifactsDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("artifacts dir %s: must be a writable directory: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".write-test-")
	if err != nil {
		return fmt.Errorf("artifacts dir %s: must be writable: %w", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// cloudInitChoice is what decides which cloud-init file the specs judge
// the cluster by.
type cloudInitChoice struct {
	// Reuse is the reused cluster's name; "" for a run that makes its own.
	Reuse string
	// Named: BCMTEST_CLOUD_INIT named the file; otherwise it is the
	// provider's fixture.
	Named     bool
	GivenName string
	Given     []byte
	// Recorded is the file the reused cluster was made with, as recorded
	// with it, or RecordErr why it could not be read.
	Recorded  cluster.CloudInitFile
	RecordErr error
}

// decide returns the file to judge by. A fresh run is judged by the file
// it boots. A reused cluster is judged by the file it was made with, as a
// fresh run with CLOUD_INIT=that file would be; naming another file for
// the run is a mistake, refused. A cluster made before files were recorded
// is judged by the run's file, with a note saying so.
func (c cloudInitChoice) decide() (name string, data []byte, note string, err error) {
	if c.Reuse == "" {
		return c.GivenName, c.Given, "", nil
	}
	if errors.Is(c.RecordErr, cluster.ErrNoRecordedCloudInit) {
		return c.GivenName, c.Given, fmt.Sprintf("cluster %s has no cloud-init file recorded (made before files were); judging it by %s", c.Reuse, c.GivenName), nil
	}
	if c.RecordErr != nil {
		return "", nil, "", fmt.Errorf("reading the cloud-init file cluster %s was made with: %w", c.Reuse, c.RecordErr)
	}
	if c.Named && !bytes.Equal(c.Given, c.Recorded.Data) {
		return "", nil, "", fmt.Errorf("BCMTEST_CLOUD_INIT=%s is not the cloud-init file cluster %s was made with (%s): leave CLOUD_INIT unset to judge it by that file, or reuse a cluster made from this one",
			c.GivenName, c.Reuse, c.Recorded.Name)
	}
	return c.Recorded.Name, c.Recorded.Data, "", nil
}
