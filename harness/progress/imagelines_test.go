package progress

import "testing"

func TestHarnessImageLines(t *testing.T) {
	for line, want := range map[string]struct {
		stage          string
		begin, end, ok bool
	}{
		"image 3f2a: building Debian bookworm image with mmdebstrap (takes minutes)": {"mmdebstrap", true, false, true},
		"image 3f2a: another run is making it; waiting for that run":                 {"waiting for another run's build", true, false, true},
		"image 3f2a: unpacking root tree (3m31s)":                                    {"packing: unpacking root tree", false, false, true},
		"image 3f2a: writing 8 GiB ext4 root filesystem (3m40s)":                     {"packing: writing 8 GiB ext4 root filesystem", false, false, true},
		"image 3f2a: built in 4m2s (kernel 6.1.0-28-amd64)":                          {"built", false, true, true},
		"image 3f2a: removing unfinished build .3f2a.tmp-1":                          {},
		"CLUS1-01: SSH up after 12s; waiting for cloud-init":                         {},
		"snapshot 9c1d: template booting (2 vCPU, 2048 MiB)":                         {},
	} {
		stage, begin, end, ok := harnessImageLine(line)
		if stage != want.stage || begin != want.begin || end != want.end || ok != want.ok {
			t.Errorf("harnessImageLine(%q) = %q, %v, %v, %v; want %+v", line, stage, begin, end, ok, want)
		}
	}
}
