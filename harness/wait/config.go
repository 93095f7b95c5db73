package wait

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// EnvVar overrides named intervals: a path to a YAML or JSON file mapping
// names to values, or inline name=value entries separated by commas. A
// value is a timeout ("90s") or a timeout and a poll ("2m,2s" inline, "2m,2s"
// or ["2m", "2s"] in a file); only waits that poll take a poll.
const EnvVar = "BCMTEST_INTERVALS"

// entry is one row of the table: where a name's timeout and poll live.
// poll is nil for a wait that does not poll.
type entry struct {
	name    string
	timeout *time.Duration
	poll    *time.Duration
}

// table is the one mapping of configuration names to fields; Names, Get,
// Set and Load all go through it, so a name cannot mean two things.
func (iv *Intervals) table() []entry {
	pair := func(name string, i *Interval) entry { return entry{name, &i.Timeout, &i.Poll} }
	plain := func(name string, d *time.Duration) entry { return entry{name: name, timeout: d} }
	timeoutOnly := func(name string, i *Interval) entry { return entry{name: name, timeout: &i.Timeout} }
	return []entry{
		plain("image-build", &iv.ImageBuild),
		plain("boot", &iv.Boot),
		plain("cloud-init", &iv.CloudInit),
		plain("bootstrap", &iv.Bootstrap),
		plain("join", &iv.Join),
		plain("ready", &iv.Ready),
		plain("teardown", &iv.Teardown),
		plain("poll", &iv.Poll),
		plain("poll-max", &iv.PollMax),

		timeoutOnly("lxd-waitready", &iv.LXDWaitReady),
		pair("dial", &iv.Dial),
		pair("qmp", &iv.QMP),
		pair("process-exit", &iv.ProcessExit),
		timeoutOnly("vm-stop", &iv.VMStop),
		pair("accel-probe", &iv.AccelProbe),
		pair("apt-cache-start", &iv.AptCacheStart),
		timeoutOnly("archive-read", &iv.ArchiveRead),
		plain("archive-fresh", &iv.ArchiveFresh),
		plain("snapshot-upgrade", &iv.SnapshotUpgrade),
		timeoutOnly("diag-exec", &iv.DiagExec),
		timeoutOnly("multipass-detect", &iv.MultipassDetect),
		pair("retry-transient", &iv.RetryTransient),
		timeoutOnly("screenshot", &iv.Screenshot),
		timeoutOnly("schema-check", &iv.SchemaCheck),

		pair("members-online", &iv.MembersOnline),
		pair("tor-active", &iv.TorActive),
		pair("onion-hostname", &iv.OnionHostname),
		pair("zfs-dataset-gone", &iv.ZFSDatasetGone),
		pair("fault-detect", &iv.FaultDetect),
		pair("fault-recover", &iv.FaultRecover),
		pair("volume-create", &iv.VolumeCreate),
		pair("pool-online", &iv.PoolOnline),
		pair("leak-check", &iv.LeakCheck),
		pair("process-start", &iv.ProcessStart),
		pair("journal-entry", &iv.JournalEntry),

		timeoutOnly("image-import", &iv.ImageImport),
		pair("instance-op", &iv.InstanceOp),
		pair("instance-state", &iv.InstanceState),
		pair("instance-network", &iv.InstanceNetwork),
		pair("member-evacuate", &iv.MemberEvacuate),
	}
}

func (iv *Intervals) lookup(name string) (entry, bool) {
	for _, e := range iv.table() {
		if e.name == name {
			return e, true
		}
	}
	return entry{}, false
}

// Names lists every configuration name, sorted.
func Names() []string {
	var iv Intervals
	var out []string
	for _, e := range iv.table() {
		out = append(out, e.name)
	}
	sort.Strings(out)
	return out
}

// UnknownNameError is a name that is not in the table.
type UnknownNameError struct{ Name string }

func (e *UnknownNameError) Error() string {
	return fmt.Sprintf("unknown interval %q: must be one of %s", e.Name, strings.Join(Names(), ", "))
}

// Get returns the named wait; a plain duration comes back as its Timeout.
func (iv Intervals) Get(name string) (Interval, error) {
	e, ok := iv.lookup(name)
	if !ok {
		return Interval{}, &UnknownNameError{Name: name}
	}
	out := Interval{Timeout: *e.timeout}
	if e.poll != nil {
		out.Poll = *e.poll
	}
	return out, nil
}

// GetIntervals returns the named wait as Gomega's Eventually arguments
// (timeout, then poll when the wait polls), in the style of Cluster API's
// e2e config; the error names an unknown name.
func (iv Intervals) GetIntervals(name string) ([]any, error) {
	in, err := iv.Get(name)
	if err != nil {
		return nil, err
	}
	if in.Poll == 0 {
		return []any{in.Timeout}, nil
	}
	return []any{in.Timeout, in.Poll}, nil
}

// Set changes the named wait, checking the value as Load does.
func (iv *Intervals) Set(name string, in Interval) error {
	e, ok := iv.lookup(name)
	if !ok {
		return &UnknownNameError{Name: name}
	}
	switch {
	case in.Timeout <= 0:
		return fmt.Errorf("%s: %s must be a positive duration", name, e.what())
	case in.Poll < 0:
		return fmt.Errorf("%s: poll %s must be a positive duration", name, in.Poll)
	case in.Poll > 0 && e.poll == nil:
		return fmt.Errorf("%s: takes no poll interval (it is a single duration)", name)
	}
	poll := in.Poll
	if e.poll != nil && poll == 0 {
		poll = *e.poll // a new timeout alone keeps the poll
	}
	if poll > in.Timeout {
		return fmt.Errorf("%s: poll %s must not be longer than its timeout %s", name, poll, in.Timeout)
	}
	*e.timeout = in.Timeout
	if e.poll != nil {
		*e.poll = poll
	}
	return nil
}

