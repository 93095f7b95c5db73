package provider_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const backendsRoot = "github.com/BitcoinCacheMachine/bcmtest/harness/provider/"

// shared are the packages under harness/provider that are not backends:
// every backend may import them.
var shared = map[string]bool{"common": true, "fakeprovider": true}

// backendOf names the backend a package belongs to ("qemu" for
// .../provider/qemu/image), or "" for the interface and shared packages.
func backendOf(pkg string) string {
	rest, ok := strings.CutPrefix(pkg, backendsRoot)
	if !ok {
		return ""
	}
	b, _, _ := strings.Cut(rest, "/")
	if shared[b] {
		return ""
	}
	return b
}

// TestNoBackendImportsAnother keeps each backend replaceable on its own:
// shared code lives in provider/common, as kind keeps it in providers/common.
func TestNoBackendImportsAnother(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-json=ImportPath,Deps", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for dec.More() {
		var p struct {
			ImportPath string
			Deps       []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		own := backendOf(p.ImportPath)
		if own == "" {
			continue
		}
		seen++
		for _, d := range p.Deps {
			if other := backendOf(d); other != "" && other != own {
				t.Errorf("%s imports backend %s (through %s); share the code in harness/provider/common", p.ImportPath, other, d)
			}
		}
	}
	if seen < 2 {
		t.Fatalf("found %d backend packages; the walk is not seeing qemu and multipass", seen)
	}
}

func TestBackendOf(t *testing.T) {
	for pkg, want := range map[string]string{
		backendsRoot + "qemu":                                     "qemu",
		backendsRoot + "qemu/image":                               "qemu",
		backendsRoot + "multipass":                                "multipass",
		backendsRoot + "common":                                   "",
		"github.com/BitcoinCacheMachine/bcmtest/harness/provider": "",
	} {
		if got := backendOf(pkg); got != want {
			t.Errorf("backendOf(%s) = %q, want %q", pkg, got, want)
		}
	}
}
