package report

import (
	"sort"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/heartbeat"
	"github.com/BitcoinCacheMachine/bcmtest/harness/kernelcheck"
)

// Spec states as recorded in SpecResult.State. Ginkgo has more (pending,
// panicked, timedout, ...); SpecsFromGinkgo folds them into these three so
// counts and flake detection have one meaning.
const (
	StatePassed  = "passed"
	StateFailed  = "failed"
	StateSkipped = "skipped"
)

// PhaseTimings are the wall times of bringing one cluster up.
//
// Its fields mirror cluster.Timings field for field (same names, types and
// order) so a caller converts with report.PhaseTimings(c.Timings()) without
// this package importing the cluster package and its LXD client.
// In JSON every duration is a number of seconds (see MarshalJSON).
type PhaseTimings struct {
	Image       time.Duration            // VM image and booted snapshot: built, or looked up
	Launch      time.Duration            // all VMs started and cloud-init done
	Booted      map[string]time.Duration // per node: launch start to its cloud-init done
	CloudInit   map[string]time.Duration // per node, from cloud-init's own status
	Bootstrap   time.Duration            // first member initialised as a cluster
	BootstrapAt time.Duration            // launch start to bootstrap done
	Joins       map[string]time.Duration // per joining member, token to Online
	Formed      time.Duration            // launch start to the last member Online
	Ready       time.Duration            // roles settled after the last join
	Total       time.Duration
}

// JoinsTotal is the sum of the per-member join times: joins run one after
// another, so the sum is the phase's share of Total.
func (t PhaseTimings) JoinsTotal() time.Duration {
	var sum time.Duration
	for _, d := range t.Joins {
		sum += d
	}
	return sum
}

// complete reports whether Up finished and so every phase was measured; a
// cluster that failed to come up leaves Total at zero, and its partial
// phases would drag medians down.
func (t PhaseTimings) complete() bool { return t.Total > 0 }

// SpecResult is the outcome of one spec in one run. In JSON its keys are
// name, labels, state, duration_s (seconds) and failure.
type SpecResult struct {
	// Name is the full spec text (containers and leaf), the key flakes are
	// matched by across runs.
	Name     string
	Labels   []string
	State    string // StatePassed, StateFailed or StateSkipped
	Duration time.Duration
	Failure  string // the failure message, for failed specs
}

// Run is one cluster brought up at one size on one node image and the
// suites run against it.
type Run struct {
	// Image is the Debian release the cluster's nodes ran (bookworm,
	// trixie); "" when not known (a summary of schema 1).
	Image string `json:"image"`
	// Size is the number of joining members; the cluster has Size+1 nodes.
	Size int `json:"size"`
	// Attempt numbers repeats of the same image and size from 1.
	Attempt int       `json:"attempt"`
	Started time.Time `json:"started"`
	// Passed is the runner's verdict: the cluster came up and no spec failed.
	Passed bool `json:"passed"`
	// Error is a failure outside the specs, such as the cluster not coming
	// up; Specs may then be empty.
	Error   string       `json:"error,omitempty"`
	Timings PhaseTimings `json:"timings"`
	Specs   []SpecResult `json:"specs"`
	// Kernel is what the teardown's kernel check found on the run's nodes
	// (kernel-findings.json). Without BCMTEST_KEEP_GOING a finding has
	// failed the run already; with it, this is where it shows.
	Kernel []kernelcheck.Finding `json:"kernel_findings,omitempty"`
	// Heartbeats is LXD's heartbeat lateness per member during the run,
	// read from the members' LXD logs at teardown (heartbeats.json).
	Heartbeats []heartbeat.Member `json:"heartbeats,omitempty"`
}

// Nodes is the cluster's node count: the bootstrap node plus the members.
func (r Run) Nodes() int { return r.Size + 1 }

// Counts tallies the run's specs by state.
func (r Run) Counts() (passed, failed, skipped int) {
	for _, sp := range r.Specs {
		switch sp.State {
		case StatePassed:
			passed++
		case StateFailed:
			failed++
		default:
			skipped++
		}
	}
	return passed, failed, skipped
}

// SchemaVersion is the shape of summary.json that WriteJSON writes: 2 added
// the node image as an axis beside the size (schema, images, and each
// run's image); 1 (files without a schema key) had sizes only.
const SchemaVersion = 2

