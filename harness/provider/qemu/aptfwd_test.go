package qemu

import (
	"bufio"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestAptForwarderEndsWhenTheCacheCloses runs the forwarder as QEMU does
// (the guest's connection on its stdin and stdout, here a pipe kept open)
// against a server that answers once and closes, as apt-cacher-ng does:
// the forwarder must exit, so the guest sees the close and reconnects
// instead of waiting out apt's 30 s timeout on a dead connection.
func TestAptForwarderEndsWhenTheCacheCloses(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		bufio.NewReader(c).ReadString('\n')
		c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
		c.Close()
	}()
	argv := strings.Fields(aptForwarder(l.Addr().(*net.TCPAddr).Port))
	if _, err := exec.LookPath(argv[0]); err != nil {
		t.Skipf("%s not installed (make deps installs it)", argv[0])
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	stdin.Write([]byte("GET /x HTTP/1.1\r\n\r\n")) // the guest's request; stdin stays open
	exited := make(chan error, 1)
	go func() {
		b := make([]byte, 512)
		for {
			if _, err := out.Read(b); err != nil {
				break
			}
		}
		exited <- cmd.Wait()
	}()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the forwarder kept the guest's connection open after the cache closed its side")
	}
}
