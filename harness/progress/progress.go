// Package progress shows what the harness is doing while it brings a
// cluster up: the VM image build by stage, each node's boot by phase and
// the cluster's formation, with elapsed times.
//
// On a terminal it draws one bar per node, one for the cluster and one for
// the image build (github.com/vbauerster/mpb), with the harness's log lines
// printed above them. Elsewhere (CI, go test) it prints the same events as
// timestamped lines, at most one per phase change and, while nothing
// changes, one "still in" line per 30 seconds:
//
//	15:04:05 CLUS1-01: cloud-init modules-final (1m02s)
//	15:04:35 CLUS1-01: still in cloud-init modules-final (1m32s)
package progress

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
)

// Mode is how progress is shown.
type Mode int

const (
	// Auto draws bars when the output is a terminal, else plain lines.
	Auto Mode = iota
	// Plain prints timestamped lines.
	Plain
	// Bars draws live bars.
	Bars
)

// DefaultQuiet is how long a phase may last before plain output says it
// is still in it.
const DefaultQuiet = 30 * time.Second

// tickEvery is how often plain output looks for quiet phases;
// refreshEvery how often bars are drawn.
const (
	tickEvery    = 5 * time.Second
	refreshEvery = 200 * time.Millisecond
)

// Options tune a Progress; the zero value detects the terminal.
type Options struct {
	Mode Mode
	// Now is the clock. Given one, no "still in" line comes on its own:
	// the caller calls Tick (tests). Bars use it from their own goroutine.
	Now func() time.Time
	// Quiet is how long a phase lasts before a "still in" line
	// (DefaultQuiet when 0).
	Quiet time.Duration
	// Width is the bars' width when the output is not a terminal (tests).
	Width int
}

// Progress shows image, boot and cluster progress on one output. It is an
// io.Writer for the harness's log lines, which it prints stamped with the
// time (above the bars on a terminal). Its methods are safe for concurrent
// use and do not block on the work they report.
type Progress struct {
	out   io.Writer
	now   func() time.Time
	quiet time.Duration
	bars  *mpb.Progress // nil in plain mode
	// refresh draws the bars: on a timer, and once more before they end,
	// so no log line written just before is lost.
	refresh  chan any
	shutdown chan any // closed when the bars have ended

	mu      sync.Mutex
	tasks   map[string]*task
	nodes   []*task // in the order first seen
	image   *task
	cluster *task
	partial []byte // a log line not yet ended
	closed  bool

	stopTick chan struct{}
	tickDone chan struct{}
}

// New returns a Progress writing to w. In Auto mode it draws bars when w
// is a terminal (an *os.File whose descriptor is one).
func New(w io.Writer, o Options) *Progress {
	mode := o.Mode
	if mode == Auto {
		mode = Plain
		if IsTerminal(w) {
			mode = Bars
		}
	}
	p := &Progress{out: w, now: o.Now, quiet: o.Quiet, tasks: map[string]*task{}}
	if p.now == nil {
		p.now = time.Now
	}
	if p.quiet <= 0 {
		p.quiet = DefaultQuiet
	}
	if mode == Bars {
		p.refresh, p.shutdown = make(chan any), make(chan any)
		opts := []mpb.ContainerOption{mpb.WithOutput(w), mpb.WithManualRefresh(p.refresh), mpb.WithShutdownNotifier(p.shutdown)}
		if !IsTerminal(w) {
			opts = append(opts, mpb.ForceTTY(), mpb.WithWidth(max(o.Width, 80)))
		}
		p.bars = mpb.New(opts...)
	}
	if mode == Bars || o.Now == nil {
		p.stopTick, p.tickDone = make(chan struct{}), make(chan struct{})
		go p.ticker()
	}
	return p
}

// IsTerminal says whether w is a terminal with a size: bars need rows to
// draw on (a pseudo-terminal nobody sized has none).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return false
	}
	cols, rows, err := term.GetSize(int(f.Fd()))
	return err == nil && cols > 0 && rows > 0
}

// Bars says whether p draws bars rather than lines.
func (p *Progress) Bars() bool { return p.bars != nil }

// ticker redraws the bars or, in plain mode, prints the "still in" lines.
func (p *Progress) ticker() {
	defer close(p.tickDone)
	every := tickEvery
	if p.bars != nil {
		every = refreshEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.stopTick:
			return
		case now := <-t.C:
			if p.bars != nil {
				p.draw(now, p.stopTick)
			} else {
				p.Tick()
			}
		}
	}
}

// draw has the bars drawn, unless they ended or stop is closed first.
func (p *Progress) draw(now time.Time, stop <-chan struct{}) {
	select {
	case p.refresh <- now:
	case <-p.shutdown:
	case <-stop:
	}
}

