package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu"
)

// asDefaultUser runs argv as the instance's default user, as multipass's
// exec and transfer do (over SSH as "ubuntu"); the QEMU provider's Exec runs
// as root, so it drops to the harness account, whose sudo then sets
// SUDO_USER as multipass's would.
func asDefaultUser(argv ...string) []string {
	return append([]string{"sudo", "-n", "-u", qemu.HarnessUser, "--"}, argv...)
}

// names resolves a command's instance arguments: the names given, every
// instance with --all, or multipass's primary instance when neither.
func (e *env) names(cmd string, p parsed, allowAll bool) ([]string, error) {
	if allowAll && p.has("all") {
		if len(p.pos) > 0 {
			return nil, commandLine("Cannot specify name%s when --all option set", map[bool]string{true: "s"}[len(p.pos) > 1])
		}
		ins, err := e.instances()
		if err != nil {
			return nil, failed(cmd, "%v", err)
		}
		var out []string
		for _, in := range ins {
			out = append(out, in.Name)
		}
		return out, nil
	}
	if len(p.pos) == 0 {
		return []string{"primary"}, nil
	}
	return p.pos, nil
}

// loadAll loads every named instance, or fails naming each that does not
// exist, before anything is done to any of them.
func (e *env) loadAll(cmd string, names []string) ([]instance, error) {
	var out []instance
	var missing []string
	for _, n := range names {
		in, err := e.loadInstance(n)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			missing = append(missing, fmt.Sprintf("instance %q does not exist", n))
		case err != nil:
			return nil, failed(cmd, "%v", err)
		default:
			out = append(out, in)
		}
	}
	switch {
	case len(missing) == 1:
		return nil, failed(cmd, "%s", missing[0])
	case len(missing) > 1:
		return nil, failed(cmd, "The following errors occurred:\n%s", strings.Join(missing, "\n"))
	}
	return out, nil
}

// infoInstance is one instance in `info --format json`, fields in the
// order (alphabetical) and spelling multipass prints.
type infoInstance struct {
	CPUCount      string              `json:"cpu_count"`
	Disks         map[string]diskInfo `json:"disks"`
	ImageHash     string              `json:"image_hash"`
	ImageRelease  string              `json:"image_release"`
	IPv4          []string            `json:"ipv4"`
	Load          []float64           `json:"load"`
	Memory        memoryInfo          `json:"memory"`
	Mounts        map[string]any      `json:"mounts"`
	Release       string              `json:"release"`
	SnapshotCount string              `json:"snapshot_count"`
	State         string              `json:"state"`
}

type diskInfo struct {
	Total string `json:"total,omitempty"`
	Used  string `json:"used,omitempty"`
}

type memoryInfo struct {
	Total int64 `json:"total,omitempty"`
	Used  int64 `json:"used,omitempty"`
}

// detailsScript prints what multipass's info reads from a running
// instance, one labelled line each.
const detailsScript = `read l1 l5 l15 rest < /proc/loadavg; echo "load $l1 $l5 $l15"
awk '/^MemTotal:/{t=$2} /^MemAvailable:/{a=$2} END{printf "memory %.0f %.0f\n", t*1024, (t-a)*1024}' /proc/meminfo
df -B1 --output=size,used / | awk 'NR==2{print "disk", $1, $2}'
. /etc/os-release; echo "release $PRETTY_NAME"
ip -4 -o addr show scope global | awk '{print "ipv4", $4}'`

// slirpPrefix is the QEMU user-mode network the VM's first NIC is on: the
// stand-in's plumbing to the host, not an address multipass would list.
const slirpPrefix = "10.0.2."

