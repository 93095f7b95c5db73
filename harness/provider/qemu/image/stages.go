package image

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The build's named stages, in order: what a build reports with the time
// each took. Each of mmdebstrap's steps and the harness's belongs to one.
const (
	StageBootstrap = "bootstrap"        // apt-get update, the essential packages
	StagePackages  = "packages"         // the recipe's packages
	StageZFS       = "ZFS module build" // zfs-dkms compiling the module for the image's kernel
	StageCustomize = "customising"      // the recipe's customize script
	StagePacking   = "packing"          // tarball, root tree, ext4 root filesystem
)

// StageTime is how long one named stage of a build took.
type StageTime struct {
	Stage string        `json:"stage"`
	Took  time.Duration `json:"took_ns"`
}

// Stage is where a VM image build is: mmdebstrap's own steps, then
// the harness's (unpacking the root tree, writing the root filesystem).
type Stage struct {
	// Of is the named stage (StageBootstrap...) the step belongs to.
	Of string
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

// String is the named stage, the step when it says more, and the package
// counts, if any: "packages: installing remaining packages, 3/9 set up".
func (s Stage) String() string {
	step := s.Stage
	if s.Of != "" && s.Of != s.Stage {
		step = s.Of + ": " + s.Stage
	}
	if s.Unpacked == 0 && s.Configured == 0 {
		if s.Total > 0 {
			return fmt.Sprintf("%s, %d packages", step, s.Total)
		}
		return step
	}
	of := ""
	if s.Total > 0 {
		of = "/" + strconv.Itoa(s.Total)
	}
	return fmt.Sprintf("%s, %d%s unpacked, %d%s set up", step, s.Unpacked, of, s.Configured, of)
}

// StageReporter takes structured image build progress. An image store
// whose Progress writer is one reports mmdebstrap's stages to it instead
// of its raw output.
type StageReporter interface {
	ImageStage(Stage)
}

// mmdebstrapStages maps the start of mmdebstrap's "I: " lines to steps
// and the named stage each belongs to.
var mmdebstrapStages = []struct{ prefix, stage, of string }{
	{"running apt-get update", "apt-get update", StageBootstrap},
	{"downloading packages", "downloading packages", StageBootstrap},
	{"extracting archives", "extracting archives", StageBootstrap},
	{"installing essential packages", "installing essential packages", StageBootstrap},
	{"installing remaining packages", "installing remaining packages", StagePackages},
	{"running --setup-hook", "setup hook", StageBootstrap},
	{"running --extract-hook", "extract hook", StageBootstrap},
	{"running --essential-hook", "essential hook", StageBootstrap},
	{"running --customize-hook", "customize hook", StageCustomize},
	{"cleaning package lists", "cleaning up", StagePacking},
	{"cleaning apt cache", "cleaning up", StagePacking},
	{"creating tarball", "creating tarball", StagePacking},
}

// zfsStep is the step in which dpkg configures zfs-dkms, whose postinst
// compiles the module with DKMS: minutes under no other output.
const zfsStep = "compiling zfs.ko with DKMS"

// zfsStart is dpkg's line that starts it; the next "Setting up" line of
// another package ends it.
const zfsStart = "Setting up zfs-dkms "

// newlyInstalled is apt's summary line: "0 upgraded, 312 newly installed, ...".
var newlyInstalled = regexp.MustCompile(`^\d+ upgraded, (\d+) newly installed`)

// MmdebstrapParser follows mmdebstrap's output line by line. The zero
// value is ready.
type MmdebstrapParser struct {
	cur Stage
	// outer is the step the ZFS build interrupted, resumed after it.
	outer Stage
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
				p.cur = Stage{Stage: s.stage, Of: s.of}
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
	case strings.HasPrefix(l, zfsStart) && p.cur.Stage != zfsStep:
		p.outer = p.cur
		p.outer.Configured++
		p.cur = Stage{Stage: zfsStep, Of: StageZFS}
	case strings.HasPrefix(l, "Setting up ") && p.cur.Stage == zfsStep:
		p.cur = p.outer
		p.cur.Configured++
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

// stageClock times a build's named stages. A stage entered again (the
// packages around the ZFS build) adds to its time.
type stageClock struct {
	cur   string
	since time.Time
	times []StageTime
}

// enter moves the clock to stage at now and returns the stage that ended
// with the time it took this turn; ok is false when nothing changed.
func (c *stageClock) enter(stage string, now time.Time) (ended StageTime, ok bool) {
	if stage == c.cur {
		return StageTime{}, false
	}
	if c.cur != "" {
		ended = StageTime{Stage: c.cur, Took: now.Sub(c.since)}
		c.add(ended)
	}
	c.cur, c.since = stage, now
	return ended, true
}

// stop ends the current stage at now and returns every stage's total,
// in the order they first began.
func (c *stageClock) stop(now time.Time) []StageTime {
	if c.cur != "" {
		c.add(StageTime{Stage: c.cur, Took: now.Sub(c.since)})
		c.cur = ""
	}
	return c.times
}

func (c *stageClock) add(t StageTime) {
	for i := range c.times {
		if c.times[i].Stage == t.Stage {
			c.times[i].Took += t.Took
			return
		}
	}
	c.times = append(c.times, t)
}

// StageTimes is "bootstrap 1m2s, packages 3m0s, ...".
func StageTimes(ts []StageTime) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = fmt.Sprintf("%s %s", t.Stage, t.Took.Round(time.Second))
	}
	return strings.Join(parts, ", ")
}
