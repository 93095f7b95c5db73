package e2e

import (
	"errors"
	"strings"
	"testing"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
)

// TestReusedClusterIsJudgedByItsOwnCloudInit: a reused cluster's specs
// judge it by the file it was made with, as a fresh run with
// CLOUD_INIT=FILE does; a file named for the run that is not that one is
// refused, and a cluster with no file recorded is judged by the run's
// file with a note saying so.
func TestReusedClusterIsJudgedByItsOwnCloudInit(t *testing.T) {
	fixture := []byte("#cloud-config\nruncmd:\n  - [sh, -c, echo bcm-host-ready > /var/lib/bcmtest-runcmd-marker]\n")
	mine := []byte("#cloud-config\npackages: [jq]\n")
	recorded := cluster.CloudInitFile{Name: "/home/me/mine.yaml", Data: mine}
	for _, c := range []struct {
		name     string
		in       cloudInitChoice
		wantName string
		wantData []byte
		wantErr  string
		wantNote string
	}{
		{name: "fresh run, fixture", in: cloudInitChoice{GivenName: "fixtures/bcm-qemu.yaml", Given: fixture},
			wantName: "fixtures/bcm-qemu.yaml", wantData: fixture},
		{name: "reuse, no CLOUD_INIT: the recorded file, not the fixture",
			in:       cloudInitChoice{Reuse: "IDN", GivenName: "fixtures/bcm-qemu.yaml", Given: fixture, Recorded: recorded},
			wantName: "/home/me/mine.yaml", wantData: mine},
		{name: "reuse, CLOUD_INIT the same file",
			in:       cloudInitChoice{Reuse: "IDN", Named: true, GivenName: "/elsewhere/mine.yaml", Given: mine, Recorded: recorded},
			wantName: "/home/me/mine.yaml", wantData: mine},
		{name: "reuse, CLOUD_INIT another file",
			in:      cloudInitChoice{Reuse: "IDN", Named: true, GivenName: "/x/other.yaml", Given: fixture, Recorded: recorded},
			wantErr: "BCMTEST_CLOUD_INIT=/x/other.yaml is not the cloud-init file cluster IDN was made with (/home/me/mine.yaml)"},
		{name: "reuse of a cluster with no file recorded",
			in:       cloudInitChoice{Reuse: "OLD", GivenName: "fixtures/bcm-qemu.yaml", Given: fixture, RecordErr: cluster.ErrNoRecordedCloudInit},
			wantName: "fixtures/bcm-qemu.yaml", wantData: fixture, wantNote: "cluster OLD has no cloud-init file recorded"},
		{name: "reuse with an unreadable record",
			in:      cloudInitChoice{Reuse: "BAD", GivenName: "fixtures/bcm-qemu.yaml", Given: fixture, RecordErr: errors.New("checksum mismatch")},
			wantErr: "reading the cloud-init file cluster BAD was made with: checksum mismatch"},
	} {
		name, data, note, err := c.in.decide()
		switch {
		case c.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: err %v, want %q", c.name, err, c.wantErr)
			}
		case err != nil:
			t.Errorf("%s: %v", c.name, err)
		case name != c.wantName || string(data) != string(c.wantData):
			t.Errorf("%s: judged by %q (%q), want %q", c.name, name, data, c.wantName)
		case !strings.Contains(note, c.wantNote) || (c.wantNote == "") != (note == ""):
			t.Errorf("%s: note %q, want %q", c.name, note, c.wantNote)
		}
	}
}
