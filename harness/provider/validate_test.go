package provider

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	good := map[string]int64{"2G": 2 << 30, "2GiB": 2 << 30, "512M": 512 << 20, "30GB": 30 << 30, "1.5G": 3 << 29, "1024": 1024, "1T": 1 << 40}
	for in, want := range good {
		if got, err := ParseSize("memory", in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	bad := map[string]string{"2X": "unknown unit", "": "must not be empty", "-1G": "positive number", "0": "greater than zero", "G": "positive number", "1..2G": "positive number"}
	for in, want := range bad {
		_, err := ParseSize("memory", in)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "memory") {
			t.Errorf("ParseSize(%q) = %v; want %q", in, err, want)
		}
	}
}

func TestValidateVMName(t *testing.T) {
	for _, ok := range []string{"CLUS1-00", "a", "vm-1"} {
		if err := ValidateVMName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "1vm", "vm_1", "vm-", strings.Repeat("a", 64), "vm.1"} {
		if err := ValidateVMName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
