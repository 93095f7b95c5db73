package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
)

// defaultTimeout is launch's and start's wait without --timeout, as
// multipass has it: startup and initialisation get 5 minutes each. It is
// the imitated client's behaviour, not a wait of the harness.
const defaultTimeout = 10 * time.Minute

func cmdVersion(ctx context.Context, e *env, args []string) error {
	p, err := parseArgs(args, optFormat)
	if err != nil {
		return err
	}
	if len(p.pos) > 0 {
		return commandLine("Too many arguments supplied")
	}
	switch p.valueOr("format", "table") {
	case "json":
		return printJSON(map[string]string{"multipass": version, "multipassd": version})
	case "yaml":
		fmt.Printf("multipass: %s\nmultipassd: %s\n", version, version)
	case "csv":
		fmt.Printf("Multipass,Multipassd\n%s,%s\n", version, version)
	case "table":
		fmt.Printf("multipass   %s\nmultipassd  %s\n", version, version)
	default:
		return commandLine("Invalid format type given.")
	}
	return nil
}

// printJSON prints v as multipass's formatter does: indented by four spaces.
func printJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(append(b, '\n'))
	return err
}

// launchRequest is a parsed `launch` command line.
type launchRequest struct {
	name     string
	image    string
	cpus     int
	memMiB   int
	diskGiB  int
	userData []byte
	timeout  time.Duration
}

func parseLaunch(args []string) (launchRequest, error) {
	r := launchRequest{timeout: defaultTimeout}
	p, err := parseArgs(args,
		option{names: []string{"cpus", "c"}, value: true},
		option{names: []string{"disk", "d"}, value: true},
		option{names: []string{"memory", "m", "mem"}, value: true},
		option{names: []string{"name", "n"}, value: true},
		option{names: []string{"cloud-init"}, value: true},
		option{names: []string{"network"}, value: true},
		option{names: []string{"bridged"}},
		option{names: []string{"mount"}, value: true},
		option{names: []string{"timeout"}, value: true},
	)
	if err != nil {
		return r, err
	}
	if len(p.pos) > 1 {
		return r, commandLine("Too many arguments supplied")
	}
	if len(p.pos) == 1 {
		r.image = p.pos[0]
	}
	for _, o := range []string{"network", "bridged", "mount"} {
		if p.has(o) {
			return r, failed("launch", "--%s is not supported by the bcmtest multipass stand-in", o)
		}
	}
	r.name = p.value("name")
	if !p.has("name") {
		var b [3]byte
		rand.Read(b[:])
		r.name = "standin-" + hex.EncodeToString(b[:])
	}
	if err := provider.ValidateVMName(r.name); err != nil {
		return r, failed("launch", "Invalid instance name supplied: %s", r.name)
	}
	cpus := p.valueOr("cpus", "1")
	if r.cpus, err = strconv.Atoi(cpus); err != nil || r.cpus < 1 {
		return r, failed("launch", "Invalid number of CPUs supplied: %s", cpus)
	}
	mem := p.valueOr("memory", "1G")
	if b, err := provider.ParseSize("memory", mem); err != nil || b < 128<<20 {
		return r, failed("launch", "Invalid memory size value supplied: %s.", mem)
	} else {
		r.memMiB = int(b >> 20)
	}
	disk := p.valueOr("disk", "10G")
	if b, err := provider.ParseSize("disk", disk); err != nil || b < 512<<20 {
		return r, failed("launch", "Invalid disk size value supplied: %s.", disk)
	} else {
		r.diskGiB = int((b + 1<<30 - 1) >> 30)
	}
	if p.has("timeout") {
		s, err := strconv.Atoi(p.value("timeout"))
		if err != nil || s <= 0 {
			return r, commandLine("error: --timeout value has to be a positive integer")
		}
		r.timeout = time.Duration(s) * time.Second
	}
	r.userData = []byte("#cloud-config\n{}\n")
	if p.has("cloud-init") {
		if r.userData, err = readCloudInit(p.value("cloud-init")); err != nil {
			return r, err
		}
	}
	return r, nil
}

