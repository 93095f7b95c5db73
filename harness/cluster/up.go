package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	lxd "github.com/canonical/lxd/client"
	"github.com/canonical/lxd/shared/api"
	"golang.org/x/sync/errgroup"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

// Up brings the cluster up: all VMs at once, bootstrap, one verified join
// at a time, then readiness. On any error it tears down what it created
// (unless KeepOnFailure) before returning, so the caller never inherits a
// half-made cluster. Cancel ctx (SIGINT) to abort; teardown still runs.
func Up(ctx context.Context, spec Spec) (*Cluster, error) {
	start := time.Now()
	spec = spec.withDefaults()
	if spec.StateDir == "" {
		d, err := state.Default()
		if err != nil {
			return nil, err
		}
		spec.StateDir = d.State
	}
	r, err := spec.resolve(Host(spec.StateDir))
	if err != nil {
		return nil, fmt.Errorf("cluster spec: %w", err)
	}
	for _, n := range r.Notices {
		logf(spec.Log, "%s: notice: %s", spec.Name, n)
	}
	dir := filepath.Join(ClustersDir(spec.StateDir), spec.Name)
	lock, err := lockCluster(dir, spec.Name)
	if err != nil {
		return nil, err
	}
	if spec.Reuse {
		// A reused cluster must be one a person kept (or `bcmtest up` made)
		// whose owner is gone; never a quiet new one. The run keeps its
		// lock while it uses the cluster, so no other reuse or `down`
		// takes it from under the run; Destroy or Keep lets it go.
		if err := checkReusable(ctx, spec.Provider, spec.StateDir, spec.Name); err != nil {
			lock.Unlock()
			return nil, err
		}
		c, err := attach(ctx, r, dir)
		if err != nil {
			lock.Unlock()
			return nil, err
		}
		c.useLock = lock
		return c, nil
	}
	defer lock.Unlock()

	existing, err := nodesOf(ctx, spec.Provider, spec.Name)
	if err != nil {
		return nil, fmt.Errorf("bringing up %s: %w", spec.Name, err)
	}
	_, recErr := os.Stat(filepath.Join(dir, "cluster.json"))
	if len(existing) > 0 || recErr == nil {
		return nil, fmt.Errorf("bringing up %s: the cluster already exists (VMs: %s); reuse it, or remove it with `bcmtest down %s`",
			spec.Name, strings.Join(names(existing), ", "), spec.Name)
	}

	rec := &record{Name: spec.Name, Provider: spec.Provider.Name(), Image: provider.ReleaseOf(spec.Provider), Members: spec.Members, Nodes: r.NodeNames,
		Owner: os.Getpid(), Created: time.Now().UTC(), PoolName: spec.PoolName, Persistent: spec.Persistent, dir: dir,
		Shape: &Shape{CPUs: r.CPUs, MemoryMiB: r.MemoryMiB, DiskGiB: r.DiskGiB, PoolGiB: r.PoolGiB}}
	if err := rec.saveUserData(r.CloudInitName, r.CloudInit); err != nil {
		return nil, err
	}
	// Registered before the first VM starts: from here a failure, a
	// cancellation or a crash leaves a record that teardown or a sweep finds.
	if err := rec.save(); err != nil {
		return nil, err
	}
	c := &Cluster{spec: r, p: spec.Provider, rec: rec, timings: newTimings()}
	ok := false
	defer func() {
		if ok {
			return
		}
		if spec.KeepOnFailure {
			if err := c.Keep("keep-on-failure: bring-up failed"); err != nil {
				logf(spec.Log, "%s: marking the failed cluster kept: %v", spec.Name, err)
			}
			logf(spec.Log, "%s: keeping the failed cluster for inspection (keep-on-failure); remove it with `bcmtest down %s`", spec.Name, spec.Name)
			return
		}
		if err := c.Destroy(context.WithoutCancel(ctx)); err != nil {
			logf(spec.Log, "%s: teardown after failure: %v", spec.Name, err)
		}
	}()
	fail := func(err error) (*Cluster, error) {
		err = fmt.Errorf("bringing up %s: %w", spec.Name, err)
		if spec.OnFailure != nil {
			spec.OnFailure(context.WithoutCancel(ctx), c, err)
		}
		return nil, err
	}

	cert, key, err := loadOrCreateClientCert(dir, spec.Name)
	if err != nil {
		return fail(err)
	}
	c.creds = Credentials{ClientCert: cert, ClientKey: key}

	srv, err := c.form(ctx)
	if err != nil {
		return fail(err)
	}

	t := time.Now()
	c.event(ctx, Event{Phase: PhaseReadiness})
	if err := c.waitReady(ctx, srv); err != nil {
		return fail(err)
	}
	// Make the new cluster state durable on every node: a member powered
	// off right after joining otherwise loses its just-written certificates
	// (found by the fault suite: LXD then fails with "failed to find any PEM
	// data in certificate input").
	for _, m := range c.members {
		if _, err := c.run(ctx, m.Name, nil, "sync"); err != nil {
			return fail(fmt.Errorf("syncing %s: %w", m.Name, err))
		}
	}
	c.timings.Ready = time.Since(t)
	c.timings.Total = time.Since(start)
	rec.Ready = true
	if err := rec.save(); err != nil {
		return fail(err)
	}
	ok = true
	c.event(ctx, Event{Phase: PhaseReady})
	logf(spec.Log, "%s: ready: %s", spec.Name, c.timings)
	return c, nil
}