// kind is what a task follows.
type kind int

const (
	kindImage kind = iota
	kindCluster
	kindNode
)

// The steps a bar fills: a node's boot phases rank 1..10
// (provider.BootPhase.Rank), then formation.
const (
	nodeLaunching = 0
	nodeForming   = 11 // bootstrapping or joining
	nodeFormed    = 12 // bootstrapped or joined
	nodeSteps     = nodeFormed

	clusterImage     = 1
	clusterLaunching = 2
	clusterBootstrap = 3
	clusterJoining   = 4
	clusterReadiness = 5
	clusterReady     = 6
	clusterSteps     = clusterReady

	imageSteps = 12 // mmdebstrap's stages, then the harness's two, then built
)

// task is one line of progress: the image, the cluster or a node.
type task struct {
	kind    kind
	label   string
	phase   string // as shown, with counts
	key     string // the phase without counts: a new key is a phase change
	rank    int
	start   time.Time // elapsed times count from here
	printed time.Time // last plain line about it
	done    bool
	bar     *mpb.Bar
	view    atomic.Pointer[view] // what the bar shows, read by its decorators
}

// view is a task's state as its bar draws it.
type view struct {
	text  string
	start time.Time
	end   time.Time // zero while running
}

// Expect announces a cluster and its nodes before any event, so the bars
// come in node order. It is optional.
func (p *Progress) Expect(clusterName string, nodes []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	p.clusterTask(clusterName, now)
	for _, n := range nodes {
		p.nodeTask(n, now)
	}
}

// Cluster takes one event of cluster.Up (Spec.OnEvent).
func (p *Progress) Cluster(e cluster.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	now := p.now()
	c := p.clusterTask(e.Cluster, now)
	if c.phase == "" {
		c.start = now.Add(-e.Elapsed) // Up's own start
	}
	if e.Node == "" {
		switch e.Phase {
		case cluster.PhaseImage:
			p.advance(c, clusterImage, "image", now, true)
		case cluster.PhaseReadiness:
			p.formed(now)
			p.advance(c, clusterReadiness, "readiness", now, true)
		case cluster.PhaseReady:
			p.formed(now)
			for _, n := range p.nodes {
				p.finish(n, now)
			}
			p.advance(c, clusterReady, "ready", now, true)
			p.finish(c, now)
		default:
			p.advance(c, c.rank, string(e.Phase), now, true)
		}
		return
	}
	n := p.nodeTask(e.Node, now)
	switch e.Phase {
	case cluster.PhaseLaunching:
		p.launching(n, now)
		p.advance(c, max(c.rank, clusterLaunching), "launching", now, false)
	case cluster.PhaseBooted:
		p.advance(n, provider.BootDone.Rank(), string(provider.BootDone), now, true)
	case cluster.PhaseBootstrapping:
		p.advance(n, nodeForming, "bootstrapping", now, true)
		p.advance(c, max(c.rank, clusterBootstrap), "bootstrapping", now, false)
	case cluster.PhaseJoining:
		p.formed(now) // a member joins once the bootstrap is done
		p.advance(n, nodeForming, "joining", now, true)
		p.advance(c, max(c.rank, clusterJoining), "joining", now, false)
	case cluster.PhaseJoined:
		p.advance(n, nodeFormed, "joined", now, true)
		p.finish(n, now)
	default:
		p.advance(n, n.rank, string(e.Phase), now, true)
	}
	p.summarize(c)
}

// Launching says a node's launch starts: its elapsed time counts from here.
// Up's events say it for cluster nodes; a lone VM's launch says it itself.
func (p *Progress) Launching(node string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.launching(p.nodeTask(node, p.now()), p.now())
	}
}

func (p *Progress) launching(n *task, now time.Time) {
	n.start = now
	p.advance(n, nodeLaunching, "launching", now, true)
	// The image is ready once a node launches (built by another run, say).
	if p.image != nil {
		p.finish(p.image, now)
	}
}

// formed marks a node still bootstrapping as bootstrapped.
func (p *Progress) formed(now time.Time) {
	for _, n := range p.nodes {
		if n.phase == "bootstrapping" {
			p.advance(n, nodeFormed, "bootstrapped", now, true)
			p.finish(n, now)
		}
	}
}

// summarize puts the nodes' counts on the cluster's bar.
func (p *Progress) summarize(c *task) {
	if c == nil || c.done || p.bars == nil {
		return
	}
	booted, formed := 0, 0
	for _, n := range p.nodes {
		if n.rank >= provider.BootDone.Rank() {
			booted++
		}
		if n.rank >= nodeFormed {
			formed++
		}
	}
	c.show(fmt.Sprintf("%s: %d/%d booted, %d/%d in the cluster", c.phase, booted, len(p.nodes), formed, len(p.nodes)))
}