// Summary is everything one matrix run produced, the single input of every
// renderer in this package.
type Summary struct {
	// Schema is the version of the JSON shape: WriteJSON writes
	// SchemaVersion, ReadJSON reads a file without one as 1.
	Schema   int    `json:"schema"`
	RunID    string `json:"run_id"`
	Host     string `json:"host"`
	Provider string `json:"provider"`
	// Accel is the VMs' acceleration (kvm, tcg): it explains most of the
	// difference in timings between hosts.
	Accel    string    `json:"accel"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Sizes are the member counts the run was asked for; a size without
	// runs still gets a row, so an aborted matrix shows what is missing.
	Sizes []int `json:"sizes"`
	// Images are the node images the run was asked for, in the order
	// given; like a size, an image without runs still gets its rows.
	Images []string `json:"images"`
	Repeat int      `json:"repeat"`
	Runs   []Run    `json:"runs"`
}

// Passed reports whether there was at least one run and every run passed.
func (s Summary) Passed() bool {
	for _, r := range s.Runs {
		if !r.Passed {
			return false
		}
	}
	return len(s.Runs) > 0
}

// Cell is one point of the matrix: a node image and a size. Repeats of a
// cell are the runs that can reveal a flake.
type Cell struct {
	Image string
	Size  int
}

// Cell is the point of the matrix the run belongs to.
func (r Run) Cell() Cell { return Cell{r.Image, r.Size} }

// Flake is a spec that both passed and failed at one image and size
// across repeats.
type Flake struct {
	Image string
	Name  string
	// Sizes are the sizes (ascending) at which it did so on Image.
	Sizes []int
}

// Flakes lists the specs that both passed and failed at the same image
// and size across repeats, by spec name and then in image order: failures
// that a re-run would hide, and so the ones worth a look before they are
// blamed on the cluster. The order of the runs does not matter: a pass
// after a failure and a failure after a pass are the same evidence that the
// spec does not decide the same way twice. A spec that fails on one image
// and passes on the other is no flake: the images differ.
func (s Summary) Flakes() []Flake {
	type key struct {
		name string
		cell Cell
	}
	passed, failed := map[key]bool{}, map[key]bool{}
	for _, r := range s.Runs {
		for _, sp := range r.Specs {
			k := key{sp.Name, r.Cell()}
			switch sp.State {
			case StatePassed:
				passed[k] = true
			case StateFailed:
				failed[k] = true
			}
		}
	}
	type spec struct{ image, name string }
	sizes := map[spec][]int{}
	for k := range failed {
		if passed[k] {
			sp := spec{k.cell.Image, k.name}
			sizes[sp] = append(sizes[sp], k.cell.Size)
		}
	}
	rank := s.imageRank()
	out := make([]Flake, 0, len(sizes))
	for sp, ns := range sizes {
		sort.Ints(ns)
		out = append(out, Flake{Image: sp.image, Name: sp.name, Sizes: ns})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return rank[out[i].Image] < rank[out[j].Image]
	})
	return out
}

// sizes returns the requested sizes plus any size that has runs, ascending
// and without duplicates, the order of table rows and chart points.
func (s Summary) sizes() []int {
	seen := map[int]bool{}
	var out []int
	add := func(n int) {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, n := range s.Sizes {
		add(n)
	}
	for _, r := range s.Runs {
		add(r.Size)
	}
	sort.Ints(out)
	return out
}

// images returns the requested images in the order given, then any other
// image that has runs, by name: the order of the table's row groups and
// of the chart's lines. A summary of schema 1 has one image, "".
func (s Summary) images() []string {
	seen := map[string]bool{}
	var out, extra []string
	for _, im := range s.Images {
		if !seen[im] {
			seen[im] = true
			out = append(out, im)
		}
	}
	for _, r := range s.Runs {
		if !seen[r.Image] {
			seen[r.Image] = true
			extra = append(extra, r.Image)
		}
	}
	sort.Strings(extra)
	return append(out, extra...)
}

// imageRank is each image's place in images(), for sorting.
func (s Summary) imageRank() map[string]int {
	rank := map[string]int{}
	for i, im := range s.images() {
		rank[im] = i
	}
	return rank
}

// SpecStat is one spec's record on one image over every run of the
// summary on that image.
type SpecStat struct {
	Image string
	Name  string
	// Passed and Failed count the runs in which the spec ran; skipped
	// runs are not counted.
	Passed, Failed int
	// Flaky counts the failures that did not hold: the spec failed in a
	// run and passed in another run of the same image and size (a
	// repeat), so a re-run would have hidden the failure. FlakySizes are
	// those sizes.
	Flaky      int
	FlakySizes []int
}

// Runs is how many times the spec ran (passed or failed).
func (st SpecStat) Runs() int { return st.Passed + st.Failed }

// FlakeRate is Flaky over Runs, 0 when the spec never ran.
func (st SpecStat) FlakeRate() float64 {
	if st.Runs() == 0 {
		return 0
	}
	return float64(st.Flaky) / float64(st.Runs())
}

// SpecStats tallies every spec per image over the runs: passes, failures
// and flaky failures, most flaky first, then most failed, then by name and
// image.
func (s Summary) SpecStats() []SpecStat {
	type key struct{ image, name string }
	flakySizes := map[key][]int{}
	for _, f := range s.Flakes() {
		flakySizes[key{f.Image, f.Name}] = f.Sizes
	}
	at := map[key]*SpecStat{}
	var order []key
	for _, r := range s.Runs {
		for _, sp := range r.Specs {
			k := key{r.Image, sp.Name}
			st := at[k]
			if st == nil {
				st = &SpecStat{Image: r.Image, Name: sp.Name, FlakySizes: flakySizes[k]}
				at[k] = st
				order = append(order, k)
			}
			switch sp.State {
			case StatePassed:
				st.Passed++
			case StateFailed:
				st.Failed++
				for _, n := range st.FlakySizes {
					if n == r.Size {
						st.Flaky++
					}
				}
			}
		}
	}
	out := make([]SpecStat, 0, len(order))
	for _, k := range order {
		out = append(out, *at[k])
	}
	rank := s.imageRank()
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Flaky != out[j].Flaky {
			return out[i].Flaky > out[j].Flaky
		}
		if out[i].Failed != out[j].Failed {
			return out[i].Failed > out[j].Failed
		}
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return rank[out[i].Image] < rank[out[j].Image]
	})
	return out
}

// SpecTotals sums SpecStats: spec runs, failures and flaky failures over
// the whole summary, the numbers of its flake rate.
func (s Summary) SpecTotals() (runs, failed, flaky int) {
	for _, st := range s.SpecStats() {
		runs, failed, flaky = runs+st.Runs(), failed+st.Failed, flaky+st.Flaky
	}
	return runs, failed, flaky
}
