// Package provider defines the one small interface every VM backend
// implements (embedded QEMU, multipass). Nothing outside a backend's own
// package knows which backend runs.
package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// State is a VM's lifecycle state, spelled as multipass spells it.
type State string

const (
	StateRunning   State = "Running"
	StateStopped   State = "Stopped"
	StateStarting  State = "Starting"
	StateSuspended State = "Suspended"
	StateDeleted   State = "Deleted"
	StateUnknown   State = "Unknown"
)

// LaunchInput describes one VM to start.
type LaunchInput struct {
	// Name is the VM's name and hostname (validated by ValidateVMName).
	Name string
	// Group puts VMs on one private segment (one cluster = one group). Two
	// groups never see each other's traffic.
	Group     string
	CPUs      int
	MemoryMiB int
	DiskGiB   int
	// UserData is the user's cloud-init file, passed byte for byte.
	UserData []byte
	// Log receives progress lines; nil discards them.
	Log io.Writer
	// OnPhase, if set, receives each boot phase the VM reaches, in order
	// and at most once each, while Launch runs; never after Launch returns.
	// It runs on the provider's goroutines and must not block. A backend
	// that cannot see a phase skips it.
	OnPhase func(BootPhase)
}

// BootPhase is a step of a VM's boot, as progress output shows it.
type BootPhase string

// The boot phases, in the order a boot reaches them. A VM restored from a
// booted snapshot has no kernel boot: its console starts at the seed.
const (
	BootQEMUStarted   BootPhase = "qemu started"              // the VM's process runs (cold boot or restored)
	BootKernel        BootPhase = "kernel"                    // the kernel prints its version (cold boot only)
	BootSystemd       BootPhase = "systemd"                   // systemd starts units
	BootSeedPresent   BootPhase = "seed present"              // the cloud-init seed was there at boot
	BootSeedRestored  BootPhase = "seed restored"             // the seed arrived after a snapshot restore
	BootInitLocal     BootPhase = "cloud-init init-local"     // cloud-init's first stage
	BootInit          BootPhase = "cloud-init init"           // networking up, metadata read
	BootSSH           BootPhase = "SSH up"                    // the harness reached the VM's SSH
	BootModulesConfig BootPhase = "cloud-init modules-config" // cloud-init's config modules
	BootModulesFinal  BootPhase = "cloud-init modules-final"  // packages, runcmd, scripts
	BootDone          BootPhase = "cloud-init done"           // cloud-init finished
)

// Rank orders boot phases: a later phase has a higher rank; the two seed
// phases rank the same. Unknown phases rank 0.
func (p BootPhase) Rank() int {
	switch p {
	case BootQEMUStarted:
		return 1
	case BootKernel:
		return 2
	case BootSystemd:
		return 3
	case BootSeedPresent, BootSeedRestored:
		return 4
	case BootInitLocal:
		return 5
	case BootInit:
		return 6
	case BootSSH:
		return 7
	case BootModulesConfig:
		return 8
	case BootModulesFinal:
		return 9
	case BootDone:
		return 10
	}
	return 0
}

// Info is what a provider knows about a VM.
type Info struct {
	Name     string `json:"name"`
	Group    string `json:"group"`
	Provider string `json:"provider"`
	State    State  `json:"state"`
	// PrivateIP is the address peers in the group (and LXD) use.
	PrivateIP string   `json:"private_ip"`
	Addresses []string `json:"addresses"`
	// Forwards maps guest TCP ports to host addresses that reach them; a port
	// not listed is reached at PrivateIP directly.
	Forwards map[int]string `json:"forwards,omitempty"`
	Accel    string         `json:"accel,omitempty"`
	// Owner is the pid of the harness process that launched the VM (0 if
	// unknown); a dead owner marks a leaked VM.
	Owner int `json:"owner,omitempty"`
}

// Endpoint returns a host-reachable "host:port" for a guest TCP port.
func (i Info) Endpoint(port int) string {
	if a, ok := i.Forwards[port]; ok {
		return a
	}
	return fmt.Sprintf("%s:%d", i.PrivateIP, port)
}

// ExecInput is a command to run as root inside a VM.
type ExecInput struct {
	Argv  []string
	Stdin io.Reader
}

// ExecResult is a finished command. A non-zero ExitCode is not an error of Exec.
type ExecResult struct {
	Stdout   []byte
	Stderr   []byte
	ExitCode int
}

