package common

import (
	"strings"
	"testing"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
)

func TestValidateLaunchRejectsBadInput(t *testing.T) {
	ok := provider.LaunchInput{Name: "CLUS1-00", CPUs: 1, MemoryMiB: 1024, DiskGiB: 10, UserData: []byte("#cloud-config\n")}
	if err := ValidateLaunch(ok, 8); err != nil {
		t.Fatalf("valid input rejected: %v", err)
	}
	cases := map[string]func(*provider.LaunchInput){
		"VM name":   func(i *provider.LaunchInput) { i.Name = "CLUS1_00" },
		"cpus":      func(i *provider.LaunchInput) { i.CPUs = 0 },
		"memory":    func(i *provider.LaunchInput) { i.MemoryMiB = 100 },
		"exceeds":   func(i *provider.LaunchInput) { i.MemoryMiB = 1 << 30 },
		"disk":      func(i *provider.LaunchInput) { i.DiskGiB = 4 },
		"user-data": func(i *provider.LaunchInput) { i.UserData = nil },
		"group":     func(i *provider.LaunchInput) { i.Group = "-x" },
	}
	for want, mut := range cases {
		in := ok
		mut(&in)
		err := ValidateLaunch(in, 8)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v", want, err)
		}
	}
}
