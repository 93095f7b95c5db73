package image

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestMmdebstrapStages(t *testing.T) {
	b, err := os.ReadFile("testdata/mmdebstrap.log")
	if err != nil {
		t.Fatal(err)
	}
	var p MmdebstrapParser
	var got []string
	for _, l := range strings.Split(string(b), "\n") {
		if s, changed := p.Line(l); changed {
			got = append(got, s.String())
		}
	}
	want := []string{
		"bootstrap: apt-get update",
		"bootstrap: downloading packages",
		"bootstrap: extracting archives",
		"bootstrap: installing essential packages",
		"bootstrap: installing essential packages, 1 unpacked, 0 set up",
		"bootstrap: installing essential packages, 2 unpacked, 0 set up",
		"bootstrap: installing essential packages, 2 unpacked, 1 set up",
		"bootstrap: installing essential packages, 2 unpacked, 2 set up",
		"packages: installing remaining packages",
		"packages: installing remaining packages, 3 packages",
		"packages: installing remaining packages, 1/3 unpacked, 0/3 set up",
		"packages: installing remaining packages, 2/3 unpacked, 0/3 set up",
		"packages: installing remaining packages, 3/3 unpacked, 0/3 set up",
		"packages: installing remaining packages, 3/3 unpacked, 1/3 set up",
		"packages: installing remaining packages, 3/3 unpacked, 2/3 set up",
		"packages: installing remaining packages, 3/3 unpacked, 3/3 set up",
		"customising: customize hook",
		"packing: cleaning up",
		"packing: creating tarball",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stages:\n got %q\nwant %q", got, want)
	}
}

func TestMmdebstrapIgnoresWhatComesBeforeAStage(t *testing.T) {
	var p MmdebstrapParser
	for _, l := range []string{"Unpacking foo (1) ...", "0 upgraded, 5 newly installed, 0 to remove", "I: automatically chosen mode: root"} {
		if s, changed := p.Line(l); changed {
			t.Errorf("%q changed the stage to %+v", l, s)
		}
	}
	// The same stage announced twice is no change; the cleanup's two
	// lines are one stage.
	p.Line("I: cleaning apt cache...")
	if _, changed := p.Line("I: cleaning package lists..."); changed {
		t.Error("cleaning package lists after cleaning apt cache is a new stage")
	}
}

// TestTheZFSBuildIsAStageOfItsOwn: dpkg configuring zfs-dkms compiles the
// module for minutes; the next package set up resumes the packages stage
// with its counts.
func TestTheZFSBuildIsAStageOfItsOwn(t *testing.T) {
	var p MmdebstrapParser
	var got []string
	for _, l := range []string{
		"I: installing remaining packages inside the chroot...",
		"0 upgraded, 3 newly installed, 0 to remove and 0 not upgraded.",
		"Unpacking dkms (3.2.0-1) ...",
		"Unpacking zfs-dkms (2.3.2-2) ...",
		"Unpacking tor (0.4.8.16-1) ...",
		"Setting up dkms (3.2.0-1) ...",
		"Setting up zfs-dkms (2.3.2-2) ...",
		"Loading new zfs/2.3.2 DKMS files...",
		"Building for 6.12.38+deb13-amd64",
		"Building initial module zfs/2.3.2 for 6.12.38+deb13-amd64",
		"Setting up tor (0.4.8.16-1) ...",
		"I: running --customize-hook in shell: sh -c 'sh /x/customize.sh \"$1\"' exec /tmp/x",
	} {
		if s, changed := p.Line(l); changed {
			got = append(got, s.String())
		}
	}
	want := []string{
		"packages: installing remaining packages",
		"packages: installing remaining packages, 3 packages",
		"packages: installing remaining packages, 1/3 unpacked, 0/3 set up",
		"packages: installing remaining packages, 2/3 unpacked, 0/3 set up",
		"packages: installing remaining packages, 3/3 unpacked, 0/3 set up",
		"packages: installing remaining packages, 3/3 unpacked, 1/3 set up",
		"ZFS module build: compiling zfs.ko with DKMS",
		"packages: installing remaining packages, 3/3 unpacked, 3/3 set up",
		"customising: customize hook",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stages:\n got %q\nwant %q", got, want)
	}
}

func TestStageClockAddsAStageEnteredAgain(t *testing.T) {
	var c stageClock
	t0 := time.Date(2025, 8, 9, 10, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	if _, ok := c.enter(StageBootstrap, at(0)); !ok {
		t.Fatal("the first stage is no change")
	}
	if _, ok := c.enter(StageBootstrap, at(5)); ok {
		t.Error("the same stage again is a change")
	}
	if ended, _ := c.enter(StagePackages, at(60)); ended != (StageTime{StageBootstrap, time.Minute}) {
		t.Errorf("bootstrap ended as %+v", ended)
	}
	c.enter(StageZFS, at(90))
	c.enter(StagePackages, at(390))
	c.enter(StagePacking, at(400))
	got := StageTimes(c.stop(at(460)))
	if want := "bootstrap 1m0s, packages 40s, ZFS module build 5m0s, packing 1m0s"; got != want {
		t.Errorf("stage times = %q, want %q", got, want)
	}
}
