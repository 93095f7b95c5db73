package cloudinit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Schema is the top-level cloud-config keys one cloud-init release acts
// on and deprecates: the release a file is judged by is the one of the
// image that will run it (Debian 12: 22.4, Debian 13: 25.1).
type Schema struct {
	// Version is the release, major.minor: "22.4", "25.1".
	Version string
}

// Schema224 is Debian 12's cloud-init, the judge when none is chosen.
var Schema224 = Schema{Version: "22.4"}

// SchemaFor is the schema of cloud-init version (major.minor, or a full
// version such as 25.1.4); versions before 22.4 are judged as 22.4, the
// oldest this package knows.
func SchemaFor(version string) (Schema, error) {
	v, err := parseVersion(version)
	if err != nil {
		return Schema{}, err
	}
	if v.less(mustVersion(Schema224.Version)) {
		return Schema224, nil
	}
	return Schema{Version: fmt.Sprintf("%d.%d", v.major, v.minor)}, nil
}

// keyAdded is the release that introduced each top-level key 22.4 does
// not know (from cloud-init's changelog and schema-cloud-config-v1.json).
var keyAdded = map[string]string{
	"create_hostname_file": "23.4",
	"ubuntu_pro":           "24.1",
	"enable_rpi_connect":   "25.2",
	"rpi_interfaces":       "25.2",
	"rpi_userconf":         "25.2",
	"disable_piwiz":        "25.2",
}

// deprecation is a key deprecated after 22.4: since which release, and
// what to use instead.
type deprecation struct{ since, use string }

var laterDeprecations = map[string]deprecation{
	"ubuntu_advantage": {"24.1", "use ubuntu_pro"},
	"system_info":      {"24.2", "distro settings are not meant to be changed from user-data"},
}

// known says whether the release acts on key, and when it does not but a
// later one does, which release introduced it.
func (s Schema) known(key string) (ok bool, addedIn string) {
	if since, later := keyAdded[key]; later {
		return !s.before(since), since
	}
	for _, k := range knownKeys224 {
		if k == key {
			return true, ""
		}
	}
	return false, ""
}

// deprecated is the rule for a key this release deprecates, "" if none.
func (s Schema) deprecated(key string) string {
	if use, ok := deprecatedKeys[key]; ok {
		return fmt.Sprintf("deprecated in cloud-init %s; %s", s.release(), use)
	}
	if d, ok := laterDeprecations[key]; ok && !s.before(d.since) {
		return fmt.Sprintf("deprecated since cloud-init %s; %s", d.since, d.use)
	}
	return ""
}

// keys are the top-level keys this release knows, for "did you mean".
func (s Schema) keys() []string {
	out := append([]string(nil), knownKeys224...)
	for k, since := range keyAdded {
		if !s.before(since) {
			out = append(out, k)
		}
	}
	return out
}

// before says whether this release is older than version.
func (s Schema) before(version string) bool {
	return mustVersion(s.release()).less(mustVersion(version))
}

// release is the version; the zero Schema is 22.4's.
func (s Schema) release() string {
	if s.Version == "" {
		return Schema224.Version
	}
	return s.Version
}

// Lint is the package's Lint, judged by this release.
func (s Schema) Lint(name string, data []byte) ([]string, error) {
	ws, err := checkWith(context.Background(), s, name, data)
	if err != nil {
		return nil, err
	}
	if len(ws) == 0 {
		return nil, nil
	}
	return listed(len(ws), func(i int) string { return ws[i].Error() }), nil
}

// UnknownKeys is the package's UnknownKeys, judged by this release. A key
// a later release introduced is not one: Lint warns about it, naming the
// release that introduced it.
func (s Schema) UnknownKeys(name string, data []byte) ([]Problem, error) {
	ws, err := checkWith(context.Background(), s, name, data)
	if err != nil {
		return nil, err
	}
	var out []Problem
	for _, w := range ws {
		if strings.HasPrefix(w.Rule, unknownKeyRule) {
			out = append(out, *w)
		}
	}
	return out, nil
}

// unknownKeyRule starts the rule of every top-level key a release ignores.
const unknownKeyRule = "unknown top-level key"

type version struct{ major, minor int }

func (v version) less(w version) bool {
	return v.major < w.major || v.major == w.major && v.minor < w.minor
}

// parseVersion reads major.minor[.patch...], the form cloud-init's
// versions take.
func parseVersion(s string) (version, error) {
	parts := strings.SplitN(strings.TrimSpace(s), ".", 3)
	if len(parts) < 2 {
		return version{}, fmt.Errorf("cloud-init version %q: must be major.minor, such as 25.1", s)
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || major < 0 || minor < 0 {
		return version{}, fmt.Errorf("cloud-init version %q: must be major.minor, such as 25.1", s)
	}
	return version{major, minor}, nil
}

// mustVersion parses a version this package wrote itself.
func mustVersion(s string) version {
	v, err := parseVersion(s)
	if err != nil {
		panic(err)
	}
	return v
}
