package heartbeat

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/fakeprovider"
)

// leaderLog is bcm-00's LXD log while it led: two late rounds and a member
// it could not reach, among lines that are not about heartbeats.
const leaderLog = `time="2026-12-03T10:00:01.000000000Z" level=warning msg="Dqlite: attempt 1: server 10.77.0.10:8443: no known leader"
time="2026-12-03T10:00:20.500000000Z" level=warning msg="Heartbeat round duration greater than heartbeat interval" duration=12.5s interval=10s
time="2026-12-03T10:00:31Z" level=warning msg="Failed heartbeat" err="Failed to send heartbeat request: Put \"https://10.77.0.12:8443/internal/database\": context deadline exceeded" remote="10.77.0.12:8443"
time="2026-12-03T10:00:45.25Z" level=warning msg="Heartbeat round duration greater than heartbeat interval" duration=1m3.25s interval=10s
time="2026-12-03T10:01:00Z" level=info msg="Completed heartbeat round" duration=2.1s local="10.77.0.10:8443"
`

var addrs = map[string]string{"10.77.0.10": "bcm-00", "10.77.0.11": "bcm-01", "10.77.0.12": "bcm-02"}

func TestParse(t *testing.T) {
	got := Parse("bcm-00", leaderLog, addrs)
	want := []Event{
		{Time: time.Date(2026, 12, 3, 10, 0, 20, 5e8, time.UTC), Leader: "bcm-00", Late: 2500 * time.Millisecond},
		{Time: time.Date(2026, 12, 3, 10, 0, 31, 0, time.UTC), Leader: "bcm-00", Member: "bcm-02",
			Error: `Failed to send heartbeat request: Put "https://10.77.0.12:8443/internal/database": context deadline exceeded`},
		{Time: time.Date(2026, 12, 3, 10, 0, 45, 25e7, time.UTC), Leader: "bcm-00", Late: 53250 * time.Millisecond},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

func TestSummariseCountsPerMember(t *testing.T) {
	events := append(Parse("bcm-00", leaderLog, addrs),
		Parse("bcm-01", `time="2026-12-03T09:59:00Z" level=warning msg="Heartbeat round duration greater than heartbeat interval" duration=10.1s interval=10s`, addrs)...)
	r := Summarise([]string{"bcm-00", "bcm-01", "bcm-02"}, events)
	want := []Member{
		{Name: "bcm-00", LateRounds: 2, MaxLate: 53250 * time.Millisecond, TotalLate: 55750 * time.Millisecond},
		{Name: "bcm-01", LateRounds: 1, MaxLate: 100 * time.Millisecond, TotalLate: 100 * time.Millisecond},
		{Name: "bcm-02", Failed: 1},
	}
	if !reflect.DeepEqual(r.Members, want) {
		t.Errorf("members %+v\nwant    %+v", r.Members, want)
	}
	if !r.Events[0].Time.Before(r.Events[1].Time) || r.Events[0].Leader != "bcm-01" {
		t.Errorf("events not in time order: %+v", r.Events)
	}
	if !r.Late() {
		t.Error("Late() = false with late rounds")
	}
	if s := r.Summary(); !strings.Contains(s, "bcm-00: 2 round(s) led over the interval (max 53.25s over), 0 failed") {
		t.Errorf("summary %s", s)
	}
	if (Record{Members: []Member{{Name: "x"}}}).Late() {
		t.Error("Late() = true with nothing late")
	}
}

func TestCollectReadsEveryMember(t *testing.T) {
	fake := fakeprovider.New()
	fake.Add(provider.Info{Name: "bcm-00"})
	fake.Add(provider.Info{Name: "bcm-01"})
	fake.ExecFunc = func(name string, argv []string) provider.ExecResult {
		if name == "bcm-00" && argv[0] == "sh" {
			return provider.ExecResult{Stdout: []byte(leaderLog)}
		}
		return provider.ExecResult{ExitCode: 1, Stderr: []byte("no log")}
	}
	r := Collect(context.Background(), fake, []Node{{"bcm-00", "10.77.0.10"}, {"bcm-01", "10.77.0.11"}, {"bcm-02", "10.77.0.12"}}, time.Minute)
	if r.Members[0].LateRounds != 2 || r.Members[2].Failed != 1 {
		t.Errorf("members %+v", r.Members)
	}
	if r.Members[0].Unread != "" || !strings.Contains(r.Members[1].Unread, "exit code 1") || r.Members[2].Unread == "" {
		t.Errorf("unread: %q, %q, %q", r.Members[0].Unread, r.Members[1].Unread, r.Members[2].Unread)
	}
}
