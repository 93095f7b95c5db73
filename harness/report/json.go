package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// seconds is a duration that reads and writes JSON as a number of seconds,
// rounded to milliseconds: jq, spreadsheets and the chart want numbers, and
// Go's nanosecond integers are unreadable at a glance.
type seconds time.Duration

func (d seconds) MarshalJSON() ([]byte, error) {
	// Milliseconds over 1000 gives the shortest decimal (2.756), where
	// Duration.Seconds would give 2.7560000000000002.
	ms := time.Duration(d).Round(time.Millisecond).Milliseconds()
	return strconv.AppendFloat(nil, float64(ms)/1000, 'f', -1, 64), nil
}

func (d *seconds) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("duration in seconds: %w", err)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > math.MaxInt64/1e9 {
		return fmt.Errorf("duration in seconds out of range: %v", f)
	}
	*d = seconds(time.Duration(math.Round(f * 1e9)))
	return nil
}

// phaseJSON is PhaseTimings on disk. joins_total_s is written for readers
// such as jq and ignored on read, where JoinsTotal recomputes it.
type phaseJSON struct {
	Image       seconds            `json:"image_s"`
	Launch      seconds            `json:"launch_s"`
	Booted      map[string]seconds `json:"booted_s,omitempty"`
	CloudInit   map[string]seconds `json:"cloud_init_s,omitempty"`
	Bootstrap   seconds            `json:"bootstrap_s"`
	BootstrapAt seconds            `json:"bootstrap_done_at_s"`
	Formed      seconds            `json:"formed_at_s"`
	Joins       map[string]seconds `json:"joins_s,omitempty"`
	JoinsTotal  seconds            `json:"joins_total_s"`
	Ready       seconds            `json:"ready_s"`
	Total       seconds            `json:"total_s"`
}

// MarshalJSON writes every phase in seconds (keys end in _s).
func (t PhaseTimings) MarshalJSON() ([]byte, error) {
	return marshal(phaseJSON{
		Image:       seconds(t.Image),
		Booted:      toSeconds(t.Booted),
		BootstrapAt: seconds(t.BootstrapAt),
		Formed:      seconds(t.Formed),
		Launch:      seconds(t.Launch),
		CloudInit:   toSeconds(t.CloudInit),
		Bootstrap:   seconds(t.Bootstrap),
		Joins:       toSeconds(t.Joins),
		JoinsTotal:  seconds(t.JoinsTotal()),
		Ready:       seconds(t.Ready),
		Total:       seconds(t.Total),
	})
}

// UnmarshalJSON is the inverse of MarshalJSON.
func (t *PhaseTimings) UnmarshalJSON(b []byte) error {
	var p phaseJSON
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*t = PhaseTimings{
		Image:       time.Duration(p.Image),
		Booted:      fromSeconds(p.Booted),
		BootstrapAt: time.Duration(p.BootstrapAt),
		Formed:      time.Duration(p.Formed),
		Launch:      time.Duration(p.Launch),
		CloudInit:   fromSeconds(p.CloudInit),
		Bootstrap:   time.Duration(p.Bootstrap),
		Joins:       fromSeconds(p.Joins),
		Ready:       time.Duration(p.Ready),
		Total:       time.Duration(p.Total),
	}
	return nil
}

func toSeconds(m map[string]time.Duration) map[string]seconds {
	if m == nil {
		return nil
	}
	out := make(map[string]seconds, len(m))
	for k, d := range m {
		out[k] = seconds(d)
	}
	return out
}

func fromSeconds(m map[string]seconds) map[string]time.Duration {
	if m == nil {
		return nil
	}
	out := make(map[string]time.Duration, len(m))
	for k, d := range m {
		out[k] = time.Duration(d)
	}
	return out
}

// specJSON is SpecResult on disk, Duration in seconds like the timings.
type specJSON struct {
	Name     string   `json:"name"`
	Labels   []string `json:"labels,omitempty"`
	State    string   `json:"state"`
	Duration seconds  `json:"duration_s"`
	Failure  string   `json:"failure,omitempty"`
}

// MarshalJSON writes Duration as duration_s in seconds.
func (sp SpecResult) MarshalJSON() ([]byte, error) {
	return marshal(specJSON{Name: sp.Name, Labels: sp.Labels, State: sp.State, Duration: seconds(sp.Duration), Failure: sp.Failure})
}

// UnmarshalJSON is the inverse of MarshalJSON.
func (sp *SpecResult) UnmarshalJSON(b []byte) error {
	var j specJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*sp = SpecResult{Name: j.Name, Labels: j.Labels, State: j.State, Duration: time.Duration(j.Duration), Failure: j.Failure}
	return nil
}

// marshal is json.Marshal without HTML escaping: failure text full of
// <string> and <*errors.errorString> stays readable in summary.json, which
// is never inlined into a page (HTML goes through html/template).
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// WriteJSON writes s to path, indented, through a temporary file and a
// rename so a reader (or a killed run) never sees half a summary. It
// writes schema SchemaVersion whatever s.Schema says: the shape is this
// package's.
func WriteJSON(path string, s Summary) error {
	s.Schema = SchemaVersion
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return fmt.Errorf("encoding summary: %w", err)
	}
	return writeFileAtomic(path, buf.Bytes())
}

// SchemaError says a summary is of a schema newer than this package reads.
type SchemaError struct {
	Path   string
	Schema int
}

func (e *SchemaError) Error() string {
	return fmt.Sprintf("reading summary %s: schema %d: this bcmtest reads schemas 1 to %d", e.Path, e.Schema, SchemaVersion)
}

// ReadJSON reads a summary written by WriteJSON, of this schema or an
// older one: a summary without a schema key is schema 1, whose runs have
// no image.
func ReadJSON(path string) (Summary, error) {
	var s Summary
	b, err := os.ReadFile(path)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return Summary{}, fmt.Errorf("reading summary %s: %w", path, err)
	}
	switch {
	case s.Schema == 0:
		s.Schema = 1
	case s.Schema > SchemaVersion || s.Schema < 0:
		return Summary{}, &SchemaError{Path: path, Schema: s.Schema}
	}
	return s, nil
}

// writeFileAtomic writes b to path via a temporary file in the same
// directory, so the rename cannot cross file systems.
func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(b)
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp, 0o644)
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, werr)
	}
	return nil
}
