package qemu

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// argvInput is everything the qemu command line depends on.
type argvInput struct {
	Name string
	// Machine is the concrete machine type (pc-q35-X.Y, resolveMachine):
	// the q35 alias moves with QEMU upgrades, and a migration stream loads
	// only into the machine type that saved it.
	Machine    string
	CPUs       int
	MemoryMiB  int
	Accel      string // "kvm" or "tcg"
	Kernel     string
	Initrd     string
	KernelArgs string
	Overlay    string
	// Seed is the NoCloud ISO on the CD-ROM; "" leaves the drive empty
	// (a snapshot's template, or a restore that inserts it over QMP).
	Seed string
	// Incoming starts qemu waiting for a migration stream (a restore).
	Incoming  bool
	SSHPort   int
	APIPort   int
	PrivateIP string
	AptPort   int // 0: no apt cache forward
	// Segment is what NIC 1 is plugged into; zero for none (a template).
	Segment segment
	MACs    [2]string
	Serial  string
	QMP     string
	PIDFile string
}

// buildArgv returns qemu-system-x86_64's arguments. Network rules: NIC 0 is
// user-mode with restrict=on (no route off the machine) and forwards only on
// 127.0.0.1; NIC 1 is the cluster's private segment (segment.netdev), seen
// only by the VMs of one cluster.
func buildArgv(in argvInput) []string {
	accel := "tcg,thread=multi"
	if in.Accel == "kvm" {
		accel = "kvm"
	}
	user := fmt.Sprintf("user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:%d-:22,hostfwd=tcp:127.0.0.1:%d-%s:8443",
		in.SSHPort, in.APIPort, in.PrivateIP)
	if in.AptPort > 0 {
		user += fmt.Sprintf(",guestfwd=tcp:%s-cmd:%s", AptProxyAddr, aptForwarder(in.AptPort))
	}
	argv := []string{
		"-name", in.Name,
		"-machine", in.Machine,
		"-accel", accel,
		"-smp", strconv.Itoa(in.CPUs),
		"-m", strconv.Itoa(in.MemoryMiB),
		"-nodefaults", "-no-user-config", "-display", "none", "-vga", "none",
		"-kernel", in.Kernel,
		"-initrd", in.Initrd,
		"-append", in.KernelArgs,
		"-drive", "file=" + qemuOpt(in.Overlay) + ",if=none,id=" + diskID + ",format=qcow2,discard=unmap",
		"-device", "virtio-blk-pci,drive=" + diskID + ",id=" + diskID + "-dev",
		"-drive", seedDrive(in.Seed),
		"-device", "ide-cd,drive=" + seedID + ",id=" + cdromID + ",bus=ide.1",
		"-netdev", user,
		"-device", "virtio-net-pci,netdev=n0,mac=" + in.MACs[0],
		"-netdev", in.Segment.netdev("n1"),
		"-device", "virtio-net-pci,netdev=n1,mac=" + in.MACs[1],
		"-device", "virtio-rng-pci",
		// A new generation ID on every start, restores included: Linux
		// reseeds its RNG when it changes.
		"-device", "vmgenid,guid=auto",
		"-serial", "file:" + in.Serial,
		"-qmp", "unix:" + qemuOpt(in.QMP) + ",server=on,wait=off",
		"-pidfile", in.PIDFile,
	}
	if in.Incoming {
		argv = append(argv, "-incoming", "defer")
	}
	return argv
}

// qemuBuild is what a migration stream is tied to besides the device set:
// the QEMU that saved it and the concrete machine type it ran.
type qemuBuild struct {
	Version string // `qemu-system-x86_64 --version`, e.g. "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)"
	Machine string // what q35 resolves to, e.g. "pc-q35-7.2"
}

// probeQEMU asks the installed qemu for its version and what q35 resolves
// to. Cheap (two short runs); done where a snapshot is chosen or a VM
// started, so an upgrade between runs is seen.
func probeQEMU(ctx context.Context) (qemuBuild, error) {
	out, err := exec.CommandContext(ctx, qemuBinary, "--version").Output()
	if err != nil {
		return qemuBuild{}, fmt.Errorf("asking %s --version: %w", qemuBinary, err)
	}
	first, _, _ := strings.Cut(string(out), "\n")
	version := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(first), "QEMU emulator version"))
	if version == "" {
		return qemuBuild{}, fmt.Errorf("asking %s --version: no version in %q", qemuBinary, out)
	}
	help, err := exec.CommandContext(ctx, qemuBinary, "-machine", "help").Output()
	if err != nil {
		return qemuBuild{}, fmt.Errorf("asking %s -machine help: %w", qemuBinary, err)
	}
	machine, err := resolveMachine(string(help), "q35")
	if err != nil {
		return qemuBuild{}, err
	}
	return qemuBuild{Version: version, Machine: machine}, nil
}

// resolveMachine finds the machine type an alias stands for in the
// output of `-machine help` ("q35  Standard PC ... (alias of pc-q35-7.2)").
// A name listed without "alias of" is concrete already.
func resolveMachine(help, alias string) (string, error) {
	for _, line := range strings.Split(help, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != alias {
			continue
		}
		_, rest, ok := strings.Cut(line, "(alias of ")
		if !ok {
			return alias, nil
		}
		name, _, ok := strings.Cut(rest, ")")
		if !ok || name == "" || strings.ContainsAny(name, " /,") {
			return "", fmt.Errorf("resolving machine type %s: cannot read %q", alias, line)
		}
		return name, nil
	}
	return "", fmt.Errorf("resolving machine type %s: %s -machine help does not list it", alias, qemuBinary)
}

// Device ids the restore addresses over QMP. Every VM has the same device
// set, so a snapshot of one shape restores into any VM of that shape.
const (
	diskID  = "disk0"
	seedID  = "seed0"
	cdromID = "cdrom0"
)

// qemuOpt escapes a value inside a comma-separated qemu option: qemu reads
// ",," as one comma. (-serial file:PATH, -pidfile, -kernel and -initrd take
// the rest of their argument as it is and need nothing.)
func qemuOpt(v string) string { return strings.ReplaceAll(v, ",", ",,") }

func seedDrive(seed string) string {
	d := "if=none,id=" + seedID + ",media=cdrom,readonly=on"
	if seed != "" {
		d += ",format=raw,file=" + qemuOpt(seed)
	}
	return d
}

// aptForwarder is the command QEMU runs for each guest connection to the
// apt cache, with the connection as its stdin and stdout. It must exit when
// the cache closes its side: netcat waits for stdin's EOF instead, so the
// guest kept a dead connection and apt stalled 30 s on its next request
// (seen on bookworm-security's and bookworm-updates' InRelease). socat
// ends the connection as soon as either side does.
func aptForwarder(port int) string {
	return fmt.Sprintf("socat STDIO TCP:127.0.0.1:%d", port)
}
