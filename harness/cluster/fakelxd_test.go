package cluster

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canonical/lxd/shared/api"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/fakeprovider"
)

// fakeLXD stands in for LXD on every node of a cluster: the part of the
// REST API that Up uses, served over TLS by one server per node (all with
// one certificate, as a cluster's members share the cluster certificate),
// and the node commands bootstrap and join run, answered through the fake
// provider's Exec. One cluster state sits behind all of them: a node is a
// member once its `lxd init --preseed` has run.
type fakeLXD struct {
	t       *testing.T
	certPEM string                      // what `cat cluster.crt` returns: the servers' certificate
	servers map[string]*httptest.Server // by node name

	mu sync.Mutex
	// Failures to inject, set before Up.
	failPreseed map[string]bool // nodes whose `lxd init --preseed` exits 1
	untrusted   map[string]bool // nodes whose API calls the harness "untrusted"
	unsettled   bool            // the last member to join never gets a database role
	offline     map[string]bool // members the cluster reports Offline
	// What happened.
	members  []string          // nodes that ran `lxd init --preseed`, in order
	tokens   map[string]string // join-token operation ID -> the member it is for
	revoked  []string          // "operation ID" and "member NAME" deletions
	changes  []string          // "evacuate NAME" and "remove NAME" (graceful removals), in order
	commands []string          // "NODE: argv" of every Exec
}

// newFakeLXD starts a TLS server for each node and wires them into fp: each
// node's LXD port forwards to its server, and Exec answers as the node.
func newFakeLXD(t *testing.T, fp *fakeprovider.Provider, nodes ...string) *fakeLXD {
	t.Helper()
	f := &fakeLXD{t: t, servers: map[string]*httptest.Server{}, failPreseed: map[string]bool{},
		untrusted: map[string]bool{}, tokens: map[string]string{}, offline: map[string]bool{}}
	if fp.Forwards == nil {
		fp.Forwards = map[string]map[int]string{}
	}
	var first *httptest.Server
	for _, node := range nodes {
		s := httptest.NewUnstartedServer(f.handler(node))
		if first != nil {
			s.TLS = first.TLS.Clone() // the same certificate on every node
		}
		s.StartTLS()
		t.Cleanup(s.Close)
		if first == nil {
			first = s
			f.certPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}))
		}
		f.servers[node] = s
		fp.Forwards[node] = map[int]string{lxdPort: s.Listener.Addr().String()}
	}
	fp.ExecFunc = f.exec
	return f
}

// exec answers the commands bootstrap, join and Up run on a node; any
// other command fails, so a new one shows up here instead of passing
// unnoticed.
func (f *fakeLXD) exec(node string, argv []string) provider.ExecResult {
	cmd := strings.Join(argv, " ")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.commands = append(f.commands, node+": "+cmd)
	switch {
	case len(argv) >= 2 && argv[0] == "lxd" && argv[1] == "waitready", cmd == "sync":
		return provider.ExecResult{}
	case cmd == "lxd init --preseed":
		if f.failPreseed[node] {
			return provider.ExecResult{ExitCode: 1, Stderr: []byte("Error: injected preseed failure on " + node)}
		}
		f.members = append(f.members, node)
		return provider.ExecResult{}
	case len(argv) == 3 && argv[0] == "sh" && strings.HasSuffix(argv[2], `cat "$d/cluster.crt"`):
		return provider.ExecResult{Stdout: []byte(f.certPEM)}
	case len(argv) == 3 && argv[0] == "sh" && strings.Contains(argv[2], "curl ") && strings.HasSuffix(argv[2], "http://lxd/1.0/certificates"):
		return provider.ExecResult{Stdout: []byte(`{"type":"sync","status":"Success","status_code":200}`)}
	}
	return provider.ExecResult{ExitCode: 127, Stderr: []byte("fake LXD node: unexpected command: " + cmd)}
}