func (e entry) what() string {
	if e.poll == nil && (e.name == "poll" || e.name == "poll-max") {
		return "its interval"
	}
	return "its timeout"
}

// WithDefaults fills every zero wait from DefaultIntervals, so a caller
// that sets a few never gets a zero timeout for the rest.
func (iv Intervals) WithDefaults() Intervals {
	d := DefaultIntervals()
	dt := d.table()
	for i, e := range iv.table() {
		if *e.timeout == 0 {
			*e.timeout = *dt[i].timeout
		}
		if e.poll != nil && *e.poll == 0 {
			*e.poll = *dt[i].poll
		}
	}
	return iv
}

// Load returns DefaultIntervals overridden by BCMTEST_INTERVALS. An unknown
// name or a bad duration is an error naming the variable, the name and the
// rule; nothing is half-applied.
func Load() (Intervals, error) {
	iv := DefaultIntervals()
	v := strings.TrimSpace(os.Getenv(EnvVar))
	if v == "" {
		return iv, nil
	}
	if err := iv.Override(v); err != nil {
		return DefaultIntervals(), err
	}
	return iv, nil
}

// LoadOrDefault is Load for code that has no way to report an error (a
// bound on cleanup, a package-level helper); the entry points that build
// providers and clusters call Load first and report a bad value there.
func LoadOrDefault() Intervals {
	iv, err := Load()
	if err != nil {
		return DefaultIntervals()
	}
	return iv
}

// Override applies src, BCMTEST_INTERVALS's value: a file path when it has
// no '=', inline entries otherwise.
func (iv *Intervals) Override(src string) error {
	next := *iv
	var err error
	if strings.Contains(src, "=") {
		err = next.overrideInline(src)
	} else {
		err = next.overrideFile(src)
	}
	if err != nil {
		return err
	}
	*iv = next
	return nil
}

// overrideInline reads "boot=15m,tor-active=2m,2s": a token with '='
// starts an entry, a token without one is the poll of the entry before.
func (iv *Intervals) overrideInline(src string) error {
	type kv struct{ name, timeout, poll string }
	var entries []kv
	for _, tok := range strings.Split(src, ",") {
		tok = strings.TrimSpace(tok)
		name, val, isEntry := strings.Cut(tok, "=")
		switch {
		case isEntry:
			entries = append(entries, kv{name: strings.TrimSpace(name), timeout: strings.TrimSpace(val)})
		case tok == "":
			return fmt.Errorf("%s=%q: empty entry; the format is name=timeout[,poll],...", EnvVar, src)
		case len(entries) == 0:
			return fmt.Errorf("%s=%q: %q has no name; the format is name=timeout[,poll],...", EnvVar, src, tok)
		case entries[len(entries)-1].poll != "":
			return fmt.Errorf("%s=%q: %s: %q after its poll %q; an entry is name=timeout[,poll]", EnvVar, src, entries[len(entries)-1].name, tok, entries[len(entries)-1].poll)
		default:
			entries[len(entries)-1].poll = tok
		}
	}
	for _, e := range entries {
		if err := iv.apply(e.name, e.timeout, e.poll); err != nil {
			return fmt.Errorf("%s=%q: %w", EnvVar, src, err)
		}
	}
	return nil
}

// overrideFile reads a YAML (or JSON, which YAML reads too) mapping of
// names to "timeout", "timeout,poll" or [timeout, poll].
func (iv *Intervals) overrideFile(path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s=%q: no such file; give a YAML or JSON file, or inline name=timeout[,poll],... entries", EnvVar, path)
	}
	if err != nil {
		return fmt.Errorf("%s=%q: %w", EnvVar, path, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("%s=%q: not YAML or JSON: %w", EnvVar, path, err)
	}
	if len(doc.Content) == 0 {
		return nil // an empty file overrides nothing
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return fmt.Errorf("%s=%q: must be a mapping of interval names to durations", EnvVar, path)
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		var timeout, poll string
		switch v.Kind {
		case yaml.ScalarNode:
			timeout, poll, _ = strings.Cut(v.Value, ",")
		case yaml.SequenceNode:
			if len(v.Content) < 1 || len(v.Content) > 2 || v.Content[0].Kind != yaml.ScalarNode || v.Content[len(v.Content)-1].Kind != yaml.ScalarNode {
				return fmt.Errorf("%s=%q: line %d: %s: must be [timeout] or [timeout, poll]", EnvVar, path, v.Line, k.Value)
			}
			timeout = v.Content[0].Value
			if len(v.Content) == 2 {
				poll = v.Content[1].Value
			}
		default:
			return fmt.Errorf("%s=%q: line %d: %s: must be a duration, \"timeout,poll\" or [timeout, poll]", EnvVar, path, v.Line, k.Value)
		}
		if err := iv.apply(k.Value, strings.TrimSpace(timeout), strings.TrimSpace(poll)); err != nil {
			return fmt.Errorf("%s=%q: line %d: %w", EnvVar, path, k.Line, err)
		}
	}
	return nil
}

// apply parses one entry and sets it; poll "" keeps the current poll.
func (iv *Intervals) apply(name, timeout, poll string) error {
	if _, ok := iv.lookup(name); !ok {
		return &UnknownNameError{Name: name}
	}
	t, err := parseDuration(name, "timeout", timeout)
	if err != nil {
		return err
	}
	in := Interval{Timeout: t}
	if poll != "" {
		if in.Poll, err = parseDuration(name, "poll", poll); err != nil {
			return err
		}
	}
	return iv.Set(name, in)
}

func parseDuration(name, what, s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s: %s %q: must be a positive Go duration such as 90s, 2m or 500ms", name, what, s)
	}
	return d, nil
}