// describe is one instance's info. The private address is listed first,
// as multipass lists the address the host reaches the instance at first.
func (e *env) describe(ctx context.Context, p *qemu.Provider, in instance, runtime bool) infoInstance {
	st, info, _ := status(ctx, p, in)
	out := infoInstance{Disks: map[string]diskInfo{"sda1": {}}, ImageHash: in.ImageHash, ImageRelease: in.ImageRelease,
		IPv4: []string{}, Load: []float64{}, Mounts: map[string]any{}, SnapshotCount: "0", State: st}
	if st != "Running" && st != "Starting" {
		return out
	}
	out.CPUCount = strconv.Itoa(in.CPUs)
	if info.PrivateIP != "" {
		out.IPv4 = append(out.IPv4, info.PrivateIP)
	}
	if !runtime {
		return out
	}
	dctx, cancel := context.WithTimeout(ctx, e.intervals.DiagExec.Timeout)
	defer cancel()
	res, err := p.Exec(dctx, in.Name, provider.ExecInput{Argv: asDefaultUser("sh", "-c", detailsScript)})
	if err != nil {
		return out
	}
	sc := bufio.NewScanner(bytes.NewReader(res.Stdout))
	for sc.Scan() {
		label, rest, _ := strings.Cut(sc.Text(), " ")
		f := strings.Fields(rest)
		switch {
		case label == "load" && len(f) == 3:
			for _, x := range f {
				v, _ := strconv.ParseFloat(x, 64)
				out.Load = append(out.Load, v)
			}
		case label == "memory" && len(f) == 2:
			out.Memory.Total, _ = strconv.ParseInt(f[0], 10, 64)
			out.Memory.Used, _ = strconv.ParseInt(f[1], 10, 64)
		case label == "disk" && len(f) == 2:
			out.Disks["sda1"] = diskInfo{Total: f[0], Used: f[1]}
		case label == "release":
			out.Release = rest
		case label == "ipv4" && len(f) == 1:
			ip, _, _ := strings.Cut(f[0], "/")
			if ip != info.PrivateIP && !strings.HasPrefix(ip, slirpPrefix) {
				out.IPv4 = append(out.IPv4, ip)
			}
		}
	}
	return out
}

func checkFormat(p parsed) (string, error) {
	f := p.valueOr("format", "table")
	switch f {
	case "json", "table":
		return f, nil
	case "yaml", "csv":
		return f, failed("format", "%s output is not supported by the bcmtest multipass stand-in", f)
	}
	return f, commandLine("Invalid format type given.")
}

func cmdInfo(ctx context.Context, e *env, args []string) error {
	p, err := parseArgs(args, optFormat, optAll, option{names: []string{"snapshots"}}, option{names: []string{"no-runtime-information"}})
	if err != nil {
		return err
	}
	format, err := checkFormat(p)
	if err != nil {
		return err
	}
	if p.has("snapshots") {
		return failed("info", "snapshots are not supported by the bcmtest multipass stand-in")
	}
	if len(p.pos) == 0 && !p.has("all") {
		return commandLine("Name argument or --all is required")
	}
	names, err := e.names("info", p, true)
	if err != nil {
		return err
	}
	ins, err := e.loadAll("info", names)
	if err != nil {
		return err
	}
	q, err := e.qemu()
	if err != nil {
		return failed("info", "%v", err)
	}
	reply := struct {
		Errors []any                   `json:"errors"`
		Info   map[string]infoInstance `json:"info"`
	}{Errors: []any{}, Info: map[string]infoInstance{}}
	for _, in := range ins {
		reply.Info[in.Name] = e.describe(ctx, q, in, !p.has("no-runtime-information"))
	}
	if format == "json" {
		return printJSON(reply)
	}
	for i, in := range ins {
		d := reply.Info[in.Name]
		if i > 0 {
			fmt.Println()
		}
		fmt.Printf("Name:           %s\nState:          %s\nSnapshots:      0\nIPv4:           %s\nRelease:        %s\nImage hash:     %s\nCPU(s):         %s\n",
			in.Name, d.State, orDashes(strings.Join(d.IPv4, "\n                ")), orDashes(d.Release), d.ImageHash, orDashes(d.CPUCount))
	}
	return nil
}

func orDashes(s string) string {
	if s == "" {
		return "--"
	}
	return s
}

// listItem is one instance in `list --format json`.
type listItem struct {
	IPv4    []string `json:"ipv4"`
	Name    string   `json:"name"`
	Release string   `json:"release"`
	State   string   `json:"state"`
}