// readCloudInit reads the user-data as multipass's client does: a regular
// file or "-" for stdin, which must parse as YAML. Unlike multipass, which
// parses and re-dumps it, the stand-in passes it on byte for byte.
func readCloudInit(path string) ([]byte, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(os.Stdin)
	} else {
		fi, serr := os.Stat(path)
		if serr != nil || !fi.Mode().IsRegular() {
			return nil, commandLine("error: No such file: %s", path)
		}
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, commandLine("error loading cloud-init config: %v", err)
	}
	var node yaml.Node
	if err := yaml.Unmarshal(b, &node); err != nil {
		return nil, commandLine("error loading cloud-init config: %v", err)
	}
	return b, nil
}

// cmdLaunch creates the instance's record, boots a QEMU VM of the stand-in
// group and returns once cloud-init has finished, as multipass waits for
// the boot to finish. A cloud-init that finished with errors is still a
// successful launch (multipass does not look at cloud-init's result); the
// caller finds the errors itself.
func cmdLaunch(ctx context.Context, e *env, args []string) error {
	r, err := parseLaunch(args)
	if err != nil {
		return err
	}
	p, err := e.qemu()
	if err != nil {
		return failed("launch", "%v", err)
	}
	lock, err := e.lock(r.name)
	if err != nil {
		return failed("launch", "%v", err)
	}
	defer lock.Unlock()
	in := instance{Name: r.name, Image: r.image, ImageHash: p.Recipe().Key(), ImageRelease: "Debian " + p.Recipe().Suite,
		CPUs: r.cpus, MemoryMiB: r.memMiB, DiskGiB: r.diskGiB, Launcher: os.Getpid(), Created: time.Now().UTC()}
	if err := e.createInstance(in); errors.Is(err, fs.ErrExist) {
		return failed("launch", "instance %q already exists", r.name)
	} else if err != nil {
		return failed("launch", "%v", err)
	}
	if _, err := p.Info(ctx, r.name); err == nil {
		// A VM of this name that the stand-in did not make.
		os.Remove(e.instancePath(r.name))
		return failed("launch", "instance %q already exists", r.name)
	}

	e.tracef("%s: launching (image %q ignored; %d vCPU, %d MiB, %d GiB, timeout %s)", r.name, r.image, r.cpus, r.memMiB, r.diskGiB, r.timeout)
	launch := provider.LaunchInput{Name: r.name, Group: group, CPUs: r.cpus, MemoryMiB: r.memMiB,
		DiskGiB: r.diskGiB, UserData: r.userData, Log: e.trace}
	// The image and this shape's booted snapshot come before --timeout's
	// clock, as multipass has its image cached before it boots: a short
	// timeout then expires on a VM that exists, as multipass's does.
	if err := p.Prepare(ctx, launch); err != nil {
		os.Remove(e.instancePath(r.name))
		return failed("launch", "%v", err)
	}
	lctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	_, lerr := p.Launch(lctx, launch)
	if lerr != nil {
		e.tracef("%s: launch returned: %v", r.name, lerr)
		if errors.Is(lerr, provider.ErrAlreadyExists) {
			// Another process made a VM of this name since the check above.
			os.Remove(e.instancePath(r.name))
			return failed("launch", "instance %q already exists", r.name)
		}
	}
	var ce *provider.CloudInitError
	finished := lerr == nil || (errors.As(lerr, &ce) && ce.Cause == nil)
	// Making it reachable, or finding nothing to, happens even after ctx
	// ended, within the teardown interval.
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), e.intervals.Teardown)
	defer ccancel()
	if st, info, ok := status(cctx, p, in); ok && (st == "Running" || st == "Starting") {
		// Running, whatever launch said: reachable like any instance.
		if err := e.connect(cctx, r.name, info); err != nil {
			return failed("launch", "making %s reachable at %s: %v", r.name, info.PrivateIP, err)
		}
	} else if !ok {
		// Nothing was made (the provider removes a VM that never ran).
		os.Remove(e.instancePath(r.name))
	}
	switch {
	case finished:
		in.Launched = true
		if err := e.saveInstance(in); err != nil {
			return failed("launch", "%v", err)
		}
		fmt.Printf("Launched: %s\n", r.name)
		return nil
	case ctx.Err() != nil:
		return failed("launch", "interrupted")
	case lctx.Err() != nil:
		return &cliError{code: exitTimeout, msg: "Timed out waiting for instance launch."}
	}
	return failed("launch", "%s", oneLine(lerr.Error()))
}

// oneLine keeps the first line of a multi-line error for multipass's
// one-line message.
func oneLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