func names(vms []provider.Info) []string {
	var out []string
	for _, v := range vms {
		out = append(out, v.Name)
	}
	return out
}

// nodesOf lists the provider's VMs that are exactly nodes of cluster.
func nodesOf(ctx context.Context, p provider.Provider, cluster string) ([]provider.Info, error) {
	vms, err := p.List(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("listing VMs: %w", err)
	}
	var out []provider.Info
	for _, v := range vms {
		if isMember(v.Name, v.Group, cluster) {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// form launches every node and forms the cluster while nodes still boot:
// NAME-00 is launched first and bootstrapped as soon as its cloud-init is
// done; each member joins (one at a time: LXD serialises joins through the
// leader anyway) as soon as its own cloud-init is done and the bootstrap
// has finished. Launches are bounded by MaxLaunch. The first failure
// cancels everything else, and its error is the one returned.
func (c *Cluster) form(ctx context.Context) (lxd.InstanceServer, error) {
	n := len(c.spec.NodeNames)
	logf(c.spec.Log, "%s: launching %d node(s) on %s, %d at a time (%d vCPU, %d MiB, %d GiB disk each); forming the cluster as they come up",
		c.Name(), n, c.p.Name(), c.spec.MaxLaunch, c.spec.CPUs, c.spec.MemoryMiB, c.spec.DiskGiB)
	if err := c.prepare(ctx, c.spec.NodeNames[0]); err != nil {
		return nil, err
	}
	srv, err := c.launchAndJoin(ctx, c.spec.NodeNames, nil)
	if err != nil {
		return nil, err
	}
	logf(c.spec.Log, "%s: %d node(s) booted (last after %s) and formed one cluster after %s", c.Name(), n,
		c.timings.Launch.Round(time.Second), c.timings.Formed.Round(time.Second))
	return srv, nil
}

// prepare makes the image (and booted snapshot) of the nodes' shape ready
// on a provider that can, timed as the image phase.
func (c *Cluster) prepare(ctx context.Context, node string) error {
	pr, ok := c.p.(Preparer)
	if !ok {
		return nil
	}
	t := time.Now()
	c.event(ctx, Event{Phase: PhaseImage})
	if err := pr.Prepare(ctx, c.launchInput(node)); err != nil {
		return err
	}
	c.timings.Image = time.Since(t)
	logf(c.spec.Log, "%s: image ready in %s", c.Name(), c.timings.Image.Round(100*time.Millisecond))
	return nil
}

// launchAndJoin launches the nodes names, at most MaxLaunch at a time,
// and makes each part of the cluster as soon as its cloud-init is done:
// with srv nil, names[0] bootstraps a new cluster and the rest join it;
// otherwise every one joins the running cluster srv answers for, whose
// members c.members holds (Grow). Joins run one at a time, as LXD
// serialises them through the leader anyway. The first failure cancels
// everything else, and its error is the one returned; c.members then holds
// the members that did join.
func (c *Cluster) launchAndJoin(ctx context.Context, names []string, srv lxd.InstanceServer) (lxd.InstanceServer, error) {
	n := len(names)
	g, gctx := errgroup.WithContext(ctx)
	members := make([]Member, n)
	booted := make(chan int, n) // indexes of nodes whose cloud-init is done
	start := time.Now()
	sem := make(chan struct{}, c.spec.MaxLaunch)

	// Launches, in node order: a slot is taken before the next node's
	// goroutine starts, so names[0] is always in the first wave.
	g.Go(func() error {
		for i, name := range names {
			select {
			case sem <- struct{}{}:
			case <-gctx.Done():
				return gctx.Err()
			}
			g.Go(func() error {
				defer func() { <-sem }()
				c.event(gctx, Event{Node: name, Phase: PhaseLaunching})
				info, err := c.p.Launch(gctx, c.launchInput(name))
				if err != nil {
					return fmt.Errorf("launching %s: %w", name, err)
				}
				members[i] = Member{Name: info.Name, Address: info.PrivateIP, Endpoint: info.Endpoint(lxdPort), Info: info}
				d := time.Since(start)
				c.mu.Lock()
				c.timings.Booted[name] = d
				if d > c.timings.Launch {
					c.timings.Launch = d
				}
				c.mu.Unlock()
				if ci, err := CloudInitDuration(gctx, c.p, name); err == nil {
					c.mu.Lock()
					c.timings.CloudInit[name] = ci
					c.mu.Unlock()
				}
				c.event(gctx, Event{Node: name, Phase: PhaseBooted})
				booted <- i
				return nil
			})
		}
		return nil
	})

	joined := c.Members()
	g.Go(func() error {
		// Members that finish booting before the bootstrap wait here, in
		// the order they finished.
		var early []int
		todo := n
		for srv == nil {
			select {
			case i := <-booted:
				if i != 0 {
					early = append(early, i)
					continue
				}
			case <-gctx.Done():
				return gctx.Err()
			}
			c.setMembers(members[:1])
			t := time.Now()
			c.event(gctx, Event{Node: members[0].Name, Phase: PhaseBootstrapping})
			s, err := c.bootstrap(gctx)
			if err != nil {
				return fmt.Errorf("bootstrapping %s: %w", members[0].Name, err)
			}
			srv = s
			c.timings.Bootstrap = time.Since(t)
			c.timings.BootstrapAt = time.Since(start)
			logf(c.spec.Log, "%s: bootstrapped %s in %s", c.Name(), members[0].Name, c.timings.Bootstrap.Round(time.Second))
			joined = []Member{members[0]}
			todo--
		}
		for ; todo > 0; todo-- {
			var i int
			if len(early) > 0 {
				i, early = early[0], early[1:]
			} else {
				select {
				case i = <-booted:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			m := members[i]
			t := time.Now()
			c.event(gctx, Event{Node: m.Name, Phase: PhaseJoining})
			if err := c.join(gctx, srv, m); err != nil {
				return fmt.Errorf("joining %s to %s: %w", m.Name, c.Name(), err)
			}
			c.mu.Lock()
			c.timings.Joins[m.Name] = time.Since(t)
			c.mu.Unlock()
			joined = append(joined, m)
			c.setMembers(joined)
			c.event(gctx, Event{Node: m.Name, Phase: PhaseJoined})
			logf(c.spec.Log, "%s: %s joined and Online in %s", c.Name(), m.Name, c.timings.Joins[m.Name].Round(time.Second))
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	c.timings.Formed = time.Since(start)
	return srv, nil
}

// Preparer is a provider that can make ready, before any launch, what
// every launch of a shape needs (the embedded provider's image and booted
// snapshot), so their build or lookup is timed as its own phase.
type Preparer interface {
	Prepare(ctx context.Context, in provider.LaunchInput) error
}

func (c *Cluster) launchInput(name string) provider.LaunchInput {
	in := provider.LaunchInput{
		Name: name, Group: c.Name(), CPUs: c.spec.CPUs, MemoryMiB: c.spec.MemoryMiB, DiskGiB: c.spec.DiskGiB,
		UserData: c.spec.CloudInit, Log: c.spec.Log,
	}
	if c.spec.OnPhase != nil {
		in.OnPhase = c.spec.OnPhase(name)
	}
	return in
}

// setMembers publishes the nodes that are part of the cluster so far, in
// node order, so teardown and diagnostics see what formation reached.
func (c *Cluster) setMembers(ms []Member) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.members = append([]Member(nil), ms...)
	sort.Slice(c.members, func(i, j int) bool { return c.members[i].Name < c.members[j].Name })
}

// CloudInitDuration reads how long cloud-init took on a node from its own
// status file (first stage start to last stage finish, guest clock).
func CloudInitDuration(ctx context.Context, p provider.Provider, name string) (time.Duration, error) {
	b, err := p.CopyOut(ctx, name, "/run/cloud-init/status.json")
	if err != nil {
		return 0, err
	}
	var st struct {
		V1 map[string]json.RawMessage `json:"v1"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return 0, err
	}
	var first, last float64
	for _, raw := range st.V1 {
		var s struct {
			Start    *float64 `json:"start"`
			Finished *float64 `json:"finished"`
		}
		if json.Unmarshal(raw, &s) != nil {
			continue
		}
		if s.Start != nil && (first == 0 || *s.Start < first) {
			first = *s.Start
		}
		if s.Finished != nil && *s.Finished > last {
			last = *s.Finished
		}
	}
	if first == 0 || last < first {
		return 0, fmt.Errorf("no stage times in cloud-init status on %s", name)
	}
	return time.Duration((last - first) * float64(time.Second)), nil
}

func (c *Cluster) run(ctx context.Context, node string, stdin []byte, argv ...string) (string, error) {
	var in *bytes.Reader
	if stdin != nil {
		in = bytes.NewReader(stdin)
		return provider.RunInput(ctx, c.p, node, in, argv...)
	}
	return provider.Run(ctx, c.p, node, argv...)
}

// bootstrap initialises LXD clustering on node 00, trusts the harness's
// client certificate there and returns a client that pins the cluster cert.
func (c *Cluster) bootstrap(ctx context.Context) (lxd.InstanceServer, error) {
	ctx, cancel := context.WithTimeout(ctx, c.spec.Intervals.Bootstrap)
	defer cancel()
	b := c.members[0]
	if _, err := c.run(ctx, b.Name, nil, "lxd", "waitready", c.waitReadyFlag()); err != nil {
		return nil, fmt.Errorf("waiting for the LXD daemon: %w", err)
	}
	preseed, err := MarshalPreseed(BootstrapPreseed(BootstrapInput{ServerName: b.Name, Address: b.Address, PoolName: c.spec.PoolName, PoolGiB: c.spec.PoolGiB}))
	if err != nil {
		return nil, err
	}
	if _, err := c.run(ctx, b.Name, preseed, "lxd", "init", "--preseed"); err != nil {
		return nil, fmt.Errorf("lxd init --preseed: %w", err)
	}
	cert, err := c.run(ctx, b.Name, nil, "sh", "-c", lxdDirScript+`cat "$d/cluster.crt"`)
	if err != nil {
		return nil, fmt.Errorf("reading the cluster certificate: %w", err)
	}
	c.creds.ClusterCert = cert
	if err := os.WriteFile(filepath.Join(c.rec.dir, "cluster.crt"), []byte(cert), 0o644); err != nil {
		return nil, err
	}
	body, err := trustRequest(c.creds.ClientCert, "bcmtest-"+c.Name())
	if err != nil {
		return nil, err
	}
	// POST /1.0/certificates over the local unix socket: the same on
	// Debian's LXD and Ubuntu's snap, and no trust password involved.
	if _, err := c.run(ctx, b.Name, body, "sh", "-c", lxdDirScript+
		`curl -sS --fail-with-body --unix-socket "$d/unix.socket" -X POST -H 'Content-Type: application/json' --data-binary @- http://lxd/1.0/certificates`); err != nil {
		return nil, fmt.Errorf("trusting the harness client certificate: %w", err)
	}
	var srv lxd.InstanceServer
	err = wait.Until(ctx, c.spec.Intervals.Poll, c.spec.Intervals.PollMax, func(context.Context) (bool, string, error) {
		s, err := connect(ctx, b.Endpoint, c.creds)
		if err != nil {
			return false, err.Error(), nil
		}
		info, _, err := s.GetServer()
		if err != nil {
			return false, err.Error(), nil
		}
		if info.Auth != "trusted" {
			return false, "LXD says the harness certificate is " + info.Auth, nil
		}
		srv = s
		return true, "", nil
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to the LXD API at %s: %w", b.Endpoint, err)
	}
	return srv, nil
}

// lxdDirScript sets $d to LXD's data directory: Debian's package or the snap.
const lxdDirScript = `d=/var/lib/lxd; [ -S "$d/unix.socket" ] || d=/var/snap/lxd/common/lxd; `

// trustRequest is the typed body that adds a client certificate to the
// trust store.
func trustRequest(certPEM, name string) ([]byte, error) {
	blk, _ := pem.Decode([]byte(certPEM))
	if blk == nil {
		return nil, errors.New("client certificate is not PEM")
	}
	return json.Marshal(api.CertificatesPost{Name: name, Type: api.CertificateTypeClient, Certificate: base64.StdEncoding.EncodeToString(blk.Bytes)})
}

// redact names a secret in logs by a short hash, never by its content.
func redact(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(sum[:4])
}

// join issues a token for m, runs the join preseed on m, and waits until
// the cluster reports m Online. A token whose join failed is revoked.
func (c *Cluster) join(ctx context.Context, srv lxd.InstanceServer, m Member) (err error) {
	ctx, cancel := context.WithTimeout(ctx, c.spec.Intervals.Join)
	defer cancel()
	op, err := srv.CreateClusterMember(api.ClusterMembersPost{ServerName: m.Name})
	if err != nil {
		return fmt.Errorf("issuing a join token: %w", err)
	}
	opAPI := op.Get()
	tok, err := opAPI.ToClusterJoinToken()
	if err != nil {
		return fmt.Errorf("reading the join token: %w", err)
	}
	token := tok.String()
	logf(c.spec.Log, "%s: join token for %s issued (%s)", c.Name(), m.Name, redact(token))
	defer func() {
		if err == nil {
			return
		}
		if rerr := srv.DeleteOperation(opAPI.ID); rerr == nil {
			logf(c.spec.Log, "%s: revoked the join token of %s", c.Name(), m.Name)
		}
		srv.DeleteClusterMember(m.Name, true)
	}()
	cl, _, err := srv.GetCluster()
	if err != nil {
		return fmt.Errorf("reading the cluster's member config: %w", err)
	}
	mc, err := FillMemberConfig(cl.MemberConfig, c.spec.PoolName, c.spec.PoolGiB)
	if err != nil {
		return err
	}
	preseed, err := MarshalPreseed(JoinPreseed(JoinInput{
		ServerName: m.Name, Address: m.Address, ClusterAddress: c.members[0].Address,
		ClusterCertificate: c.creds.ClusterCert, Token: token, PoolName: c.spec.PoolName, PoolGiB: c.spec.PoolGiB, MemberConfig: mc,
	}))
	if err != nil {
		return err
	}
	if _, err := c.run(ctx, m.Name, nil, "lxd", "waitready", c.waitReadyFlag()); err != nil {
		return fmt.Errorf("waiting for the LXD daemon: %w", err)
	}
	if _, err := c.run(ctx, m.Name, preseed, "lxd", "init", "--preseed"); err != nil {
		return fmt.Errorf("lxd init --preseed: %w", err)
	}
	return wait.Until(ctx, c.spec.Intervals.Poll, c.spec.Intervals.PollMax, func(context.Context) (bool, string, error) {
		mem, _, err := srv.GetClusterMember(m.Name)
		if err != nil {
			return false, err.Error(), nil
		}
		return mem.Status == "Online", "status " + mem.Status, nil
	})
}

// ExpectedRoles returns how many voting database members and standbys LXD
// settles on for n members (cluster.max_voters 3, cluster.max_standby 2).
func ExpectedRoles(n int) (voters, standbys int) {
	voters = 1
	if n >= 3 {
		voters = 3
	}
	standbys = min(2, n-voters)
	return voters, standbys
}

// CountRoles counts the database roles across members.
func CountRoles(members []api.ClusterMember) (leaders, voters, standbys int) {
	for _, m := range members {
		for _, r := range m.Roles {
			switch r {
			case "database-leader":
				leaders++
			case "database":
				voters++
			case "database-standby":
				standbys++
			}
		}
	}
	return leaders, voters, standbys
}

// allOnline: there are want members and every one is Online.
func allOnline(members []api.ClusterMember, want int) (bool, string) {
	if len(members) != want {
		return false, fmt.Sprintf("%d of %d members", len(members), want)
	}
	for _, m := range members {
		if m.Status != "Online" {
			return false, fmt.Sprintf("%s is %s", m.ServerName, m.Status)
		}
	}
	return true, ""
}

// RolesSettled checks members against ExpectedRoles and that every member
// is Online with exactly one database-leader.
func RolesSettled(members []api.ClusterMember, want int) (bool, string) {
	if ok, why := allOnline(members, want); !ok {
		return false, why
	}
	leaders, voters, standbys := CountRoles(members)
	wv, ws := ExpectedRoles(want)
	if leaders != 1 {
		return false, fmt.Sprintf("%d database-leader(s)", leaders)
	}
	if voters != wv || standbys != ws {
		return false, fmt.Sprintf("roles not settled: %d database, %d standby (want %d, %d)", voters, standbys, wv, ws)
	}
	return true, ""
}

// RolesFilled is the rule for a cluster that lost a member: every member
// Online, exactly one database-leader, one to three voters, and as many
// members holding a database role (voter or standby) as LXD keeps (up to
// cluster.max_voters plus cluster.max_standby, five). Unlike a new
// cluster's, the split between voters and standbys may differ: LXD need
// not demote a voter when a member leaves.
func RolesFilled(members []api.ClusterMember, want int) (bool, string) {
	if ok, why := allOnline(members, want); !ok {
		return false, why
	}
	leaders, voters, standbys := CountRoles(members)
	if leaders != 1 {
		return false, fmt.Sprintf("%d database-leader(s)", leaders)
	}
	if voters < 1 || voters > 3 || voters+standbys != min(want, 5) {
		return false, fmt.Sprintf("roles not filled: %d database, %d standby for %d members", voters, standbys, want)
	}
	return true, ""
}

func (c *Cluster) waitReady(ctx context.Context, srv lxd.InstanceServer) error {
	return c.waitRoles(ctx, srv, RolesSettled)
}

func (c *Cluster) waitRoles(ctx context.Context, srv lxd.InstanceServer, rule func([]api.ClusterMember, int) (bool, string)) error {
	ctx, cancel := context.WithTimeout(ctx, c.spec.Intervals.Ready)
	defer cancel()
	err := wait.Until(ctx, c.spec.Intervals.Poll, c.spec.Intervals.PollMax, func(context.Context) (bool, string, error) {
		ms, err := srv.GetClusterMembers()
		if err != nil {
			return false, err.Error(), nil
		}
		if ok, why := rule(ms, len(c.members)); !ok {
			return false, why, nil
		}
		// Each member answers for itself with the pinned cluster
		// certificate and trusts the harness (a joined member loads the
		// trust store a moment after it reports Online).
		for _, m := range c.members {
			s, err := connect(ctx, m.Endpoint, c.creds)
			if err != nil {
				return false, fmt.Sprintf("%s: %v", m.Name, err), nil
			}
			info, _, err := s.GetServer()
			if err != nil {
				return false, fmt.Sprintf("%s: %v", m.Name, err), nil
			}
			if info.Auth != "trusted" {
				return false, fmt.Sprintf("%s does not trust the harness certificate yet", m.Name), nil
			}
		}
		return true, "", nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %s to be ready: %w", c.Name(), err)
	}
	return nil
}

// attach returns a handle to an existing cluster after checking it is healthy.
func attach(ctx context.Context, r resolved, dir string) (*Cluster, error) {
	rec, err := loadClusterRecord(dir)
	if err != nil {
		return nil, fmt.Errorf("reusing %s: no usable state (%v); remove it with `bcmtest down %s`", r.Name, err, r.Name)
	}
	c := &Cluster{spec: r, p: r.Provider, rec: rec, timings: newTimings(), attached: true}
	cert, key, err := loadOrCreateClientCert(dir, r.Name)
	if err != nil {
		return nil, err
	}
	cc, err := os.ReadFile(filepath.Join(dir, "cluster.crt"))
	if err != nil {
		return nil, fmt.Errorf("reusing %s: %w", r.Name, err)
	}
	c.creds = Credentials{ClientCert: cert, ClientKey: key, ClusterCert: string(cc)}
	vms, err := nodesOf(ctx, r.Provider, r.Name)
	if err != nil {
		return nil, err
	}
	for _, v := range vms {
		c.members = append(c.members, Member{Name: v.Name, Address: v.PrivateIP, Endpoint: v.Endpoint(lxdPort), Info: v})
	}
	if len(c.members) != r.Members+1 {
		return nil, fmt.Errorf("reusing %s: it has %d node(s), the spec asks for %d", r.Name, len(c.members), r.Members+1)
	}
	srv, err := c.LXD(ctx)
	if err != nil {
		return nil, fmt.Errorf("reusing %s: %w", r.Name, err)
	}
	ms, err := srv.GetClusterMembers()
	if err != nil {
		return nil, fmt.Errorf("reusing %s: %w", r.Name, err)
	}
	if ok, why := RolesSettled(ms, len(c.members)); !ok {
		return nil, fmt.Errorf("reusing %s: not healthy (%s); remove it with `bcmtest down %s`", r.Name, why, r.Name)
	}
	logf(r.Log, "%s: reusing the existing healthy cluster", r.Name)
	return c, nil
}

// waitReadyFlag bounds the in-guest `lxd waitready` by the named interval.
func (c *Cluster) waitReadyFlag() string {
	return fmt.Sprintf("--timeout=%d", int(c.spec.Intervals.LXDWaitReady.Timeout.Seconds()))
}
