package multipass

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
)

// infoJSON is shaped as multipass's JSON formatter prints it (Qt's indented
// JSON: four spaces, alphabetical keys, empty arrays split over two lines):
// one running instance with several addresses and one stopped instance
// with every runtime field empty.
const infoJSON = `{
    "errors": [
    ],
    "info": {
        "CLUS1-00": {
            "cpu_count": "2",
            "disks": {
                "sda1": {
                    "total": "20616794112",
                    "used": "2147483648"
                }
            },
            "image_hash": "b63f266fa4bdb7b5ee0a3bd9b59d2b3c5a1fa8b3f1a6b5e6c3f5a2b1c0d9e8f7",
            "image_release": "24.04 LTS",
            "ipv4": [
                "10.109.154.23",
                "10.77.0.10",
                "172.17.0.1"
            ],
            "load": [
                0.25,
                0.1,
                0.03
            ],
            "memory": {
                "total": 2061000000,
                "used": 200000000
            },
            "mounts": {
            },
            "release": "Ubuntu 24.04.1 LTS",
            "snapshot_count": "0",
            "state": "Running"
        },
        "CLUS1-01": {
            "cpu_count": "",
            "disks": {
                "sda1": {
                }
            },
            "image_hash": "b63f266fa4bdb7b5ee0a3bd9b59d2b3c5a1fa8b3f1a6b5e6c3f5a2b1c0d9e8f7",
            "image_release": "24.04 LTS",
            "ipv4": [
            ],
            "load": [
            ],
            "memory": {
            },
            "mounts": {
            },
            "release": "",
            "snapshot_count": "0",
            "state": "Stopped"
        }
    }
}
`

// infoZoneJSON is newer output: a zone per instance, a mount with id maps,
// and fields this package does not know.
const infoZoneJSON = `{
    "errors": [
    ],
    "info": {
        "CLUS2-00": {
            "cpu_count": "4",
            "cpu_times": {
                "cpu": "1 2 3"
            },
            "disks": {
                "sda1": {
                    "total": "32212254720",
                    "used": "3221225472"
                }
            },
            "image_hash": "0123abcd",
            "image_release": "24.04 LTS",
            "ipv4": [
                "10.109.154.40"
            ],
            "load": [
                1.5,
                0.75,
                0
            ],
            "memory": {
                "total": 4116000000,
                "used": 512000000
            },
            "mounts": {
                "/home/ubuntu/src": {
                    "gid_mappings": [
                        "1000:default"
                    ],
                    "source_path": "/home/dev/src",
                    "uid_mappings": [
                        "1000:default"
                    ]
                }
            },
            "release": "Ubuntu 24.04.2 LTS",
            "snapshot_count": "2",
            "state": "Delayed Shutdown",
            "uptime": "up 3 minutes",
            "zone": {
                "available": true,
                "name": "zone1"
            }
        }
    }
}
`

