package qemu

import (
	"fmt"
	"strconv"
)

// argvInput is everything the qemu command line depends on.
type argvInput struct {
	Name       string
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
		"-machine", "q35",
		"-accel", accel,
		"-smp", strconv.Itoa(in.CPUs),
		"-m", strconv.Itoa(in.MemoryMiB),
		"-nodefaults", "-no-user-config", "-display", "none", "-vga", "none",
		"-kernel", in.Kernel,
		"-initrd", in.Initrd,
		"-append", in.KernelArgs,
		"-drive", "file=" + in.Overlay + ",if=none,id=" + diskID + ",format=qcow2,discard=unmap",
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
		"-qmp", "unix:" + in.QMP + ",server=on,wait=off",
		"-pidfile", in.PIDFile,
	}
	if in.Incoming {
		argv = append(argv, "-incoming", "defer")
	}
	return argv
}

// Device ids the restore addresses over QMP. Every VM has the same device
// set, so a snapshot of one shape restores into any VM of that shape.
const (
	diskID  = "disk0"
	seedID  = "seed0"
	cdromID = "cdrom0"
)

func seedDrive(seed string) string {
	d := "if=none,id=" + seedID + ",media=cdrom,readonly=on"
	if seed != "" {
		d += ",format=raw,file=" + seed
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