// Boot takes one boot phase of a node (LaunchInput.OnPhase).
func (p *Progress) Boot(node string, ph provider.BootPhase) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	now := p.now()
	n := p.nodeTask(node, now)
	if ph.Rank() <= n.rank {
		return
	}
	p.advance(n, ph.Rank(), string(ph), now, true)
	p.summarize(p.cluster)
}

// OnPhase returns a LaunchInput.OnPhase hook that reports node's phases.
func (p *Progress) OnPhase(node string) func(provider.BootPhase) {
	return func(ph provider.BootPhase) { p.Boot(node, ph) }
}

// ImageStage takes one stage of the image build (image.StageReporter).
func (p *Progress) ImageStage(s image.Stage) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	now := p.now()
	t := p.imageTask(now)
	// A new stage is a line; a count within it only moves the bar.
	rank := t.rank
	if s.Stage != t.key {
		rank = min(t.rank+1, imageSteps-3)
	}
	p.advanceKey(t, rank, s.Stage, s.String(), now)
}

// imageLineStage takes the image store's own line, if it is one.
func (p *Progress) imageLineStage(line string, now time.Time) (echo bool) {
	stage, begin, end, ok := harnessImageLine(line)
	if !ok {
		return true
	}
	switch {
	case begin:
		t := p.imageTask(now)
		t.start, t.printed = now, now
		p.set(t, max(t.rank, 0), stage, stage) // the line itself says it
		return true
	case end:
		if p.image != nil {
			p.advance(p.image, imageSteps, stage, now, false)
			p.finish(p.image, now)
		}
		return true
	}
	t := p.imageTask(now)
	p.advance(t, max(t.rank+1, imageSteps-2), stage, now, true)
	return false
}

func (p *Progress) clusterTask(name string, start time.Time) *task {
	if p.cluster == nil {
		if name == "" {
			name = "cluster"
		}
		p.cluster = p.newTask(kindCluster, name, start, clusterSteps)
	}
	return p.cluster
}

func (p *Progress) nodeTask(name string, now time.Time) *task {
	if t, ok := p.tasks[name]; ok {
		return t
	}
	t := p.newTask(kindNode, name, now, nodeSteps)
	p.tasks[name] = t
	p.nodes = append(p.nodes, t)
	return t
}

func (p *Progress) imageTask(now time.Time) *task {
	if p.image == nil || p.image.done {
		p.image = p.newTask(kindImage, "image", now, imageSteps)
	}
	return p.image
}

// newTask makes a task and, drawing bars, its bar: the image on top, then
// the cluster, then the nodes in the order first seen.
func (p *Progress) newTask(k kind, label string, start time.Time, steps int) *task {
	t := &task{kind: k, label: label, start: start, printed: start, rank: -1}
	t.view.Store(&view{text: "waiting", start: start})
	if p.bars != nil {
		prio := int(k)
		if k == kindNode {
			prio = 2 + len(p.nodes)
		}
		now := p.now
		t.bar = p.bars.New(int64(steps), mpb.BarStyle().Lbound("[").Rbound("]"),
			mpb.BarPriority(prio), mpb.BarWidth(24),
			mpb.PrependDecorators(decor.Name(label, decor.WCSyncSpaceR)),
			mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
				v := t.view.Load()
				end := v.end
				if end.IsZero() {
					end = now()
				}
				return fmt.Sprintf("%s (%s)", v.text, Elapsed(end.Sub(v.start)))
			})))
	}
	return t
}

// advance moves t to a phase; a changed phase prints a plain line when
// line is set. Progress never steps back: a lower rank is left out.
func (p *Progress) advance(t *task, rank int, phase string, now time.Time, line bool) {
	if t.done || rank < t.rank {
		return
	}
	changed := phase != t.key
	p.set(t, rank, phase, phase)
	if changed && line {
		p.line(t, phase, now)
	}
}

// advanceKey moves t to a phase shown as text (the phase with counts): a
// plain line when the phase changed, none when only the counts did.
func (p *Progress) advanceKey(t *task, rank int, key, text string, now time.Time) {
	if t.done || rank < t.rank {
		return
	}
	changed := key != t.key
	p.set(t, rank, key, text)
	if changed {
		p.line(t, text, now)
	}
}

