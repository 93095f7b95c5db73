package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
	"github.com/BitcoinCacheMachine/bcmtest/harness/workload"
)

// TestImageKeyIsTheBuildsKey: the key printed is the one under which the
// provider's image store looks up (and would build) the image, and the one
// the workload image store uses; it is printed in well under a second.
func TestImageKeyIsTheBuildsKey(t *testing.T) {
	stateDir, cacheDir := isolate(t)
	start := time.Now()
	code, out, errOut := runCLI(t, "image", "key")
	took := time.Since(start)
	if code != exitOK || errOut != "" {
		t.Fatalf("image key: exit %d, stderr %q", code, errOut)
	}
	if took > time.Second {
		t.Errorf("image key took %s, want under a second", took)
	}
	key := strings.TrimSpace(out)
	if strings.Count(out, "\n") != 1 || key == "" {
		t.Fatalf("image key printed %q, want one line", out)
	}

	// The provider's recipe, as a run configures it (no recipe given).
	p, err := qemu.New(qemu.Config{Dirs: state.Dirs{State: stateDir, Cache: cacheDir}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if want := p.Recipe().Key(); key != want {
		t.Errorf("image key printed %q, the provider builds %q", key, want)
	}
	// The store finds an image entry under that key: the printed key names
	// the cache directory the build fills.
	writeImage(t, cacheDir, key, time.Now(), 1<<30)
	img, err := p.Images().Get(context.Background(), p.Recipe())
	if err != nil {
		t.Fatalf("the provider's store does not find the image under the printed key: %v", err)
	}
	if img.Dir != filepath.Join(cacheDir, "images", key) {
		t.Errorf("provider's image is at %s, want the printed key's directory", img.Dir)
	}

	code, out, errOut = runCLI(t, "image", "key", "--workload")
	if code != exitOK {
		t.Fatalf("image key --workload: exit %d, %s", code, errOut)
	}
	if got, want := strings.TrimSpace(out), workload.DefaultImageRecipe().Key(); got != want || got == key {
		t.Errorf("image key --workload printed %q, the workload store uses %q (VM image %q)", got, want, key)
	}
	if code, _, errOut := runCLI(t, "image", "key", "extra"); code != exitUsage {
		t.Errorf("image key with an argument: exit %d, want %d (%s)", code, exitUsage, errOut)
	}
}

// A recipe change changes the key: the key is the recipe's hash, not a
// constant.
func TestImageKeyFollowsTheRecipe(t *testing.T) {
	r := image.DefaultRecipe()
	r.Packages = append(r.Packages, "vim")
	if r.Key() == imageKey(image.DefaultRelease, false) {
		t.Errorf("a recipe with one more package has the same key %s", r.Key())
	}
}

// helperImageKeyEnv makes TestImageKeyHelper print the key and exit, for
// the unprivileged run below.
const helperImageKeyEnv = "BCMTEST_TEST_IMAGE_KEY_HELPER"

// TestImageKeyHelper is the command run by TestImageKeyNeedsNoRootNorState
// in a child process; otherwise it does nothing.
func TestImageKeyHelper(t *testing.T) {
	if os.Getenv(helperImageKeyEnv) != "1" {
		t.Skip("only as the child of TestImageKeyNeedsNoRootNorState")
	}
	start := time.Now()
	code := execute(context.Background(), []string{"image", "key"}, os.Stdout, os.Stderr)
	fmt.Fprintf(os.Stderr, "took=%d\n", time.Since(start))
	os.Exit(code)
}

// TestImageKeyNeedsNoRootNorState runs the command as an unprivileged user
// (nobody) with no usable home, state or cache directory.
func TestImageKeyNeedsNoRootNorState(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to drop to another user; as a non-root user the other tests already ran it without root")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv (util-linux) not found")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bcmtest.test")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", bin, "-test.run=^TestImageKeyHelper$")
	cmd.Env = []string{helperImageKeyEnv + "=1", "HOME=/nonexistent", "BCMTEST_STATE_DIR=/nonexistent/state", "BCMTEST_CACHE_DIR=/nonexistent/cache"}
	var errb strings.Builder
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("image key as nobody: %v (%s%s)", err, out, errb.String())
	}
	// The command's own time, without the (race-instrumented) test
	// binary's start.
	var ns int64
	if _, err := fmt.Sscanf(strings.TrimSpace(errb.String()), "took=%d", &ns); err != nil {
		t.Fatalf("child printed no time: %q", errb.String())
	}
	took := time.Duration(ns)
	if got, want := strings.TrimSpace(string(out)), imageKey(image.DefaultRelease, false); got != want {
		t.Errorf("image key as nobody printed %q, want %q", got, want)
	}
	if took > time.Second {
		t.Errorf("image key as nobody took %s, want under a second", took)
	}
}