func TestParseInfo(t *testing.T) {
	got, err := parseInfo([]byte(infoJSON))
	if err != nil {
		t.Fatal(err)
	}
	want := infoReply{
		Errors: []json.RawMessage{},
		Info: map[string]instanceInfo{
			"CLUS1-00": {
				CPUCount:      "2",
				Disks:         map[string]disk{"sda1": {Total: "20616794112", Used: "2147483648"}},
				ImageHash:     "b63f266fa4bdb7b5ee0a3bd9b59d2b3c5a1fa8b3f1a6b5e6c3f5a2b1c0d9e8f7",
				ImageRelease:  "24.04 LTS",
				IPv4:          []string{"10.109.154.23", "10.77.0.10", "172.17.0.1"},
				Load:          []flexFloat{0.25, 0.1, 0.03},
				Memory:        memory{Total: 2061000000, Used: 200000000},
				Mounts:        map[string]mount{},
				Release:       "Ubuntu 24.04.1 LTS",
				SnapshotCount: "0",
				State:         "Running",
			},
			"CLUS1-01": {
				CPUCount:      "",
				Disks:         map[string]disk{"sda1": {}},
				ImageHash:     "b63f266fa4bdb7b5ee0a3bd9b59d2b3c5a1fa8b3f1a6b5e6c3f5a2b1c0d9e8f7",
				ImageRelease:  "24.04 LTS",
				IPv4:          []string{},
				Load:          []flexFloat{},
				Memory:        memory{},
				Mounts:        map[string]mount{},
				Release:       "",
				SnapshotCount: "0",
				State:         "Stopped",
			},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseInfo:\n got %+v\nwant %+v", got, want)
	}
}

func TestParseInfoNewerWithZone(t *testing.T) {
	got, err := parseInfo([]byte(infoZoneJSON))
	if err != nil {
		t.Fatal(err)
	}
	want := infoReply{
		Errors: []json.RawMessage{},
		Info: map[string]instanceInfo{
			"CLUS2-00": {
				CPUCount:     "4",
				Disks:        map[string]disk{"sda1": {Total: "32212254720", Used: "3221225472"}},
				ImageHash:    "0123abcd",
				ImageRelease: "24.04 LTS",
				IPv4:         []string{"10.109.154.40"},
				Load:         []flexFloat{1.5, 0.75, 0},
				Memory:       memory{Total: 4116000000, Used: 512000000},
				Mounts: map[string]mount{"/home/ubuntu/src": {
					SourcePath: "/home/dev/src", UIDMappings: []string{"1000:default"}, GIDMappings: []string{"1000:default"},
				}},
				Release:       "Ubuntu 24.04.2 LTS",
				SnapshotCount: "2",
				State:         "Delayed Shutdown",
				Zone:          &zone{Name: "zone1", Available: true},
			},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseInfo:\n got %+v\nwant %+v", got, want)
	}
}

// TestParseInfoTolerant: numbers where strings were, strings where numbers
// were, nulls and missing fields all parse.
func TestParseInfoTolerant(t *testing.T) {
	got, err := parseInfo([]byte(`{"info": {"X": {"cpu_count": 2, "memory": {"total": "1024", "used": ""}, "load": ["0.5", null], "disks": {"sda1": {"total": 5}}, "ipv4": null, "snapshot_count": null}}}`))
	if err != nil {
		t.Fatal(err)
	}
	x := got.Info["X"]
	if x.CPUCount != "2" || x.Memory.Total != 1024 || x.Memory.Used != 0 || !reflect.DeepEqual(x.Load, []flexFloat{0.5, 0}) ||
		x.Disks["sda1"].Total != "5" || x.IPv4 != nil || x.SnapshotCount != "" || x.State != "" || x.Zone != nil || got.Errors != nil {
		t.Errorf("tolerant parse: got %+v", got)
	}
}

func TestParseInfoRejectsGarbage(t *testing.T) {
	for _, in := range []string{"", "not json", `{"info": {"X": {"memory": {"total": "lots"}}}}`, `{"info": {"X": {"cpu_count": {}}}}`} {
		if _, err := parseInfo([]byte(in)); err == nil {
			t.Errorf("parseInfo(%q): want an error", in)
		}
	}
}

// listJSON is `multipass list --format json` with a running instance with
// several addresses, a stopped one, and one mid-launch.
const listJSON = `{
    "list": [
        {
            "ipv4": [
                "10.109.154.23",
                "10.77.0.10"
            ],
            "name": "CLUS1-00",
            "release": "Ubuntu 24.04 LTS",
            "state": "Running"
        },
        {
            "ipv4": [
            ],
            "name": "CLUS1-01",
            "release": "Not Available",
            "state": "Stopped"
        },
        {
            "ipv4": [
            ],
            "name": "CLUS10-00",
            "release": "Not Available",
            "state": "Starting"
        }
    ]
}
`

const listZoneJSON = `{
    "list": [
        {
            "ipv4": [
                "10.109.154.40"
            ],
            "name": "primary",
            "release": "Ubuntu 24.04 LTS",
            "state": "Suspended",
            "zone": {
                "available": false,
                "name": "zone2"
            }
        }
    ]
}
`

func TestParseList(t *testing.T) {
	got, err := parseList([]byte(listJSON))
	if err != nil {
		t.Fatal(err)
	}
	want := listReply{List: []listItem{
		{IPv4: []string{"10.109.154.23", "10.77.0.10"}, Name: "CLUS1-00", Release: "Ubuntu 24.04 LTS", State: "Running"},
		{IPv4: []string{}, Name: "CLUS1-01", Release: "Not Available", State: "Stopped"},
		{IPv4: []string{}, Name: "CLUS10-00", Release: "Not Available", State: "Starting"},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseList:\n got %+v\nwant %+v", got, want)
	}

	got, err = parseList([]byte(listZoneJSON))
	if err != nil {
		t.Fatal(err)
	}
	want = listReply{List: []listItem{
		{IPv4: []string{"10.109.154.40"}, Name: "primary", Release: "Ubuntu 24.04 LTS", State: "Suspended", Zone: &zone{Name: "zone2", Available: false}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseList with zone:\n got %+v\nwant %+v", got, want)
	}

	if _, err := parseList([]byte(`{"list": {}}`)); err == nil {
		t.Error("parseList of an object list: want an error")
	}
}

func TestMapState(t *testing.T) {
	for in, want := range map[string]provider.State{
		"Running":          provider.StateRunning,
		"Stopped":          provider.StateStopped,
		"Starting":         provider.StateStarting,
		"Restarting":       provider.StateStarting,
		"Suspending":       provider.StateSuspended,
		"Suspended":        provider.StateSuspended,
		"Deleted":          provider.StateDeleted,
		"Delayed Shutdown": provider.StateRunning,
		"Unknown":          provider.StateUnknown,
		"RUNNING":          provider.StateRunning,
		"":                 provider.StateUnknown,
		"Hibernating":      provider.StateUnknown,
	} {
		if got := mapState(in); got != want {
			t.Errorf("mapState(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestToInfo(t *testing.T) {
	got := toInfo("CLUS1-00", "Running", []string{"10.109.154.23", "10.77.0.10"}, record{Group: "CLUS1", Owner: 42})
	want := provider.Info{Name: "CLUS1-00", Group: "CLUS1", Provider: "multipass", State: provider.StateRunning,
		PrivateIP: "10.109.154.23", Addresses: []string{"10.109.154.23", "10.77.0.10"}, Owner: 42}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("toInfo:\n got %+v\nwant %+v", got, want)
	}
	if ep := got.Endpoint(8443); ep != "10.109.154.23:8443" {
		t.Errorf("Endpoint(8443) = %q", ep)
	}
	stopped := toInfo("CLUS1-01", "Stopped", nil, record{})
	if stopped.PrivateIP != "" || len(stopped.Addresses) != 0 || stopped.Forwards != nil || stopped.State != provider.StateStopped {
		t.Errorf("stopped toInfo: %+v", stopped)
	}
}
