package cloudinit

import (
	"reflect"
	"testing"
)

func TestParseSchemaOutput(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want []Problem
	}{
		{"22.4 valid", "Valid cloud-config: /tmp/user-data\n", nil},
		{"newer valid", "Valid schema /tmp/user-data\n", nil},
		{"valid with deprecations",
			"Cloud config schema deprecations: apt_update: DEPRECATED: Dropped after April 2027. Use ``package_update``. Default: ``false``\nValid cloud-config: /tmp/ud\n", nil},
		{"empty output", "", nil},
		{"22.4 single line",
			"Cloud config schema errors: packages: 'a string' is not of type 'array', runcmd.0: {'a': 'b'} is not valid under any of the given schemas\n",
			[]Problem{
				{Path: "packages", Rule: "'a string' is not of type 'array'"},
				{Path: "runcmd.0", Rule: "{'a': 'b'} is not valid under any of the given schemas"},
			}},
		{"22.4 via util.error",
			"Error:\nCloud config schema errors: write_files.0: 'path' is a required property, write_files.0: Additional properties are not allowed ('contents', 'mode' were unexpected)\n",
			[]Problem{
				{Path: "write_files.0", Rule: "'path' is a required property"},
				{Path: "write_files.0", Rule: "Additional properties are not allowed ('contents', 'mode' were unexpected)"},
			}},
		{"newer Error: prefix",
			"Error: Cloud config schema errors: package_update: 'yes' is not of type 'boolean'\n",
			[]Problem{{Path: "package_update", Rule: "'yes' is not of type 'boolean'"}}},
		{"newer with file line",
			"Invalid user-data /var/lib/cloud/instance/user-data.txt\nError: Cloud config schema errors: packages: 'x' is not of type 'array'\n",
			[]Problem{{File: "/var/lib/cloud/instance/user-data.txt", Path: "packages", Rule: "'x' is not of type 'array'"}}},
		{"newer multi-file form",
			"Found cloud-config data types: user-data, network-config\n\n1. user-data at /var/lib/cloud/instances/i-1/user-data.txt:\nInvalid user-data /var/lib/cloud/instances/i-1/user-data.txt\nError: Cloud config schema errors: hostname: 1234 is not of type 'string'\n\n2. network-config at /var/lib/cloud/instances/i-1/network-config.json:\nValid schema /var/lib/cloud/instances/i-1/network-config.json\n\nError: Invalid schema: user-data\n\n",
			[]Problem{{File: "/var/lib/cloud/instances/i-1/user-data.txt", Path: "hostname", Rule: "1234 is not of type 'string'"}}},
		{"errors and deprecations",
			"Cloud config schema errors: runcmd: 'x' is not of type 'array'\n\nCloud config schema deprecations: apt_upgrade: DEPRECATED: Use package_upgrade., ca-certs: DEPRECATED\n",
			[]Problem{{Path: "runcmd", Rule: "'x' is not of type 'array'"}}},
		{"22.4 missing header",
			"Cloud config schema errors: format-l1.c1: File /tmp/ud needs to begin with \"#cloud-config\"\n",
			[]Problem{{File: "/tmp/ud", Line: 1, Column: 1, Rule: "File /tmp/ud needs to begin with \"#cloud-config\""}}},
		{"22.4 YAML error spanning lines",
			"Cloud config schema errors: format-l3.c1: File /tmp/ud is not valid yaml. while scanning a simple key\n  in \"<byte string>\", line 3, column 1:\n    b\n    ^\ncould not find expected ':'\n  in \"<byte string>\", line 4, column 1:\n    runcmd: [a, b: c]\n    ^\n",
			[]Problem{{File: "/tmp/ud", Line: 3, Column: 1, Rule: "File /tmp/ud is not valid yaml. while scanning a simple key\n  in \"<byte string>\", line 3, column 1:\n    b\n    ^\ncould not find expected ':'\n  in \"<byte string>\", line 4, column 1:\n    runcmd: [a, b: c]\n    ^"}}},
		{"annotated output",
			"#cloud-config\npackages: jq\t\t# E1\n\n# Errors: -------------\n# E1: packages: 'jq' is not of type 'array'\n\n",
			[]Problem{{Path: "packages", Rule: "'jq' is not of type 'array'"}}},
		{"missing config file",
			"Error:\nConfigfile /tmp/nope does not exist\n",
			[]Problem{{Rule: "cloud-init schema: Configfile /tmp/nope does not exist"}}},
		{"not a dict",
			"Error: Cloud-config is not a YAML dict.\n",
			[]Problem{{Rule: "cloud-init schema: Cloud-config is not a YAML dict."}}},
		{"CRLF output",
			"Cloud config schema errors: timezone: ['UTC'] is not of type 'string'\r\n",
			[]Problem{{Path: "timezone", Rule: "['UTC'] is not of type 'string'"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseSchemaOutput(tt.out)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseSchemaOutput\n got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestLocate(t *testing.T) {
	data := []byte("#cloud-config\npackages: jq\napt:\n  sources:\n    tor.list:\n      source: 1\nwrite_files:\n  - path: /x\n  - content: y\n")
	in := ParseSchemaOutput("Cloud config schema errors: packages: 'jq' is not of type 'array', " +
		"apt.sources.tor.list.source: 1 is not of type 'string', write_files.1: 'path' is a required property, " +
		"write_files.7: out of range, format-l2.c3: File x is not valid yaml. boom\n")
	got := Locate("vm.yaml", data, in)
	want := []Problem{
		{File: "vm.yaml", Line: 2, Column: 11, Path: "packages", Rule: "'jq' is not of type 'array'"},
		{File: "vm.yaml", Line: 6, Column: 15, Path: "apt.sources.tor.list.source", Rule: "1 is not of type 'string'"},
		{File: "vm.yaml", Line: 9, Column: 5, Path: "write_files.1", Rule: "'path' is a required property"},
		{File: "vm.yaml", Line: 8, Column: 3, Path: "write_files.7", Rule: "out of range"},
		{File: "x", Line: 2, Column: 3, Rule: "File x is not valid yaml. boom"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Locate\n got %#v\nwant %#v", got, want)
	}
	if in[0].Line != 0 {
		t.Errorf("Locate modified its input")
	}
}
