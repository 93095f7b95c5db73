package provider

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// vmName is what both multipass and LXD accept as an instance/server name:
// a hostname label starting with a letter.
var vmName = regexp.MustCompile(`^[A-Za-z]([A-Za-z0-9-]*[A-Za-z0-9])?$`)

// ValidateVMName rejects names multipass or LXD would reject.
func ValidateVMName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("VM name: must not be empty")
	case len(name) > 63:
		return fmt.Errorf("VM name %q: must be at most 63 characters (it is a hostname), got %d", name, len(name))
	case !vmName.MatchString(name):
		return fmt.Errorf("VM name %q: must start with a letter, contain only letters, digits and hyphens, and not end with a hyphen", name)
	}
	return nil
}

// ParseSize parses sizes like "2G", "2GiB", "512M", "30GB" or a bare number
// of bytes into bytes. Units are binary (K=1024), as multipass treats them.
func ParseSize(field, s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("%s: must not be empty (examples: 2G, 512M)", field)
	}
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToUpper(strings.TrimSpace(t[i:]))
	if num == "" {
		return 0, fmt.Errorf("%s %q: must be a positive number with an optional unit K, M, G or T (examples: 2G, 512M)", field, s)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("%s %q: must be a positive number with an optional unit K, M, G or T: %v", field, s, err)
	}
	mult := map[string]float64{"": 1, "B": 1, "K": 1 << 10, "KB": 1 << 10, "KIB": 1 << 10, "M": 1 << 20, "MB": 1 << 20, "MIB": 1 << 20,
		"G": 1 << 30, "GB": 1 << 30, "GIB": 1 << 30, "T": 1 << 40, "TB": 1 << 40, "TIB": 1 << 40}
	m, ok := mult[unit]
	if !ok {
		return 0, fmt.Errorf("%s %q: unknown unit %q; use K, M, G or T (examples: 2G, 512M)", field, s, t[i:])
	}
	b := int64(v * m)
	if b <= 0 {
		return 0, fmt.Errorf("%s %q: must be greater than zero", field, s)
	}
	return b, nil
}
