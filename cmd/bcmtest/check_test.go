package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/fakeprovider"
	"github.com/spf13/cobra"
)

func TestCheckVMNamesAreUniqueValidVMNames(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 10000; i++ {
		n, err := checkVMName()
		if err != nil {
			t.Fatal(err)
		}
		if err := provider.ValidateVMName(n); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if !strings.HasPrefix(n, "cicheck-") {
			t.Fatalf("%s does not say what it is", n)
		}
		if seen[n] {
			t.Fatalf("%s came twice in %d names", n, i)
		}
		seen[n] = true
	}
}

func TestCheckDeletesOnlyTheVMItLaunched(t *testing.T) {
	data := []byte("#cloud-config\n")
	t.Run("name taken by another run", func(t *testing.T) {
		fake := fakeprovider.New()
		fake.Add(provider.Info{Name: "cicheck-other", Group: "cicheck-other"})
		err := bootCheck(context.Background(), fake, "cicheck-other", "f.yml", data, nodeShape{CPUs: 2, MemoryMiB: 2048}, &bytes.Buffer{})
		if err == nil {
			t.Fatal("a launch onto a taken name succeeded")
		}
		if slices.Contains(fake.Calls, "delete cicheck-other") {
			t.Errorf("deleted the other run's VM: %v", fake.Calls)
		}
		if _, ierr := fake.Info(context.Background(), "cicheck-other"); ierr != nil {
			t.Errorf("the other run's VM is gone: %v", ierr)
		}
	})
	t.Run("launched and passed", func(t *testing.T) {
		fake := fakeprovider.New()
		var out bytes.Buffer
		if err := bootCheck(context.Background(), fake, "cicheck-mine", "f.yml", data, nodeShape{CPUs: 2, MemoryMiB: 2048}, &out); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(fake.Calls, []string{"launch cicheck-mine", "delete cicheck-mine"}) {
			t.Errorf("calls: %v", fake.Calls)
		}
		if !strings.Contains(out.String(), "f.yml: cloud-init done without errors") {
			t.Errorf("report: %s", out.String())
		}
	})
	t.Run("launched and cloud-init failed", func(t *testing.T) {
		fake := fakeprovider.New()
		fake.FailLaunch["cicheck-mine"] = &provider.CloudInitError{VM: "cicheck-mine", Status: "error"}
		var out bytes.Buffer
		if err := bootCheck(context.Background(), fake, "cicheck-mine", "f.yml", data, nodeShape{CPUs: 2, MemoryMiB: 2048}, &out); err == nil {
			t.Fatal("a cloud-init failure passed")
		}
		if !slices.Contains(fake.Calls, "delete cicheck-mine") {
			t.Errorf("left its own failed VM behind: %v", fake.Calls)
		}
		if !strings.Contains(out.String(), "f.yml: FAILED") {
			t.Errorf("report: %s", out.String())
		}
	})
}

func TestCheckLaunchesTheShapeAsked(t *testing.T) {
	fake := fakeprovider.New()
	var got provider.LaunchInput
	fake.OnLaunch = func(in provider.LaunchInput) { got = in }
	if err := bootCheck(context.Background(), fake, "cicheck-shape", "f.yml", []byte("#cloud-config\n"), nodeShape{CPUs: 1, MemoryMiB: 1536}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if got.CPUs != 1 || got.MemoryMiB != 1536 {
		t.Errorf("launched %d vCPU, %d MiB; want 1 vCPU, 1536 MiB", got.CPUs, got.MemoryMiB)
	}
}

func TestShapeFlagsOverrideOnlyWhatWasGiven(t *testing.T) {
	def := nodeShape{CPUs: 2, MemoryMiB: 2048}
	for _, tc := range []struct {
		args []string
		want nodeShape
	}{
		{nil, def},
		{[]string{"--cpus", "1"}, nodeShape{CPUs: 1, MemoryMiB: 2048}},
		{[]string{"--memory", "1536M"}, nodeShape{CPUs: 2, MemoryMiB: 1536}},
		{[]string{"-m", "3G", "--cpus", "4"}, nodeShape{CPUs: 4, MemoryMiB: 3072}},
	} {
		var sf shapeFlags
		c := &cobra.Command{Use: "check"}
		addShapeFlags(c, &sf, "test")
		if err := c.ParseFlags(tc.args); err != nil {
			t.Fatal(err)
		}
		got, err := sf.shape(c, def)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if got != tc.want {
			t.Errorf("%v: got %+v, want %+v", tc.args, got, tc.want)
		}
	}
}
