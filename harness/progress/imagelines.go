package progress

import (
	"strings"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
)

// harnessImageLine reads the image store's own progress lines ("image KEY:
// unpacking root tree (3m2s)"): the stage they start, whether the build
// began or ended, and whether the line is one of them at all.
func harnessImageLine(line string) (stage string, begin, end, ok bool) {
	rest, found := strings.CutPrefix(line, "image ")
	if !found {
		return "", false, false, false
	}
	_, what, found := strings.Cut(rest, ": ")
	if !found {
		return "", false, false, false
	}
	switch {
	case strings.HasPrefix(what, "building "):
		return "mmdebstrap", true, false, true
	case strings.HasPrefix(what, "another run is making it"):
		return "waiting for another run's build", true, false, true
	case strings.HasPrefix(what, "unpacking root tree"):
		return image.StagePacking + ": unpacking root tree", false, false, true
	case strings.HasPrefix(what, "writing ") && strings.Contains(what, " root filesystem"):
		s, _, _ := strings.Cut(what, " (")
		return image.StagePacking + ": " + s, false, false, true
	case strings.HasPrefix(what, "built in "):
		return "built", false, true, true
	}
	return "", false, false, false
}