// Provider creates and drives VMs: what every caller needs, and nothing a
// backend would have to stub. What only some callers use is an optional
// role interface that caller declares and checks (a fault injector's
// Start, diagnostics' Console).
type Provider interface {
	// Name is "qemu" or "multipass".
	Name() string
	// Launch starts a VM and returns once cloud-init has finished. On a
	// cloud-init failure it returns a *CloudInitError and leaves the VM for
	// the caller to inspect and delete.
	Launch(ctx context.Context, in LaunchInput) (Info, error)
	Exec(ctx context.Context, name string, in ExecInput) (ExecResult, error)
	// CopyOut reads a file from the VM.
	CopyOut(ctx context.Context, name, path string) ([]byte, error)
	Info(ctx context.Context, name string) (Info, error)
	// List returns VMs of exactly this group ("" = every VM of this provider).
	List(ctx context.Context, group string) ([]Info, error)
	// Delete removes the VM and everything the provider made for it. Deleting
	// a VM that does not exist is not an error.
	Delete(ctx context.Context, name string) error
	// Close releases what the provider runs for its VMs (the apt cache).
	Close() error
}

// ErrNotFound is wrapped by errors about VMs that do not exist.
var ErrNotFound = errors.New("no such VM")

// ErrNotSupported is returned for operations a backend cannot do.
var ErrNotSupported = errors.New("not supported by this provider")

// ErrUnreachable is matched by errors that say the harness could not reach
// a VM at all (its SSH did not answer, multipass could not open a session),
// as opposed to a command that ran and failed: every further command to
// that VM would fail the same way.
var ErrUnreachable = errors.New("VM unreachable")

// ErrAlreadyExists is matched by errors about launching a VM whose name is
// taken.
var ErrAlreadyExists = errors.New("VM already exists")

// CloudInitError says cloud-init did not finish cleanly, with what a
// developer needs to see why. Its message leads with the cause: the failed
// modules, then the command that failed with its exit code and output, then
// cloud-init's errors and the log tails, from which the SSH host-key noise
// (key generation, randomart, fingerprint and key blocks) is left out; the
// fields keep the logs as read.
type CloudInitError struct {
	VM            string
	Status        string // cloud-init's status: error, running (timeout), ...
	FailedModules []string
	Errors        []string
	// FailingCommand is the first command a failed module ran that exited
	// non-zero, e.g. /var/lib/cloud/instance/scripts/runcmd; "" if the logs
	// name none.
	FailingCommand string
	// ExitCode is FailingCommand's exit status; 0 if the logs do not say.
	ExitCode int
	// FailingOutput is the last lines FailingCommand printed.
	FailingOutput []string
	OutputTail    string // tail of /var/log/cloud-init-output.log
	ConsoleTail   string // tail of the serial console
	Cause         error  // e.g. a timeout
}

// cloudInitExcerptLines caps each log tail in the message.
const cloudInitExcerptLines = 30

func (e *CloudInitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cloud-init on %s ended with status %q", e.VM, e.Status)
	if len(e.FailedModules) > 0 {
		fmt.Fprintf(&b, "; failed modules: %s", strings.Join(e.FailedModules, ", "))
	}
	if e.Cause != nil {
		fmt.Fprintf(&b, ": %v", e.Cause)
	}
	if e.FailingCommand != "" {
		fmt.Fprintf(&b, "\nfailing command: %s", e.FailingCommand)
		if e.ExitCode != 0 {
			fmt.Fprintf(&b, " (exit code %d)", e.ExitCode)
		}
		if len(e.FailingOutput) == 0 {
			b.WriteString(", no output")
		} else {
			b.WriteString(", its output:")
		}
	}
	for _, l := range e.FailingOutput {
		fmt.Fprintf(&b, "\n  | %s", l)
	}
	for _, x := range e.Errors {
		fmt.Fprintf(&b, "\n  error: %s", x)
	}
	if t := excerpt(e.OutputTail); t != "" {
		fmt.Fprintf(&b, "\n--- tail of /var/log/cloud-init-output.log on %s (SSH host keys left out) ---\n%s", e.VM, t)
	}
	if t := excerpt(e.ConsoleTail); t != "" {
		fmt.Fprintf(&b, "\n--- tail of serial console of %s (SSH host keys left out) ---\n%s", e.VM, t)
	}
	return b.String()
}

// excerpt is the end of a log without the host-key noise.
func excerpt(log string) string {
	s := strings.Trim(stripHostKeyNoise(log), "\n")
	if s == "" {
		return ""
	}
	return Tail(s, cloudInitExcerptLines)
}

var (
	// randomartEdge is the first or last line of ssh-keygen's randomart
	// ("+--[ED25519 256]--+", "+----[SHA256]-----+"), after any prefix.
	randomartEdge = regexp.MustCompile(`\+-*\[[A-Za-z0-9 ]+\]-*\+\s*$`)
	randomartBody = regexp.MustCompile(`\|.{0,40}\|\s*$`)
	hashRule      = regexp.MustCompile(`#{20,}\s*$`)
	keyFingerprnt = regexp.MustCompile(`^\s*(SHA256|MD5):\S+`)
)

