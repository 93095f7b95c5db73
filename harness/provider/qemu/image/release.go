package image

import (
	"fmt"
	"sort"
	"strings"
)

// Release is a Debian release the embedded provider's nodes can run: the
// image choice (--image, BCMTEST_IMAGE, make IMAGE=).
type Release string

// The releases with a recipe.
const (
	Bookworm Release = "bookworm" // Debian 12: cloud-init 22.4, kernel 6.1
	Trixie   Release = "trixie"   // Debian 13: cloud-init 25.1, kernel 6.12
)

// DefaultRelease is what nodes run when nothing chooses: Debian 12 until
// every suite has passed on trixie.
const DefaultRelease = Bookworm

// ImageEnv is the environment variable that chooses the release when no
// --image flag does.
const ImageEnv = "BCMTEST_IMAGE"

// releaseInfo is what differs between the releases' images.
type releaseInfo struct {
	// debianVersion is the release's number, for messages ("Debian 13").
	debianVersion string
	// cloudInit is the cloud-init version the release ships (major.minor),
	// whose schema judges a cloud-init file for this image.
	cloudInit string
	// pythonLib is the Python standard library the seed gate reads into
	// the page cache before the snapshot.
	pythonLib string
	// cloudInitNetwork is the unit of cloud-init's network stage, the one
	// that writes the host keys: cloud-init.service until 24.3, then
	// cloud-init-network.service.
	cloudInitNetwork string
	// routeNotGateway: the nodes' default route goes in the network-config
	// as a route, not gateway4, which cloud-init 23.4+ reports as a
	// deprecation that makes `cloud-init status` exit 2 (degraded done).
	routeNotGateway bool
	// extraCustomize is shell the release's customize script runs after
	// the common part (empty, or lines ending in a newline).
	extraCustomize string
}

var releases = map[Release]releaseInfo{
	Bookworm: {debianVersion: "12", cloudInit: "22.4", pythonLib: "/usr/lib/python3.11", cloudInitNetwork: "cloud-init.service"},
	Trixie: {debianVersion: "13", cloudInit: "25.1", pythonLib: "/usr/lib/python3.13", cloudInitNetwork: "cloud-init-network.service",
		routeNotGateway: true,
		// Since 24.3 one cloud-init process (cloud-init-main.service) runs
		// every stage, started before cloud-init-local.service. In the
		// template it must not start at all: its Python state would be
		// every restored node's. So it waits for the seed gate too.
		extraCustomize: `mkdir -p "$root/etc/systemd/system/cloud-init-main.service.d"
printf '[Unit]\nAfter=bcmtest-seed-gate.service\n' > "$root/etc/systemd/system/cloud-init-main.service.d/bcmtest-seed.conf"
`},
}

// Releases lists the releases with a recipe, sorted by name.
func Releases() []Release {
	out := make([]Release, 0, len(releases))
	for r := range releases {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// ReleaseNames is Releases as one phrase for messages: "bookworm or trixie".
func ReleaseNames() string {
	rs := Releases()
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = string(r)
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// UnknownReleaseError says a name is no release with a recipe.
type UnknownReleaseError struct{ Name string }

func (e *UnknownReleaseError) Error() string {
	return fmt.Sprintf("image %q: must be %s", e.Name, ReleaseNames())
}

// ParseRelease checks a release name; "" is the default release.
func ParseRelease(name string) (Release, error) {
	if name == "" {
		return DefaultRelease, nil
	}
	r := Release(name)
	if _, ok := releases[r]; !ok {
		return "", &UnknownReleaseError{Name: name}
	}
	return r, nil
}

// CloudInitVersion is the cloud-init version (major.minor) the release's
// image ships: the schema a cloud-init file for its nodes is judged by.
func (r Release) CloudInitVersion() string { return releases[r].cloudInit }

// DefaultRouteAsRoute says the release's cloud-init wants the default
// route as a route in network-config, not as the deprecated gateway4.
func (r Release) DefaultRouteAsRoute() bool { return releases[r].routeNotGateway }

// Long is the release with its Debian version: "trixie (Debian 13)".
func (r Release) Long() string {
	if info, ok := releases[r]; ok {
		return fmt.Sprintf("%s (Debian %s)", string(r), info.debianVersion)
	}
	return string(r)
}

// Release is the release a recipe builds (its suite).
func (r Recipe) Release() Release { return Release(r.Suite) }

// CurrentKeys are the keys of every release's recipe: the images (and
// their snapshots) a prune keeps, whichever release the run chose.
func CurrentKeys() []string {
	var keys []string
	for _, r := range Releases() {
		keys = append(keys, RecipeFor(r).Key())
	}
	return keys
}