func cmdList(ctx context.Context, e *env, args []string) error {
	p, err := parseArgs(args, optFormat, option{names: []string{"snapshots"}}, option{names: []string{"no-ipv4"}})
	if err != nil {
		return err
	}
	format, err := checkFormat(p)
	if err != nil {
		return err
	}
	if len(p.pos) > 0 {
		return commandLine("This command takes no arguments")
	}
	if p.has("snapshots") {
		return failed("list", "snapshots are not supported by the bcmtest multipass stand-in")
	}
	ins, err := e.instances()
	if err != nil {
		return failed("list", "%v", err)
	}
	q, err := e.qemu()
	if err != nil {
		return failed("list", "%v", err)
	}
	reply := struct {
		List []listItem `json:"list"`
	}{List: []listItem{}}
	for _, in := range ins {
		d := e.describe(ctx, q, in, false)
		reply.List = append(reply.List, listItem{IPv4: d.IPv4, Name: in.Name, Release: in.ImageRelease, State: d.State})
	}
	if format == "json" {
		return printJSON(reply)
	}
	if len(reply.List) == 0 {
		fmt.Fprintln(os.Stderr, "No instances found.")
		return nil
	}
	fmt.Printf("%-24s%-18s%-17s%s\n", "Name", "State", "IPv4", "Image")
	for _, it := range reply.List {
		fmt.Printf("%-24s%-18s%-17s%s\n", it.Name, it.State, orDashes(strings.Join(it.IPv4, ",")), it.Release)
	}
	return nil
}

// ensureRunning starts a stopped instance, as multipass's exec does when
// the daemon says the instance is not running.
func (e *env) ensureRunning(ctx context.Context, cmd string, q *qemu.Provider, in instance) error {
	st, _, exists := status(ctx, q, in)
	switch {
	case st == "Running" || st == "Starting":
		return nil
	case !exists:
		return failed(cmd, "instance %q is in an unknown state", in.Name)
	}
	return e.start(ctx, q, in)
}

func cmdExec(ctx context.Context, e *env, args []string) error {
	p, err := parseArgs(args, option{names: []string{"working-directory", "d"}, value: true}, option{names: []string{"no-map-working-directory", "n"}})
	var ce *cliError
	if errors.As(err, &ce) && !containsDashDash(args) {
		ce.msg += "\n\nOptions to the inner command should come after \"--\", like this:\nmultipass exec <instance> -- <command> <arguments>"
	}
	if err != nil {
		return err
	}
	if len(p.pos) < 2 {
		return commandLine("Wrong number of arguments")
	}
	name, argv := p.pos[0], p.pos[1:]
	ins, err := e.loadAll("exec", []string{name})
	if err != nil {
		return err
	}
	q, err := e.qemu()
	if err != nil {
		return failed("exec", "%v", err)
	}
	if err := e.ensureRunning(ctx, "exec", q, ins[0]); err != nil {
		return err
	}
	if p.has("working-directory") {
		argv = append([]string{"sh", "-c", `cd "$1" && shift && exec "$@"`, "sh", p.value("working-directory")}, argv...)
	}
	res, err := q.Exec(ctx, name, provider.ExecInput{Argv: asDefaultUser(argv...), Stdin: stdin()})
	os.Stdout.Write(res.Stdout)
	os.Stderr.Write(res.Stderr)
	if err != nil {
		return failed("exec", "%v", err)
	}
	if res.ExitCode < 0 || res.ExitCode > 255 {
		return &cliError{code: 255}
	}
	if res.ExitCode != 0 {
		return &cliError{code: res.ExitCode}
	}
	return nil
}

func containsDashDash(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return true
		}
	}
	return false
}

// stdin is what to pass to a remote command: the stand-in's stdin when it
// is a pipe or file, nothing when it is a terminal or /dev/null (an SSH
// session waits for its stdin to end).
func stdin() io.Reader {
	fi, err := os.Stdin.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice != 0 {
		return nil
	}
	return os.Stdin
}

// splitRemote reads "NAME:PATH" as multipass's transfer does: anything
// with a ':' after a non-empty prefix names an instance.
func splitRemote(arg string) (name, path string, ok bool) {
	i := strings.Index(arg, ":")
	if i <= 0 {
		return "", arg, false
	}
	return arg[:i], arg[i+1:], true
}

// Scripts transfer runs as the default user: write stdin to $1 (into it
// when it is a directory, as $2), creating parents when $3 is 1; read $1.
const (
	putScript = `t="$1"; if [ -d "$t" ]; then t="${t%/}/$2"; fi; if [ "$3" = 1 ]; then mkdir -p -- "$(dirname -- "$t")" || exit; fi; cat > "$t"`
	getScript = `if [ -d "$1" ]; then echo "$1 is a directory" >&2; exit 1; fi; cat -- "$1"`
)