// keygenChatter are the lines ssh-keygen prints around a new host key.
var keygenChatter = []string{
	"Your identification has been saved in ",
	"Your public key has been saved in ",
	"The key fingerprint is:",
	"The key's randomart image is:",
}

// hostKeyBlocks are cloud-init's console blocks of host-key fingerprints
// and public keys.
var hostKeyBlocks = [][2]string{
	{"-----BEGIN SSH HOST KEY FINGERPRINTS-----", "-----END SSH HOST KEY FINGERPRINTS-----"},
	{"-----BEGIN SSH HOST KEY KEYS-----", "-----END SSH HOST KEY KEYS-----"},
}

// stripHostKeyNoise drops what cloud-init and ssh-keygen print about SSH
// host keys: it says nothing about why a boot failed and crowds out what does.
func stripHostKeyNoise(s string) string {
	lines := strings.Split(s, "\n")
	nearBlock := func(i int) bool {
		for _, j := range []int{i - 1, i + 1} {
			if j >= 0 && j < len(lines) && strings.Contains(lines[j], "SSH HOST KEY FINGERPRINTS-----") {
				return true
			}
		}
		return false
	}
	var out []string
	inArt, afterFingerprint := false, false
	blockEnd := ""
	for i, l := range lines {
		wasAfterFingerprint := afterFingerprint
		afterFingerprint = false
		switch {
		case blockEnd != "":
			if strings.Contains(l, blockEnd) {
				blockEnd = ""
			}
			continue
		case randomartEdge.MatchString(l):
			// The footer names the hash, the header the key.
			inArt = !strings.Contains(l, "[SHA256]") && !strings.Contains(l, "[MD5]")
			continue
		case inArt && randomartBody.MatchString(l):
			continue
		case wasAfterFingerprint && keyFingerprnt.MatchString(l):
			continue
		case hashRule.MatchString(l) && nearBlock(i):
			continue
		case strings.Contains(l, "Generating public/private ") && strings.Contains(l, " key pair"):
			continue
		}
		inArt = false
		if strings.Contains(l, "The key fingerprint is:") {
			afterFingerprint = true
		}
		if chatter(l) {
			continue
		}
		if end := blockStart(l); end != "" {
			blockEnd = end
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

func chatter(l string) bool {
	for _, c := range keygenChatter {
		if strings.Contains(l, c) {
			return true
		}
	}
	return false
}

// blockStart returns the end marker of the host-key block l opens, or "".
func blockStart(l string) string {
	for _, b := range hostKeyBlocks {
		if strings.Contains(l, b[0]) {
			return b[1]
		}
	}
	return ""
}

func (e *CloudInitError) Unwrap() error { return e.Cause }

// Run is a convenience for Exec with argv, returning an error that names the
// VM and command when the command exits non-zero.
func Run(ctx context.Context, p Provider, name string, argv ...string) (string, error) {
	return RunInput(ctx, p, name, nil, argv...)
}

// Tail returns the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// RunInput is Run with stdin.
func RunInput(ctx context.Context, p Provider, name string, stdin io.Reader, argv ...string) (string, error) {
	res, err := p.Exec(ctx, name, ExecInput{Argv: argv, Stdin: stdin})
	if err != nil {
		return "", fmt.Errorf("running %q on %s: %w", strings.Join(argv, " "), name, err)
	}
	if res.ExitCode != 0 {
		return string(res.Stdout), fmt.Errorf("running %q on %s: exit code %d: %s", strings.Join(argv, " "), name, res.ExitCode, Tail(string(res.Stderr)+string(res.Stdout), 20))
	}
	return string(res.Stdout), nil
}

// Releaser is a provider whose nodes run a Debian release the harness
// chose (the qemu provider's image): the cluster record keeps it, and
// the workload image follows it.
type Releaser interface {
	// Release is the Debian release's name: bookworm, trixie.
	Release() string
}

// ReleaseOf is p's node release, "" when p chooses none.
func ReleaseOf(p Provider) string {
	for p != nil {
		if r, ok := p.(Releaser); ok {
			return r.Release()
		}
		w, ok := p.(Wrapper)
		if !ok {
			return ""
		}
		p = w.Unwrap()
	}
	return ""
}

// Wrapper is a provider that adds to another (progress, a test's guard):
// what it does not implement itself is asked of the one it wraps.
type Wrapper interface {
	Unwrap() Provider
}

// Faults are the disruptions a backend can inject for the fault suite.
type Faults interface {
	Pause(ctx context.Context, name string) error
	Resume(ctx context.Context, name string) error
	SetPrivateLink(ctx context.Context, name string, up bool) error
	PowerOff(ctx context.Context, name string) error
	// Start boots a stopped or powered-off VM again and waits for SSH.
	Start(ctx context.Context, name string) error
}
