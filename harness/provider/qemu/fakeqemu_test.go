package qemu

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The fake qemu: this test binary, run as qemu-system-x86_64 through a
// symlink on PATH with fakeQEMUEnv naming its control directory. It
// answers --version and -machine help from that directory, and as a VM it
// writes its pidfile, serves QMP on its -qmp socket and writes its -serial
// file: a template prints the seed gate's waiting line and saves a
// migration stream naming its QEMU version and machine type; a restore
// loads a stream only into the same version and machine type (as QEMU
// does), and on "cont" prints the gate's verdict. Nothing is emulated.
const fakeQEMUEnv = "BCMTEST_FAKE_QEMU_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(fakeQEMUEnv); dir != "" && filepath.Base(os.Args[0]) == qemuBinary {
		os.Exit(fakeQEMUMain(dir, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// fakeQEMU is a test's handle on the fake's control directory.
type fakeQEMU struct {
	t   *testing.T
	dir string
}

// installFakeQEMU puts the fake first on PATH as version and machine
// (what `q35` resolves to).
func installFakeQEMU(t *testing.T, version, machine string) *fakeQEMU {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	if err := os.Symlink(exe, filepath.Join(bin, qemuBinary)); err != nil {
		t.Fatal(err)
	}
	f := &fakeQEMU{t: t, dir: t.TempDir()}
	f.set("version", version)
	f.set("machine", machine)
	f.set("load", "ok")
	f.set("gate", "ok")
	t.Setenv(fakeQEMUEnv, f.dir)
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	return f
}

func (f *fakeQEMU) set(name, value string) {
	if err := os.WriteFile(filepath.Join(f.dir, name), []byte(value), 0o600); err != nil {
		f.t.Fatal(err)
	}
}

// calls returns the argv of every VM the fake ran (not its --version or
// -machine help answers), one string each.
func (f *fakeQEMU) calls() []string {
	b, _ := os.ReadFile(filepath.Join(f.dir, "calls"))
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

func fakeGet(dir, name string) string {
	b, _ := os.ReadFile(filepath.Join(dir, name))
	return strings.TrimSpace(string(b))
}

func fakeQEMUMain(dir string, args []string) int {
	version, machine := fakeGet(dir, "version"), fakeGet(dir, "machine")
	if len(args) == 1 && args[0] == "--version" {
		fmt.Printf("QEMU emulator version %s\nCopyright (c) 2003-2022 Fabrice Bellard and the QEMU Project developers\n", version)
		return 0
	}
	if len(args) == 2 && args[0] == "-machine" && args[1] == "help" {
		fmt.Printf("Supported machines are:\nmicrovm              microvm (i386)\nq35                  Standard PC (Q35 + ICH9, 2009) (alias of %s)\n%s           Standard PC (Q35 + ICH9, 2009)\npc-q35-2.4           Standard PC (Q35 + ICH9, 2009)\n", machine, machine)
		return 0
	}
	if f, err := os.OpenFile(filepath.Join(dir, "calls"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
		fmt.Fprintln(f, strings.Join(args, " "))
		f.Close()
	}
	opt := map[string]string{}
	incoming := false
	for i := 0; i < len(args); i++ {
		if args[i] == "-incoming" {
			incoming = true
		}
		if strings.HasPrefix(args[i], "-") && i+1 < len(args) {
			opt[args[i]] = args[i+1]
		}
	}
	machineArg := opt["-machine"]
	if machineArg != "q35" && machineArg != machine {
		fmt.Fprintf(os.Stderr, "qemu-system-x86_64: unsupported machine type %q\n", machineArg)
		return 1
	}
	if machineArg == "q35" {
		machineArg = machine
	}
	sock := strings.ReplaceAll(strings.SplitN(strings.TrimPrefix(opt["-qmp"], "unix:"), ",server", 2)[0], ",,", ",")
	serial := strings.TrimPrefix(opt["-serial"], "file:")
	os.Remove(sock) // as qemu does with a server socket's path
	l, err := net.Listen("unix", sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, "qemu-system-x86_64: -qmp:", err)
		return 1
	}
	defer l.Close()
	console, _ := os.OpenFile(serial, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	defer console.Close()
	os.WriteFile(opt["-pidfile"], []byte(fmt.Sprintln(os.Getpid())), 0o600)
	stream := "fake-qemu-stream version=" + version + " machine=" + machineArg + "\n"
	status := "running"
	if incoming {
		status = "inmigrate"
	}
	if opt["-name"] == "bcmtest-template" {
		fmt.Fprintln(console, "bcmtest-seed: "+"waiting for the seed")
	}
	if opt["-name"] == "bcmtest-upgrade" {
		// The upgrade boot runs its script from the CD-ROM and powers off.
		if !strings.Contains(opt["-append"], "systemd.run=") || !strings.Contains(strings.Join(args, " "), "upgrade.iso") {
			fmt.Fprintln(os.Stderr, "fake qemu: an upgrade boot without its command or its CD-ROM")
			return 1
		}
		fmt.Fprintln(console, "bcmtest-upgrade: apt-get update")
		switch fakeGet(dir, "upgrade") {
		case "ok":
			fmt.Fprintln(console, "bcmtest-upgrade: done: upgraded 2 packages: tor 0.4.7.16-1 -> 0.4.7.17-1, libssl3 3.0.17-1~deb12u2 -> 3.0.18-1~deb12u1")
		case "silent":
		default:
			fmt.Fprintln(console, "bcmtest-upgrade: FAILED (exit 100) while apt-get update")
		}
		return 0
	}
	// Ends on quit, or when the test that started it is long gone.
	go func() { time.Sleep(2 * time.Minute); os.Exit(3) }()
	for {
		conn, err := l.Accept()
		if err != nil {
			return 1
		}
		quit, code := fakeQMP(conn, dir, stream, &status, console)
		conn.Close()
		if quit {
			return code
		}
	}
}

func fakeQMP(conn net.Conn, dir, stream string, status *string, console io.Writer) (quit bool, code int) {
	fmt.Fprintln(conn, `{"QMP": {"version": {}, "capabilities": []}}`)
	r := bufio.NewReader(conn)
	reply := func(v any) {
		b, _ := json.Marshal(map[string]any{"return": v})
		conn.Write(append(b, '\n'))
	}
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return false, 0
		}
		var req struct {
			Execute   string         `json:"execute"`
			Arguments map[string]any `json:"arguments"`
		}
		json.Unmarshal(line, &req)
		switch req.Execute {
		case "query-status":
			reply(map[string]any{"status": *status})
		case "query-migrate":
			reply(map[string]any{"status": "completed"})
		case "migrate":
			uri, _ := req.Arguments["uri"].(string)
			cmd := exec.Command("sh", "-c", strings.TrimPrefix(uri, "exec:"))
			cmd.Stdin = strings.NewReader(stream)
			if err := cmd.Run(); err != nil {
				b, _ := json.Marshal(map[string]any{"error": map[string]any{"class": "GenericError", "desc": err.Error()}})
				conn.Write(append(b, '\n'))
				continue
			}
			*status = "postmigrate"
			reply(map[string]any{})
		case "migrate-incoming":
			in := os.NewFile(uintptr(incomingFD), "incoming")
			got, _ := io.ReadAll(in)
			if fakeGet(dir, "load") != "ok" || string(got) != stream {
				fmt.Fprintf(os.Stderr, "qemu-system-x86_64: load of migration failed: stream %q into %q\n", got, stream)
				os.Exit(1)
			}
			*status = "paused"
			reply(map[string]any{})
		case "cont":
			*status = "running"
			reply(map[string]any{})
			if fakeGet(dir, "gate") == "ok" {
				fmt.Fprintln(console, "bcmtest-seed: seed found after restore (/dev/sr0); identity renewed")
			} else {
				// The gate powers the node off after saying why.
				fmt.Fprintln(console, "bcmtest-seed: FAILED: "+fakeGet(dir, "gate"))
				time.Sleep(50 * time.Millisecond)
				os.Exit(0)
			}
		case "stop":
			*status = "paused"
			reply(map[string]any{})
		case "quit", "system_powerdown":
			reply(map[string]any{})
			return true, 0
		default: // qmp_capabilities, migrate-set-parameters, blockdev-change-medium, block_resize
			reply(map[string]any{})
		}
	}
}