func (p *Progress) set(t *task, rank int, key, text string) {
	if rank > t.rank {
		t.rank = rank
		if t.bar != nil {
			t.bar.SetCurrent(int64(rank))
		}
	}
	t.key, t.phase = key, text
	t.show(text)
}

func (t *task) show(text string) {
	v := *t.view.Load()
	v.text, v.start = text, t.start
	t.view.Store(&v)
}

// finish marks t done: its bar completes, its elapsed time stops.
func (p *Progress) finish(t *task, now time.Time) {
	if t == nil || t.done {
		return
	}
	t.done = true
	v := *t.view.Load()
	v.end = now
	t.view.Store(&v)
	if t.bar != nil {
		t.bar.SetTotal(-1, true)
	}
}

// line prints one plain line about t, in plain mode.
func (p *Progress) line(t *task, text string, now time.Time) {
	t.printed = now
	if p.bars != nil {
		return
	}
	fmt.Fprintf(p.out, "%s %s: %s (%s)\n", now.Format("15:04:05"), t.label, text, Elapsed(now.Sub(t.start)))
}

// Tick prints, in plain mode, a "still in" line for each task whose phase
// has not changed and about which nothing was printed for the quiet
// period. The cluster has one only while none of its parts is running.
func (p *Progress) Tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.bars != nil {
		return
	}
	now := p.now()
	var active []*task
	for _, t := range append([]*task{p.image}, p.nodes...) {
		if t != nil && !t.done && t.phase != "" {
			active = append(active, t)
		}
	}
	if c := p.cluster; c != nil && !c.done && c.phase != "" && len(active) == 0 {
		active = append(active, c)
	}
	sort.SliceStable(active, func(i, j int) bool { return active[i].kind < active[j].kind })
	for _, t := range active {
		if now.Sub(t.printed) >= p.quiet {
			p.line(t, "still in "+t.phase, now)
		}
	}
}

// stamped says a log line already starts with a "15:04:05 " time.
var stamped = regexp.MustCompile(`^\d\d:\d\d:\d\d `)

// Write takes the harness's log lines: printed stamped with the time
// (above the bars on a terminal), except the image store's stage lines,
// which become image progress.
func (p *Progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	p.partial = append(p.partial, b...)
	var out bytes.Buffer
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		line := string(p.partial[:i])
		p.partial = p.partial[i+1:]
		p.logLine(&out, line)
	}
	p.partial = append([]byte(nil), p.partial...)
	bars := p.bars
	if (bars == nil || p.closed) && out.Len() > 0 {
		_, err := p.out.Write(out.Bytes())
		p.mu.Unlock()
		return len(b), err
	}
	p.mu.Unlock()
	if out.Len() > 0 {
		if _, err := bars.Write(out.Bytes()); err != nil {
			p.out.Write(out.Bytes()) // the bars ended meanwhile
		}
	}
	return len(b), nil
}

// logLine stamps one log line into out unless it is image progress.
func (p *Progress) logLine(out *bytes.Buffer, line string) {
	now := p.now()
	bare := strings.TrimSpace(stamped.ReplaceAllString(line, ""))
	if !p.closed && !p.imageLineStage(bare, now) {
		return
	}
	if !stamped.MatchString(line) {
		out.WriteString(now.Format("15:04:05") + " ")
	}
	out.WriteString(line + "\n")
}

// Close ends the display: the bars of what did not finish stay as they
// were, a log line not yet ended is printed. Later events are dropped and
// later log lines go straight to the output.
func (p *Progress) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	var rest bytes.Buffer
	if len(p.partial) > 0 {
		p.logLine(&rest, string(p.partial))
		p.partial = nil
	}
	for _, t := range append([]*task{p.image, p.cluster}, p.nodes...) {
		if t != nil && !t.done && t.bar != nil {
			t.bar.Abort(false)
		}
	}
	bars := p.bars
	p.mu.Unlock()
	if p.stopTick != nil {
		close(p.stopTick)
		<-p.tickDone
	}
	if bars != nil {
		if rest.Len() > 0 {
			bars.Write(rest.Bytes())
		}
		// Draw what was written since the last refresh: a refresh taken
		// before Wait is drawn before the bars end.
		timeout := make(chan struct{})
		timer := time.AfterFunc(2*time.Second, func() { close(timeout) })
		p.draw(time.Now(), timeout)
		timer.Stop()
		bars.Wait()
	} else if rest.Len() > 0 {
		p.out.Write(rest.Bytes())
	}
}

// Elapsed formats a duration as progress shows it: 9s, 1m02s, 1h02m03s.
func Elapsed(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int(d.Round(time.Second) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	}
	return fmt.Sprintf("%dh%02dm%02ds", s/3600, s/60%60, s%60)
}