func cmdTransfer(ctx context.Context, e *env, args []string) error {
	p, err := parseArgs(args, option{names: []string{"recursive", "r"}}, option{names: []string{"parents", "p"}}, option{names: []string{"quiet", "q"}})
	if err != nil {
		return err
	}
	switch {
	case len(p.pos) < 2:
		return commandLine("Not enough arguments given")
	case len(p.pos) > 2:
		return failed("transfer", "the bcmtest multipass stand-in transfers one source at a time")
	case p.has("recursive"):
		return failed("transfer", "--recursive is not supported by the bcmtest multipass stand-in")
	}
	srcName, srcPath, srcRemote := splitRemote(p.pos[0])
	dstName, dstPath, dstRemote := splitRemote(p.pos[1])
	switch {
	case srcRemote && dstRemote:
		return commandLine("Cannot specify an instance name for both source and destination")
	case !srcRemote && !dstRemote:
		return commandLine("An instance name is needed for either source or destination")
	}
	name := srcName
	if dstRemote {
		name = dstName
	}
	ins, err := e.loadAll("transfer", []string{name})
	if err != nil {
		return err
	}
	q, err := e.qemu()
	if err != nil {
		return failed("transfer", "%v", err)
	}
	if st, _, _ := status(ctx, q, ins[0]); st != "Running" {
		return failed("transfer", "instance %q is not running", name)
	}
	parents := "0"
	if p.has("parents") {
		parents = "1"
	}
	if dstRemote {
		content, err := os.ReadFile(srcPath)
		if err != nil {
			return failed("transfer", "[sftp] cannot read source %q: %v", srcPath, err)
		}
		if dstPath == "" {
			dstPath = "."
		}
		res, err := q.Exec(ctx, name, provider.ExecInput{Argv: asDefaultUser("sh", "-c", putScript, "sh", dstPath, filepath.Base(srcPath), parents),
			Stdin: bytes.NewReader(content)})
		if err != nil {
			return failed("transfer", "%v", err)
		}
		if res.ExitCode != 0 {
			return failed("transfer", "[sftp] cannot write remote file %q: %s", dstPath, strings.TrimSpace(string(res.Stderr)))
		}
		return nil
	}
	res, err := q.Exec(ctx, name, provider.ExecInput{Argv: asDefaultUser("sh", "-c", getScript, "sh", srcPath)})
	if err != nil {
		return failed("transfer", "%v", err)
	}
	if res.ExitCode != 0 {
		return failed("transfer", "[sftp] cannot open remote file %q: %s", srcPath, strings.TrimSpace(string(res.Stderr)))
	}
	if fi, err := os.Stat(dstPath); err == nil && fi.IsDir() {
		dstPath = filepath.Join(dstPath, filepath.Base(srcPath))
	}
	if parents == "1" {
		if err := os.MkdirAll(filepath.Dir(dstPath), 0o755); err != nil {
			return failed("transfer", "%v", err)
		}
	}
	if err := os.WriteFile(dstPath, res.Stdout, 0o644); err != nil {
		return failed("transfer", "[sftp] cannot write local file %q: %v", dstPath, err)
	}
	return nil
}

func cmdStop(ctx context.Context, e *env, args []string) error {
	p, err := parseArgs(args, optAll, option{names: []string{"time", "t"}, value: true}, option{names: []string{"cancel", "c"}}, option{names: []string{"force"}})
	if err != nil {
		return err
	}
	if p.has("cancel") || (p.has("time") && p.value("time") != "0") {
		return failed("stop", "delayed shutdown is not supported by the bcmtest multipass stand-in")
	}
	names, err := e.names("stop", p, true)
	if err != nil {
		return err
	}
	ins, err := e.loadAll("stop", names)
	if err != nil {
		return err
	}
	q, err := e.qemu()
	if err != nil {
		return failed("stop", "%v", err)
	}
	for _, in := range ins {
		if err := e.stop(ctx, q, in, p.has("force")); err != nil {
			return failed("stop", "%v", err)
		}
	}
	return nil
}

