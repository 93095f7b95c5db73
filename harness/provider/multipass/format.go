package multipass

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
)

// infoReply is `multipass info NAME --format json`.
type infoReply struct {
	Errors []json.RawMessage       `json:"errors"`
	Info   map[string]instanceInfo `json:"info"`
}

// instanceInfo is one instance in infoReply. multipass prints counts and
// disk sizes as strings and memory as numbers, and leaves fields empty or
// out for a stopped instance; the flex types accept either spelling so a
// formatter change does not break every run.
type instanceInfo struct {
	CPUCount      flexString       `json:"cpu_count"`
	Disks         map[string]disk  `json:"disks"`
	ImageHash     string           `json:"image_hash"`
	ImageRelease  string           `json:"image_release"`
	IPv4          []string         `json:"ipv4"`
	Load          []flexFloat      `json:"load"`
	Memory        memory           `json:"memory"`
	Mounts        map[string]mount `json:"mounts"`
	Release       string           `json:"release"`
	SnapshotCount flexString       `json:"snapshot_count"`
	State         string           `json:"state"`
	Zone          *zone            `json:"zone"`
}

type disk struct {
	Total flexString `json:"total"`
	Used  flexString `json:"used"`
}

type memory struct {
	Total flexInt `json:"total"`
	Used  flexInt `json:"used"`
}

type mount struct {
	SourcePath  string   `json:"source_path"`
	UIDMappings []string `json:"uid_mappings"`
	GIDMappings []string `json:"gid_mappings"`
}

// zone is the availability zone newer multipass versions report.
type zone struct {
	Name      string `json:"name"`
	Available bool   `json:"available"`
}

// listReply is `multipass list --format json`.
type listReply struct {
	List []listItem `json:"list"`
}

type listItem struct {
	IPv4    []string `json:"ipv4"`
	Name    string   `json:"name"`
	Release string   `json:"release"`
	State   string   `json:"state"`
	Zone    *zone    `json:"zone"`
}

func parseInfo(b []byte) (infoReply, error) {
	var r infoReply
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("parsing `multipass info --format json` output: %w: %s", err, snippet(b))
	}
	return r, nil
}

func parseList(b []byte) (listReply, error) {
	var r listReply
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("parsing `multipass list --format json` output: %w: %s", err, snippet(b))
	}
	return r, nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return strconv.Quote(s)
}

// mapState turns multipass's state strings into provider states. The
// transitional ones map to where the instance is heading or what it can do
// now: Restarting is coming up (Starting), Suspending is no longer usable
// (Suspended), Delayed Shutdown still runs (Running).
func mapState(s string) provider.State {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "running", "delayed shutdown":
		return provider.StateRunning
	case "stopped":
		return provider.StateStopped
	case "starting", "restarting":
		return provider.StateStarting
	case "suspended", "suspending":
		return provider.StateSuspended
	case "deleted":
		return provider.StateDeleted
	}
	return provider.StateUnknown
}

// flexString is a JSON string, or a number kept as its text.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		*f = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		err := json.Unmarshal(b, &s)
		*f = flexString(s)
		return err
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("want a string or number, got %s", b)
	}
	*f = flexString(n.String())
	return nil
}

// flexInt is a JSON integer, or a string holding one ("" and null are 0).
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s, err := numberText(b)
	if err != nil || s == "" {
		*f = 0
		return err
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		fl, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil {
			return fmt.Errorf("want an integer, got %s", b)
		}
		v = int64(fl)
	}
	*f = flexInt(v)
	return nil
}

// flexFloat is a JSON number, or a string holding one ("" and null are 0).
type flexFloat float64

func (f *flexFloat) UnmarshalJSON(b []byte) error {
	s, err := numberText(b)
	if err != nil || s == "" {
		*f = 0
		return err
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("want a number, got %s", b)
	}
	*f = flexFloat(v)
	return nil
}

// numberText is the text of a JSON number or string; "" for null.
func numberText(b []byte) (string, error) {
	var s flexString
	if err := s.UnmarshalJSON(b); err != nil {
		return "", err
	}
	return strings.TrimSpace(string(s)), nil
}
