package image

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Stage is where a VM image build is: mmdebstrap's own steps, then
// the harness's (unpacking the root tree, writing the root filesystem).
type Stage struct {
	// Stage names the step: "apt-get update", "downloading packages",
	// "extracting archives", "installing essential packages", "installing
	// remaining packages", "customize hook", "cleaning up", "creating
	// tarball", "unpacking root tree", "writing 4 GiB ext4 root filesystem".
	Stage string
	// Unpacked and Configured count the step's "Unpacking X" and "Setting
	// up X" lines; Total is the packages apt said it installs ("N newly
	// installed"), 0 when it did not say.
	Unpacked, Configured, Total int
}

// String is the stage with its package counts, if any.
func (s Stage) String() string {
	if s.Unpacked == 0 && s.Configured == 0 {
		if s.Total > 0 {
			return fmt.Sprintf("%s, %d packages", s.Stage, s.Total)
		}
		return s.Stage
	}
	of := ""
	if s.Total > 0 {
		of = "/" + strconv.Itoa(s.Total)
	}
	return fmt.Sprintf("%s, %d%s unpacked, %d%s set up", s.Stage, s.Unpacked, of, s.Configured, of)
}

// StageReporter takes structured image build progress. An image store
// whose Progress writer is one reports mmdebstrap's stages to it instead
// of its raw output.
type StageReporter interface {
	ImageStage(Stage)
}

// mmdebstrapStages maps the start of mmdebstrap's "I: " lines to stages.
var mmdebstrapStages = []struct{ prefix, stage string }{
	{"running apt-get update", "apt-get update"},
	{"downloading packages", "downloading packages"},
	{"extracting archives", "extracting archives"},
	{"installing essential packages", "installing essential packages"},
	{"installing remaining packages", "installing remaining packages"},
	{"running --setup-hook", "setup hook"},
	{"running --extract-hook", "extract hook"},
	{"running --essential-hook", "essential hook"},
	{"running --customize-hook", "customize hook"},
	{"cleaning package lists", "cleaning up"},
	{"cleaning apt cache", "cleaning up"},
	{"creating tarball", "creating tarball"},
}

// newlyInstalled is apt's summary line: "0 upgraded, 312 newly installed, ...".
var newlyInstalled = regexp.MustCompile(`^\d+ upgraded, (\d+) newly installed`)

// MmdebstrapParser follows mmdebstrap's output line by line. The zero
// value is ready.
type MmdebstrapParser struct {
	cur Stage
}

// Line reads one line of mmdebstrap's output and returns the build's stage
// and whether this line changed it (a new stage, a package count).
func (p *MmdebstrapParser) Line(line string) (Stage, bool) {
	l := strings.TrimSpace(line)
	if rest, ok := strings.CutPrefix(l, "I: "); ok {
		for _, s := range mmdebstrapStages {
			if strings.HasPrefix(rest, s.prefix) {
				if s.stage == p.cur.Stage {
					return p.cur, false
				}
				p.cur = Stage{Stage: s.stage}
				return p.cur, true
			}
		}
		return p.cur, false
	}
	switch {
	case p.cur.Stage == "":
		return p.cur, false
	case strings.HasPrefix(l, "Unpacking "):
		p.cur.Unpacked++
	case strings.HasPrefix(l, "Setting up "):
		p.cur.Configured++
	default:
		m := newlyInstalled.FindStringSubmatch(l)
		if m == nil {
			return p.cur, false
		}
		n, _ := strconv.Atoi(m[1])
		if n == p.cur.Total {
			return p.cur, false
		}
		p.cur.Total = n
	}
	return p.cur, true
}
