package cloudinit

import (
	"strings"
	"testing"
)

// TestLintJudgesByTheImagesCloudInit: a file using keys of later
// cloud-init releases passes clean for trixie's 25.1; for bookworm's 22.4
// each is reported with the release that introduced it. A key 25.1
// deprecates is reported for 25.1 only, with the release that did.
func TestLintJudgesByTheImagesCloudInit(t *testing.T) {
	file := []byte("#cloud-config\ncreate_hostname_file: false\nubuntu_pro: {token: x}\npackages: [jq]\n")
	trixie, err := SchemaFor("25.1.4")
	if err != nil || trixie.Version != "25.1" {
		t.Fatalf("SchemaFor(25.1.4) = %+v, %v", trixie, err)
	}
	if ws, err := trixie.Lint("vm.yaml", file); err != nil || len(ws) != 0 {
		t.Errorf("25.1: warnings %q, err %v; want none", ws, err)
	}
	ws, err := Schema224.Lint("vm.yaml", file)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"vm.yaml:2:1: create_hostname_file: not known to cloud-init 22.4 (added in cloud-init 23.4); the guest will ignore it",
		"vm.yaml:3:1: ubuntu_pro: not known to cloud-init 22.4 (added in cloud-init 24.1); the guest will ignore it",
	}
	if strings.Join(ws, "\n") != strings.Join(want, "\n") {
		t.Errorf("22.4 warnings\n got %q\nwant %q", ws, want)
	}
	// The package's Lint is 22.4's.
	if plain, _ := Lint("vm.yaml", file); strings.Join(plain, "\n") != strings.Join(want, "\n") {
		t.Errorf("Lint = %q, want 22.4's verdict", plain)
	}

	old := []byte("#cloud-config\nubuntu_advantage: {token: x}\n")
	if ws, _ := Schema224.Lint("vm.yaml", old); len(ws) != 0 {
		t.Errorf("22.4 warned about ubuntu_advantage, which it does not deprecate: %q", ws)
	}
	ws, _ = trixie.Lint("vm.yaml", old)
	if len(ws) != 1 || !strings.Contains(ws[0], "ubuntu_advantage: deprecated since cloud-init 24.1; use ubuntu_pro") {
		t.Errorf("25.1 warnings for ubuntu_advantage: %q", ws)
	}
	// A later key is a warning, not an unknown key (which lint rejects).
	for _, s := range []Schema{Schema224, trixie} {
		if unknown, err := s.UnknownKeys("vm.yaml", file); err != nil || len(unknown) != 0 {
			t.Errorf("%s: unknown keys %v, %v", s.Version, unknown, err)
		}
	}
	// A typo is unknown to both, with the release in the rule.
	typo := []byte("#cloud-config\npakages: [jq]\n")
	for _, s := range []Schema{Schema224, trixie} {
		unknown, _ := s.UnknownKeys("vm.yaml", typo)
		if len(unknown) != 1 || !strings.Contains(unknown[0].Rule, "cloud-init "+s.Version+" will ignore it; did you mean packages?") {
			t.Errorf("%s: unknown keys %v", s.Version, unknown)
		}
	}
}

func TestSchemaFor(t *testing.T) {
	for in, want := range map[string]string{"22.4": "22.4", "22.4.2": "22.4", "21.1": "22.4", "25.1": "25.1", "26.3.1": "26.3"} {
		if s, err := SchemaFor(in); err != nil || s.Version != want {
			t.Errorf("SchemaFor(%q) = %+v, %v; want %s", in, s, err, want)
		}
	}
	for _, bad := range []string{"", "25", "x.1", "25.-1"} {
		if _, err := SchemaFor(bad); err == nil || !strings.Contains(err.Error(), "must be major.minor") {
			t.Errorf("SchemaFor(%q): %v", bad, err)
		}
	}
}
