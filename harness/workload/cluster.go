package workload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	lxd "github.com/canonical/lxd/client"
	"github.com/canonical/lxd/shared/api"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
)

// ImportInput is an instance image and the cluster it goes into.
type ImportInput struct {
	// Server is a client of the cluster (any member).
	Server lxd.InstanceServer
	Image  Image
	// Alias names the image for launches; it is made to point at this image.
	Alias string
	// Progress receives upload progress lines; nil discards them.
	Progress io.Writer
}

// ImportResult says what Import did.
type ImportResult struct {
	Fingerprint string
	// Uploaded is false when the cluster already had the image.
	Uploaded bool
	Took     time.Duration
}

var aliasName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Import uploads in.Image through the LXD image API unless the cluster
// already has an image of that fingerprint (so once per cluster), checks
// the fingerprint LXD computed, and points in.Alias at it. It returns when
// ctx ends, whatever the member does (WithContext; the upload: upload).
func Import(ctx context.Context, in ImportInput) (ImportResult, error) {
	start := time.Now()
	fp := in.Image.Fingerprint()
	switch {
	case in.Server == nil:
		return ImportResult{}, errors.New("importing the instance image: no LXD client given")
	case len(fp) != 64:
		return ImportResult{}, fmt.Errorf("importing instance image %s: fingerprint %q is not a SHA-256", in.Image.Key, fp)
	case !aliasName.MatchString(in.Alias):
		return ImportResult{}, fmt.Errorf("importing instance image %s: alias %q must be letters, digits, '.', '_' or '-'", in.Image.Key, in.Alias)
	}
	res := ImportResult{Fingerprint: fp}
	srv := WithContext(ctx, in.Server)
	if _, _, err := srv.GetImage(fp); err != nil {
		if !api.StatusErrorCheck(err, 404) {
			return res, fmt.Errorf("looking up image %s in the cluster: %w", fp[:12], err)
		}
		f, err := os.Open(in.Image.Path)
		if err != nil {
			return res, fmt.Errorf("importing instance image %s: %w", in.Image.Key, err)
		}
		defer f.Close()
		op, err := upload(ctx, srv, f)
		if err != nil {
			return res, fmt.Errorf("uploading instance image %s (%s): %w", in.Image.Key, fp[:12], err)
		}
		if err := op.WaitContext(ctx); err != nil {
			return res, fmt.Errorf("importing instance image %s (%s): %w", in.Image.Key, fp[:12], err)
		}
		if got, _ := op.Get().Metadata["fingerprint"].(string); got != "" && got != fp {
			return res, fmt.Errorf("importing instance image %s: LXD computed fingerprint %s, the cache has %s", in.Image.Key, got, fp)
		}
		res.Uploaded = true
		if in.Progress != nil {
			fmt.Fprintf(in.Progress, "instance image %s: uploaded as %s in %s\n", in.Image.Key, fp[:12], time.Since(start).Round(100*time.Millisecond))
		}
	}
	alias, _, err := srv.GetImageAlias(in.Alias)
	switch {
	case err == nil && alias.Target == fp:
	case err == nil:
		if err := srv.UpdateImageAlias(in.Alias, api.ImageAliasesEntryPut{Target: fp, Description: alias.Description}, ""); err != nil {
			return res, fmt.Errorf("pointing alias %s at image %s: %w", in.Alias, fp[:12], err)
		}
	case api.StatusErrorCheck(err, 404):
		if err := srv.CreateImageAlias(api.ImageAliasesPost{ImageAliasesEntry: api.ImageAliasesEntry{
			Name: in.Alias, Target: fp, Description: "bcmtest workload image " + in.Image.Key,
		}}); err != nil {
			return res, fmt.Errorf("creating alias %s for image %s: %w", in.Alias, fp[:12], err)
		}
	default:
		return res, fmt.Errorf("looking up image alias %s: %w", in.Alias, err)
	}
	res.Took = time.Since(start)
	return res, nil
}

