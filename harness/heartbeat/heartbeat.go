// Package heartbeat reads how late LXD's cluster heartbeats were from the
// members' LXD logs, so that when a member is next reported offline or a
// spec times out on a busy cluster, the run's report has the data.
//
// What LXD logs at its default level (warning) is what this can know: the
// database leader runs one heartbeat round per interval (10 s by default)
// and warns "Heartbeat round duration greater than heartbeat interval"
// with the round's duration when a round overran, and "Failed heartbeat"
// with the member's address when one member could not be reached. So
// lateness is per leader round (attributed to the member that led it),
// and per target member only as failed heartbeats; rounds that were on
// time leave no line. The logs are read at teardown, not sampled live.
package heartbeat

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
)

// Event is one logged heartbeat problem.
type Event struct {
	Time time.Time `json:"time"`
	// Leader is the member that ran the round and logged the line.
	Leader string `json:"leader"`
	// Member is the member a failed heartbeat was for; "" for a late round.
	Member string `json:"member,omitempty"`
	// Late is how far the round overran its interval (late rounds only).
	Late time.Duration `json:"late_ns,omitempty"`
	// Error is LXD's error for a failed heartbeat.
	Error string `json:"error,omitempty"`
}

// Member is one member's heartbeat record for the run.
type Member struct {
	Name string `json:"name"`
	// LateRounds counts the rounds this member led as database leader that
	// took longer than the heartbeat interval; MaxLate is the longest
	// overrun and TotalLate their sum.
	LateRounds int           `json:"late_rounds"`
	MaxLate    time.Duration `json:"max_late_ns"`
	TotalLate  time.Duration `json:"total_late_ns"`
	// Failed counts heartbeats the leader could not deliver to this member.
	Failed int `json:"failed"`
	// Unread says why this member's log could not be read ("" if it was).
	Unread string `json:"unread,omitempty"`
}

// Record is the heartbeat data of one run.
type Record struct {
	Members []Member `json:"members"`
	Events  []Event  `json:"events,omitempty"`
}

// Late reports whether any heartbeat was late or failed.
func (r Record) Late() bool {
	for _, m := range r.Members {
		if m.LateRounds > 0 || m.Failed > 0 {
			return true
		}
	}
	return false
}

// Summary is one line per member, for logs and report entries.
func (r Record) Summary() string {
	var b strings.Builder
	b.WriteString("LXD heartbeats (from the members' LXD logs):")
	for _, m := range r.Members {
		if m.Unread != "" {
			fmt.Fprintf(&b, "\n  %s: log not read: %s", m.Name, m.Unread)
			continue
		}
		fmt.Fprintf(&b, "\n  %s: %d round(s) led over the interval (max %s over), %d failed heartbeat(s) to it",
			m.Name, m.LateRounds, m.MaxLate.Round(time.Millisecond), m.Failed)
	}
	return b.String()
}

var (
	// logfmtPair is one key=value of LXD's log line; values may be quoted.
	logfmtPair = regexp.MustCompile(`(\w+)=("(?:[^"\\]|\\.)*"|\S*)`)
)

// fields parses a logfmt line (time="..." level=warning msg="..." k=v).
func fields(line string) map[string]string {
	out := map[string]string{}
	for _, m := range logfmtPair.FindAllStringSubmatch(line, -1) {
		v := m[2]
		if strings.HasPrefix(v, `"`) && len(v) >= 2 {
			v = strings.ReplaceAll(v[1:len(v)-1], `\"`, `"`)
		}
		out[m[1]] = v
	}
	return out
}

// Messages LXD logs about heartbeats (lxd/cluster/heartbeat.go).
const (
	msgLateRound = "Heartbeat round duration greater than heartbeat interval"
	msgFailed    = "Failed heartbeat"
)

// Parse reads the events in one member's LXD log. addrs maps the cluster
// addresses (host, without port) to member names, to name the member a
// failed heartbeat was for; an unknown address is kept as it is.
func Parse(leader, log string, addrs map[string]string) []Event {
	var out []Event
	for line := range strings.Lines(log) {
		if !strings.Contains(line, msgLateRound) && !strings.Contains(line, msgFailed) {
			continue
		}
		f := fields(line)
		ev := Event{Leader: leader}
		if t, err := time.Parse(time.RFC3339Nano, f["time"]); err == nil {
			ev.Time = t.UTC()
		}
		switch f["msg"] {
		case msgLateRound:
			d, err1 := time.ParseDuration(f["duration"])
			iv, err2 := time.ParseDuration(f["interval"])
			if err1 != nil || err2 != nil {
				continue
			}
			ev.Late = d - iv
		case msgFailed:
			ev.Member, ev.Error = f["remote"], f["err"]
			if host, _, err := net.SplitHostPort(ev.Member); err == nil {
				ev.Member = host
			}
			if n, ok := addrs[ev.Member]; ok {
				ev.Member = n
			}
		default:
			continue
		}
		out = append(out, ev)
	}
	return out
}

// Summarise turns events into one Member per name in names, in that order.
func Summarise(names []string, events []Event) Record {
	at := map[string]*Member{}
	r := Record{Members: make([]Member, len(names)), Events: events}
	for i, n := range names {
		r.Members[i].Name = n
		at[n] = &r.Members[i]
	}
	for _, e := range events {
		if e.Member == "" {
			if m := at[e.Leader]; m != nil {
				m.LateRounds++
				m.TotalLate += e.Late
				m.MaxLate = max(m.MaxLate, e.Late)
			}
			continue
		}
		if m := at[e.Member]; m != nil {
			m.Failed++
		}
	}
	sort.SliceStable(r.Events, func(i, j int) bool { return r.Events[i].Time.Before(r.Events[j].Time) })
	return r
}

// Node is a member and its address on the cluster's network.
type Node struct {
	Name string
	// Address is where the other members reach its LXD (host, no port).
	Address string
}

// logCommand prints LXD's log: the Debian package's log file, the snap's,
// or the journal of either's unit, the first that is there (one source, so
// no line is counted twice).
var logCommand = []string{"sh", "-c", "cat /var/log/lxd/lxd.log 2>/dev/null || cat /var/snap/lxd/common/lxd/logs/lxd.log 2>/dev/null || " +
	"journalctl --no-pager -o cat -u lxd.service -u snap.lxd.daemon.service"}

// Collect reads every node's LXD log at once and summarises it. A node
// whose log cannot be read is listed with Unread set.
func Collect(ctx context.Context, p provider.Provider, nodes []Node, timeout time.Duration) Record {
	addrs := map[string]string{}
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Name
		if n.Address != "" {
			addrs[n.Address] = n.Name
		}
	}
	events := make([][]Event, len(nodes))
	unread := make([]string, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			out, err := provider.Run(ctx, p, n.Name, logCommand...)
			if err != nil {
				unread[i] = err.Error()
				return
			}
			events[i] = Parse(n.Name, out, addrs)
		})
	}
	wg.Wait()
	var all []Event
	for _, e := range events {
		all = append(all, e...)
	}
	r := Summarise(names, all)
	for i := range r.Members {
		r.Members[i].Unread = unread[i]
	}
	return r
}
