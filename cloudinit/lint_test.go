package cloudinit

import (
	"slices"
	"testing"
)

func TestLint(t *testing.T) {
	tests := []struct {
		name string
		data string
		want []string
	}{
		{"clean file", smoke, nil},
		{"unknown key with a typo", "#cloud-config\npakages: [jq]\n",
			[]string{"vm.yaml:2:1: pakages: unknown top-level key; cloud-init 22.4 will ignore it; did you mean packages?"}},
		{"unknown key without a near match", "#cloud-config\nbitcoin_network: testnet\n",
			[]string{"vm.yaml:2:1: bitcoin_network: unknown top-level key; cloud-init 22.4 will ignore it"}},
		{"key from a later release", "#cloud-config\ncreate_hostname_file: false\n",
			[]string{"vm.yaml:2:1: create_hostname_file: not known to cloud-init 22.4 (added in cloud-init 23.4); the guest will ignore it"}},
		{"deprecated key", "#cloud-config\napt_update: true\n",
			[]string{"vm.yaml:2:1: apt_update: deprecated in cloud-init 22.4; use package_update"}},
		{"network in user-data", "#cloud-config\nnetwork: {version: 2}\n",
			[]string{"vm.yaml:2:1: network: unknown top-level key: cloud-init does not read network configuration from user-data; put it in the NoCloud network-config file"}},
		{"unknown key in a write_files entry", "#cloud-config\nwrite_files:\n  - path: /x\n    contents: hi\n",
			[]string{"vm.yaml:4:5: write_files.0.contents: unknown key; cloud-init will ignore it; did you mean content?"}},
		{"duplicate key", "#cloud-config\npackages: [jq]\nhostname: a\npackages: [curl]\n",
			[]string{"vm.yaml:4:1: packages: duplicate key (first at line 2); cloud-init keeps only this one"}},
		{"merge key is not unknown", "#cloud-config\nbase: &b {hostname: a}\n<<: *b\n",
			[]string{"vm.yaml:2:1: base: unknown top-level key; cloud-init 22.4 will ignore it"}},
		{"script has no warnings", "#!/bin/sh\necho hi\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Lint("vm.yaml", []byte(tt.data))
			if err != nil {
				t.Fatalf("Lint error: %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Lint warnings\n got %q\nwant %q", got, tt.want)
			}
			if err := Validate("vm.yaml", []byte(tt.data)); err != nil {
				t.Errorf("Validate = %v; warnings must not be errors", err)
			}
		})
	}
}

func TestLintReturnsValidationErrors(t *testing.T) {
	warnings, err := Lint("vm.yaml", []byte("#cloud-config\npakages: jq\npackages: jq\n"))
	if err == nil || err.Error() != "vm.yaml:3:11: packages: must be a list, got a string" || warnings != nil {
		t.Fatalf("Lint = %q, %v; want only the type error", warnings, err)
	}
}

// Every key the type checker knows must also be a key Lint knows, or Lint
// would call a checked key unknown.
func TestKeyTablesAgree(t *testing.T) {
	for key := range typedKeys {
		if _, later := keyAdded[key]; !slices.Contains(knownKeys224, key) && !later {
			t.Errorf("typedKeys has %q, which is in neither knownKeys224 nor keyAdded", key)
		}
	}
	for key := range deprecatedKeys {
		if !slices.Contains(knownKeys224, key) {
			t.Errorf("deprecatedKeys has %q, which is not in knownKeys224", key)
		}
	}
	for key, since := range keyAdded {
		if slices.Contains(knownKeys224, key) {
			t.Errorf("%q is in both knownKeys224 and keyAdded", key)
		}
		if _, err := parseVersion(since); err != nil || !Schema224.before(since) {
			t.Errorf("keyAdded[%q] = %q: must be a release after 22.4 (%v)", key, since, err)
		}
	}
	for key, d := range laterDeprecations {
		if ok, _ := Schema224.known(key); !ok || !Schema224.before(d.since) {
			t.Errorf("laterDeprecations[%q]: must be a key 22.4 knows, deprecated after 22.4", key)
		}
	}
	modules := knownKeys224[:slices.Index(knownKeys224, "add_apt_repo_match")]
	if !slices.IsSorted(modules) {
		t.Errorf("the module keys of knownKeys224 should stay sorted for review")
	}
}

func TestSuggest(t *testing.T) {
	tests := []struct{ key, want string }{
		{"package", "packages"},
		{"run_cmd", "runcmd"},
		{"write-files", "write_files"},
		{"Hostname", "hostname"},
		{"ntpd", "ntp"},
		{"zzzzzz", ""},
	}
	for _, tt := range tests {
		got := suggest(tt.key, knownKeys224)
		want := ""
		if tt.want != "" {
			want = "; did you mean " + tt.want + "?"
		}
		if got != want {
			t.Errorf("suggest(%q) = %q, want %q", tt.key, got, want)
		}
	}
}