func (f *fakeLXD) handler(node string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /1.0", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		auth := "trusted"
		if f.untrusted[node] {
			auth = "untrusted"
		}
		clustered := len(f.members) > 0
		f.mu.Unlock()
		sync200(w, api.Server{
			ServerUntrusted: api.ServerUntrusted{
				APIExtensions: []string{"clustering", "clustering_join", "clustering_join_token", "clustering_evacuation"},
				APIStatus:     "stable", APIVersion: "1.0", Auth: auth, AuthMethods: []string{api.AuthenticationMethodTLS},
			},
			Environment: api.ServerEnvironment{ServerName: node, ServerClustered: clustered},
		})
	})
	mux.HandleFunc("POST /1.0/cluster/members", func(w http.ResponseWriter, r *http.Request) {
		var req api.ClusterMembersPost
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.ServerName == "" {
			errorResponse(w, http.StatusBadRequest, fmt.Sprintf("bad join token request: %v", err))
			return
		}
		f.mu.Lock()
		id := fmt.Sprintf("op-%d", len(f.tokens)+1)
		f.tokens[id] = req.ServerName
		f.mu.Unlock()
		op := api.Operation{ID: id, Class: api.OperationClassToken, Description: "Requesting a join token",
			Status: api.Running.String(), StatusCode: api.Running, CreatedAt: time.Now(), UpdatedAt: time.Now(),
			Metadata: map[string]any{
				"serverName": req.ServerName, "secret": "s3cret-" + id, "fingerprint": "ab12",
				"addresses": []string{r.Host}, "expiresAt": time.Now().Add(time.Hour).Format(time.RFC3339Nano),
			}}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Location", "/1.0/operations/"+id)
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(api.ResponseRaw{Type: api.AsyncResponse, Status: api.OperationCreated.String(),
			StatusCode: int(api.OperationCreated), Operation: "/1.0/operations/" + id, Metadata: op})
	})
	mux.HandleFunc("GET /1.0/cluster", func(w http.ResponseWriter, r *http.Request) {
		sync200(w, api.Cluster{ServerName: node, Enabled: true, MemberConfig: []api.ClusterMemberConfigKey{
			{Entity: "storage-pool", Name: DefaultPoolName, Key: "source", Description: `"source" property for storage pool "local"`},
			{Entity: "storage-pool", Name: DefaultPoolName, Key: "size", Description: `"size" property for storage pool "local"`},
			{Entity: "storage-pool", Name: DefaultPoolName, Key: "zfs.pool_name", Description: `"zfs.pool_name" property for storage pool "local"`},
		}})
	})
	mux.HandleFunc("GET /1.0/cluster/members", func(w http.ResponseWriter, r *http.Request) {
		sync200(w, f.clusterMembers())
	})
	mux.HandleFunc("GET /1.0/cluster/members/{name}", func(w http.ResponseWriter, r *http.Request) {
		for _, m := range f.clusterMembers() {
			if m.ServerName == r.PathValue("name") {
				sync200(w, m)
				return
			}
		}
		errorResponse(w, http.StatusNotFound, "Cluster member not found")
	})
	mux.HandleFunc("DELETE /1.0/cluster/members/{name}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		f.mu.Lock()
		defer f.mu.Unlock()
		if r.URL.Query().Get("force") == "1" {
			f.revoked = append(f.revoked, "member "+name)
		} else {
			f.changes = append(f.changes, "remove "+name)
		}
		f.members = slices.DeleteFunc(f.members, func(m string) bool { return m == name })
		sync200(w, nil)
	})
	mux.HandleFunc("POST /1.0/cluster/members/{name}/state", func(w http.ResponseWriter, r *http.Request) {
		var req api.ClusterMemberStatePost
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Action != "evacuate" {
			errorResponse(w, http.StatusBadRequest, fmt.Sprintf("bad member state request %+v: %v", req, err))
			return
		}
		f.mu.Lock()
		f.changes = append(f.changes, "evacuate "+r.PathValue("name"))
		f.mu.Unlock()
		// Already done: the client waits for nothing more.
		op := api.Operation{ID: "op-evacuate", Class: api.OperationClassTask, Description: "Evacuating cluster member",
			Status: api.Success.String(), StatusCode: api.Success, CreatedAt: time.Now(), UpdatedAt: time.Now()}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(api.ResponseRaw{Type: api.AsyncResponse, Status: api.OperationCreated.String(),
			StatusCode: int(api.OperationCreated), Operation: "/1.0/operations/op-evacuate", Metadata: op})
	})
	mux.HandleFunc("DELETE /1.0/operations/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		_, ok := f.tokens[r.PathValue("id")]
		if ok {
			f.revoked = append(f.revoked, "operation "+r.PathValue("id"))
		}
		f.mu.Unlock()
		if !ok {
			errorResponse(w, http.StatusNotFound, "Operation not found")
			return
		}
		sync200(w, nil)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// The client tries the events websocket before an operation; it
		// does without one.
		if r.URL.Path != "/1.0/events" {
			f.t.Errorf("fake LXD on %s: unexpected request %s %s", node, r.Method, r.URL)
		}
		errorResponse(w, http.StatusNotFound, "not found")
	})
	return mux
}

// clusterMembers lists the members with the roles LXD settles on
// (ExpectedRoles); unsettled leaves the last member without a role.
func (f *fakeLXD) clusterMembers() []api.ClusterMember {
	f.mu.Lock()
	defer f.mu.Unlock()
	voters, standbys := ExpectedRoles(len(f.members))
	out := []api.ClusterMember{}
	for i, name := range f.members {
		var roles []string
		switch {
		case f.unsettled && i > 0 && i == len(f.members)-1:
		case i == 0:
			roles = []string{"database-leader", "database"}
		case i < voters:
			roles = []string{"database"}
		case i < voters+standbys:
			roles = []string{"database-standby"}
		}
		status := "Online"
		if f.offline[name] {
			status = "Offline"
		}
		out = append(out, api.ClusterMember{ServerName: name, Status: status, Message: "Fully operational", Roles: roles,
			URL: "https://" + f.servers[name].Listener.Addr().String()})
	}
	return out
}

func (f *fakeLXD) revocations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.revoked...)
}

func sync200(w http.ResponseWriter, metadata any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(api.ResponseRaw{Type: api.SyncResponse, Status: api.Success.String(), StatusCode: int(api.Success), Metadata: metadata})
}

func errorResponse(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(api.ResponseRaw{Type: api.ErrorResponse, Code: code, Error: msg})
}

// testLog routes Up's progress lines to the test's log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