// stop makes the instance unreachable and shuts its VM down.
func (e *env) stop(ctx context.Context, q *qemu.Provider, in instance, force bool) error {
	lock, err := e.lock(in.Name)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	info, err := q.Info(ctx, in.Name)
	if err != nil {
		return fmt.Errorf("instance %q is in an unknown state", in.Name)
	}
	if err := e.disconnect(ctx, in.Name, info.PrivateIP); err != nil {
		return err
	}
	if force {
		return q.PowerOff(ctx, in.Name)
	}
	return q.Stop(ctx, in.Name)
}

func cmdStart(ctx context.Context, e *env, args []string) error {
	p, err := parseArgs(args, optAll, option{names: []string{"timeout"}, value: true})
	if err != nil {
		return err
	}
	timeout := defaultTimeout
	if p.has("timeout") {
		s, err := strconv.Atoi(p.value("timeout"))
		if err != nil || s <= 0 {
			return commandLine("error: --timeout value has to be a positive integer")
		}
		timeout = time.Duration(s) * time.Second
	}
	names, err := e.names("start", p, true)
	if err != nil {
		return err
	}
	ins, err := e.loadAll("start", names)
	if err != nil {
		return err
	}
	q, err := e.qemu()
	if err != nil {
		return failed("start", "%v", err)
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, in := range ins {
		if err := e.start(sctx, q, in); err != nil {
			if sctx.Err() != nil && ctx.Err() == nil {
				return &cliError{code: exitTimeout, msg: "Timed out waiting for instance to start."}
			}
			return err
		}
	}
	return nil
}

// start boots a stopped instance's VM, waits for SSH, and makes it
// reachable again (its forward ports may have changed).
func (e *env) start(ctx context.Context, q *qemu.Provider, in instance) error {
	lock, err := e.lock(in.Name)
	if err != nil {
		return failed("start", "%v", err)
	}
	defer lock.Unlock()
	if err := q.Start(ctx, in.Name); err != nil {
		if errors.Is(err, provider.ErrNotFound) {
			return failed("start", "instance %q is in an unknown state", in.Name)
		}
		return failed("start", "%s", oneLine(err.Error()))
	}
	info, err := q.Info(ctx, in.Name)
	if err != nil {
		return failed("start", "%v", err)
	}
	if err := e.connect(ctx, in.Name, info); err != nil {
		return failed("start", "making %s reachable at %s: %v", in.Name, info.PrivateIP, err)
	}
	return nil
}

// cmdDelete deletes and purges exactly the instances named. A plain delete
// (recoverable, then purged by the global purge) is refused: the stand-in
// has no deleted state, and the harness must only ever purge its own.
func cmdDelete(ctx context.Context, e *env, args []string) error {
	p, err := parseArgs(args, optAll, option{names: []string{"purge", "p"}})
	if err != nil {
		return err
	}
	if !p.has("purge") {
		return failed("delete", "the bcmtest multipass stand-in deletes only with --purge")
	}
	if len(p.pos) == 0 && !p.has("all") {
		return commandLine("Name argument or --all is required")
	}
	names, err := e.names("delete", p, true)
	if err != nil {
		return err
	}
	ins, err := e.loadAll("delete", names)
	if err != nil {
		return err
	}
	q, err := e.qemu()
	if err != nil {
		return failed("delete", "%v", err)
	}
	// Teardown finishes even when the caller gives up on it.
	ctx = context.WithoutCancel(ctx)
	var errs []error
	for _, in := range ins {
		if err := e.purge(ctx, q, in.Name); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return failed("delete", "%v", err)
	}
	return nil
}

// purge removes everything of one instance: proxy, loopback address, VM,
// then the stand-in's records.
func (e *env) purge(ctx context.Context, q *qemu.Provider, name string) error {
	lock, err := e.lock(name)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	ip := ""
	if info, err := q.Info(ctx, name); err == nil {
		ip = info.PrivateIP
	}
	if err := e.disconnect(ctx, name, ip); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := q.Delete(ctx, name); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	for _, f := range []string{e.instancePath(name), e.proxyPath(name), filepath.Join(e.dir, name+".lock")} {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	e.tracef("%s: deleted and purged", name)
	return nil
}