// upload sends the unified tarball f. The client makes the upload's
// request without its context, so a member that stops answering (paused,
// its connection kept open) would hold it for the client's hour-long
// response-header timeout, or for ever while the body is being written:
// upload returns when ctx ends and leaves the request to end with its
// connection. Its body stops at its next read once ctx has ended.
func upload(ctx context.Context, srv lxd.InstanceServer, f io.Reader) (lxd.Operation, error) {
	type created struct {
		op  lxd.Operation
		err error
	}
	done := make(chan created, 1)
	go func() {
		op, err := srv.CreateImage(api.ImagesPost{Filename: imageTarballName}, &lxd.ImageCreateArgs{
			MetaFile: ctxReader{ctx, f}, MetaName: imageTarballName, Type: "container",
		})
		done <- created{op, err}
	}()
	select {
	case c := <-done:
		return c.op, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// ctxReader is r that fails once ctx has ended: the upload's body, so an
// upload abandoned while the member still reads ends at once.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// NetworkType is the instance network's LXD type: a macvlan on each
// member's private NIC. It needs no bridge, no dnsmasq and no firewall on
// the members; instances on different members meet on the private segment,
// with addresses the suite gives them (AddressEnv).
const NetworkType = "macvlan"

// NetworkInput is the cluster network to create.
type NetworkInput struct {
	Server lxd.InstanceServer
	Name   string
	// Parents maps every member to the NIC the network sits on there.
	Parents map[string]string
	// CleanupTimeout bounds removing a half-made network after a failure;
	// it has a context of its own, since ctx may be what ended.
	CleanupTimeout time.Duration
}

var netName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,14}$`)

// CreateNetwork creates the network as LXD requires in a cluster: pending
// on each member with its member-specific parent, then cluster-wide. A
// network of that name that is already Created as a macvlan is kept.
// Every request ends with ctx. On an error, the network it began is
// deleted (a Pending or Errored network would make every later run on a
// reused cluster fail with "exists ... Pending"); nil means the network
// is Created, and the caller deletes it.
func CreateNetwork(ctx context.Context, in NetworkInput) (err error) {
	switch {
	case in.Server == nil:
		return errors.New("creating the instance network: no LXD client given")
	case !netName.MatchString(in.Name):
		return fmt.Errorf("creating instance network %q: the name must start with a letter and be at most 15 letters, digits or '-' (an interface name)", in.Name)
	case len(in.Parents) == 0:
		return fmt.Errorf("creating instance network %s: no member parents given", in.Name)
	case in.CleanupTimeout <= 0:
		return fmt.Errorf("creating instance network %s: CleanupTimeout %s must be positive (it bounds removing a half-made network)", in.Name, in.CleanupTimeout)
	}
	members := make([]string, 0, len(in.Parents))
	for m := range in.Parents {
		if in.Parents[m] == "" {
			return fmt.Errorf("creating instance network %s: no parent NIC for member %s", in.Name, m)
		}
		members = append(members, m)
	}
	sort.Strings(members)
	srv := WithContext(ctx, in.Server)
	n, _, err := srv.GetNetwork(in.Name)
	switch {
	case err == nil && n.Managed && n.Type == NetworkType && n.Status == "Created":
		return nil
	case err == nil:
		return fmt.Errorf("creating instance network %s: a network of that name exists (type %s, status %s)", in.Name, n.Type, n.Status)
	case !api.StatusErrorCheck(err, http.StatusNotFound):
		return fmt.Errorf("creating instance network %s: looking it up: %w", in.Name, err)
	}
	// From the first create on, a failure (an ended ctx included) removes
	// what LXD may hold: a create can fail after LXD recorded it.
	defer func() {
		if err != nil {
			err = deleteHalfMadeNetwork(ctx, in, err)
		}
	}()
	for _, m := range members {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("creating instance network %s: %w", in.Name, err)
		}
		err := srv.UseTarget(m).CreateNetwork(api.NetworksPost{Name: in.Name, Type: NetworkType,
			NetworkPut: api.NetworkPut{Config: map[string]string{"parent": in.Parents[m]}}})
		if err != nil {
			return fmt.Errorf("creating instance network %s pending on %s (parent %s): %w", in.Name, m, in.Parents[m], err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("creating instance network %s: %w", in.Name, err)
	}
	if err := srv.CreateNetwork(api.NetworksPost{Name: in.Name, Type: NetworkType,
		NetworkPut: api.NetworkPut{Description: "bcmtest instance network"}}); err != nil {
		return fmt.Errorf("creating instance network %s across the cluster: %w", in.Name, err)
	}
	return nil
}

// deleteHalfMadeNetwork deletes network in.Name after cause ended its
// creation, within in.CleanupTimeout of a context that outlives ctx; a
// network LXD never recorded is no error. It returns cause, with the
// deletion's failure if it failed.
func deleteHalfMadeNetwork(ctx context.Context, in NetworkInput, cause error) error {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.CleanupTimeout)
	defer cancel()
	err := WithContext(dctx, in.Server).DeleteNetwork(in.Name)
	if err == nil || api.StatusErrorCheck(err, http.StatusNotFound) {
		return cause
	}
	return fmt.Errorf("%w; removing the half-made network %s as well: %v", cause, in.Name, err)
}

// PrivateNIC is the interface that holds the node's private-segment
// address, found on the node itself.
func PrivateNIC(ctx context.Context, n *cluster.Node) (string, error) {
	if net.ParseIP(n.Address) == nil {
		return "", fmt.Errorf("finding the private NIC of %s: address %q is not an IP", n.Name, n.Address)
	}
	out, err := n.Exec(ctx, "ip", "-o", "-4", "addr", "show", "to", n.Address+"/32")
	if err != nil {
		return "", fmt.Errorf("finding the private NIC of %s: %w", n.Name, err)
	}
	return parseIPAddrNIC(out, n.Name, n.Address)
}

// parseIPAddrNIC reads the interface from `ip -o -4 addr show to ADDR`:
// "3: eth1    inet 10.77.0.10/24 brd ... scope global eth1".
func parseIPAddrNIC(out, node, addr string) (string, error) {
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[2] == "inet" && strings.HasPrefix(f[3], addr+"/") {
			return strings.TrimSuffix(f[1], ":"), nil
		}
	}
	return "", fmt.Errorf("finding the private NIC of %s: no interface holds %s (ip said %q)", node, addr, strings.TrimSpace(out))
}
