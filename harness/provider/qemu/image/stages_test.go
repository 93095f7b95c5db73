package image

import (
	"os"
	"reflect"
	"strings"
	"testing"
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
		"apt-get update",
		"downloading packages",
		"extracting archives",
		"installing essential packages",
		"installing essential packages, 1 unpacked, 0 set up",
		"installing essential packages, 2 unpacked, 0 set up",
		"installing essential packages, 2 unpacked, 1 set up",
		"installing essential packages, 2 unpacked, 2 set up",
		"installing remaining packages",
		"installing remaining packages, 3 packages",
		"installing remaining packages, 1/3 unpacked, 0/3 set up",
		"installing remaining packages, 2/3 unpacked, 0/3 set up",
		"installing remaining packages, 3/3 unpacked, 0/3 set up",
		"installing remaining packages, 3/3 unpacked, 1/3 set up",
		"installing remaining packages, 3/3 unpacked, 2/3 set up",
		"installing remaining packages, 3/3 unpacked, 3/3 set up",
		"customize hook",
		"cleaning up",
		"creating tarball",
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
