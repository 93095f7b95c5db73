package qemu

import (
	"bytes"
	"errors"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
)

func TestSeedKeepsUserDataAndAddsHarnessAccessAsVendorData(t *testing.T) {
	ud := []byte("#cloud-config\nusers: []\nruncmd: [[echo, hi]]\n")
	s, err := BuildSeed(SeedInput{Name: "CLUS1-01", InstanceID: "CLUS1-01-x", UserData: ud, AuthorizedKey: "ssh-ed25519 AAAAkey bcmtest", PrivateCIDR: "10.77.0.11/24"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s.UserData, ud) {
		t.Errorf("user-data changed: %q", s.UserData)
	}
	var meta map[string]string
	if err := yaml.Unmarshal(s.MetaData, &meta); err != nil {
		t.Fatal(err)
	}
	if meta["instance-id"] != "CLUS1-01-x" || meta["local-hostname"] != "CLUS1-01" {
		t.Errorf("meta-data = %v", meta)
	}
	// vendor-data is MIME multipart: a boothook (user, key, sudo, apt proxy)
	// and a cloud-config part.
	msg, err := mail.ReadMessage(bytes.NewReader(s.VendorData))
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var types []string
	var hook string
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		b := new(bytes.Buffer)
		b.ReadFrom(p)
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		types = append(types, ct)
		if ct == "text/cloud-boothook" {
			hook = b.String()
		}
	}
	if strings.Join(types, ",") != "text/cloud-boothook,text/cloud-config" {
		t.Fatalf("vendor-data parts = %v", types)
	}
	for _, want := range []string{"#cloud-boothook", "useradd -m -s /bin/bash bcmtest", "ssh-ed25519 AAAAkey bcmtest", "NOPASSWD:ALL", `Acquire::http::Proxy "http://10.0.2.100:3142"`} {
		if !strings.Contains(hook, want) {
			t.Errorf("boothook lacks %q", want)
		}
	}
}

func TestNetworkConfigPutsTheSegmentOnEth1(t *testing.T) {
	s, err := BuildSeed(SeedInput{Name: "a", InstanceID: "a", UserData: []byte("#cloud-config\n"), PrivateCIDR: "10.77.0.12/24"})
	if err != nil {
		t.Fatal(err)
	}
	var nc struct {
		Version   int `yaml:"version"`
		Ethernets map[string]struct {
			DHCP4     bool     `yaml:"dhcp4"`
			Addresses []string `yaml:"addresses"`
			Gateway4  string   `yaml:"gateway4"`
		} `yaml:"ethernets"`
	}
	if err := yaml.Unmarshal(s.NetworkConfig, &nc); err != nil {
		t.Fatal(err)
	}
	if nc.Version != 2 || nc.Ethernets["eth0"].DHCP4 || nc.Ethernets["eth1"].DHCP4 {
		t.Errorf("network-config = %+v", nc)
	}
	// eth0 gets what QEMU's DHCP server would lease: the SSH forward
	// points at 10.0.2.15.
	if e := nc.Ethernets["eth0"]; len(e.Addresses) != 1 || e.Addresses[0] != "10.0.2.15/24" || e.Gateway4 != "10.0.2.2" {
		t.Errorf("eth0 = %+v", e)
	}
	if got := nc.Ethernets["eth1"].Addresses; len(got) != 1 || got[0] != "10.77.0.12/24" {
		t.Errorf("eth1 addresses = %v", got)
	}
}

// On trixie (cloud-init 25.1) the default route is a route: gateway4
// there makes `cloud-init status` exit 2 (degraded done, DEPRECATED).
// Bookworm's seed keeps gateway4, as before.
func TestTheDefaultRouteIsARouteWhereGateway4IsDeprecated(t *testing.T) {
	for _, rel := range []image.Release{image.Bookworm, image.Trixie} {
		s, err := BuildSeed(SeedInput{Name: "a", InstanceID: "a", UserData: []byte("#cloud-config\n"), PrivateCIDR: "10.77.0.12/24",
			DefaultRouteAsRoute: rel.DefaultRouteAsRoute()})
		if err != nil {
			t.Fatal(err)
		}
		text := string(s.NetworkConfig)
		hasGateway := strings.Contains(text, "gateway4: 10.0.2.2")
		hasRoute := strings.Contains(text, "to: 0.0.0.0/0") && strings.Contains(text, "via: 10.0.2.2")
		if want := rel == image.Trixie; hasRoute != want || hasGateway == want {
			t.Errorf("%s network-config (route %v, gateway4 %v):\n%s", rel, hasRoute, hasGateway, text)
		}
	}
}

func argvString(in argvInput) string { return strings.Join(buildArgv(in), " ") }

func TestArgvKeepsEveryNetworkOnThisMachine(t *testing.T) {
	in := argvInput{Name: "CLUS1-00", CPUs: 2, MemoryMiB: 2048, Accel: "tcg", Kernel: "/k", Initrd: "/i", KernelArgs: "root=LABEL=root",
		Overlay: "/s/overlay.qcow2", Seed: "/s/seed.iso", SSHPort: 40001, APIPort: 40002, PrivateIP: "10.77.0.10", AptPort: 3142,
		Segment: segment{Kind: SegmentMulticast, Port: 21000}, MACs: [2]string{"52:54:00:00:00:01", "52:54:01:00:00:01"}, Serial: "/s/serial.log", QMP: "/s/qmp.sock", PIDFile: "/s/pid"}
	a := argvString(in)
	for _, want := range []string{
		"-accel tcg,thread=multi",
		"-smp 2", "-m 2048",
		"user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:40001-:22,hostfwd=tcp:127.0.0.1:40002-10.77.0.10:8443,guestfwd=tcp:10.0.2.100:3142-cmd:socat STDIO TCP:127.0.0.1:3142",
		"socket,id=n1,mcast=230.0.0.1:21000,localaddr=127.0.0.1",
		"file=/s/overlay.qcow2,if=none,id=disk0,format=qcow2",
		"if=none,id=seed0,media=cdrom,readonly=on,format=raw,file=/s/seed.iso",
		"ide-cd,drive=seed0,id=cdrom0",
		"vmgenid,guid=auto",
		"-kernel /k", "-initrd /i", "-append root=LABEL=root",
	} {
		if !strings.Contains(a, want) {
			t.Errorf("argv lacks %q:\n%s", want, a)
		}
	}
	if strings.Contains(a, "hostfwd=tcp::") || strings.Contains(a, "0.0.0.0") {
		t.Errorf("a forward listens beyond loopback: %s", a)
	}
	in.Segment = segment{Kind: SegmentSwitch, Sock: "/s/segments/CLUS1/sw"}
	if a := argvString(in); !strings.Contains(a, "-netdev vde,id=n1,sock=/s/segments/CLUS1/sw -device virtio-net-pci,netdev=n1,mac=52:54:01:00:00:01") {
		t.Errorf("NIC 1 not on the cluster's switch: %s", a)
	}
	in.Segment = segment{}
	if a := argvString(in); !strings.Contains(a, "-netdev hubport,id=n1,hubid=0 -device virtio-net-pci,netdev=n1") {
		t.Errorf("NIC 1 without a segment is not on a hub of its own: %s", a)
	}
	in.Accel = "kvm"
	if a := argvString(in); !strings.Contains(a, "-accel kvm") {
		t.Errorf("kvm not used when chosen: %s", a)
	}
	in.AptPort = 0
	if a := argvString(in); strings.Contains(a, "guestfwd") {
		t.Errorf("guestfwd without apt cache: %s", a)
	}
}

// TestRestoreArgvHasTheTemplatesDevices: a migration stream only loads into
// the same device set, so a restore's argv differs from its template's only
// in backends (ports, files) and -incoming.
func TestRestoreArgvHasTheTemplatesDevices(t *testing.T) {
	tmpl := argvInput{Name: "tmpl", CPUs: 1, MemoryMiB: 1024, Accel: "tcg", Kernel: "/k", Initrd: "/i", KernelArgs: "root=LABEL=root",
		Overlay: "/t/disk.qcow2", SSHPort: 1, APIPort: 2, PrivateIP: "10.77.0.250", AptPort: 3,
		MACs: [2]string{"52:54:00:00:00:01", "52:54:01:00:00:01"}, Serial: "/t/serial", QMP: "/t/qmp", PIDFile: "/t/pid"}
	node := tmpl
	node.Name, node.Overlay, node.SSHPort, node.APIPort, node.Incoming = "CLUS1-01", "/n/overlay.qcow2", 5, 6, true
	node.Segment = segment{Kind: SegmentSwitch, Sock: "/n/segments/CLUS1/sw"}
	node.MACs = [2]string{"52:54:00:aa:00:01", "52:54:01:aa:00:01"}
	devices := func(argv []string) []string {
		var out []string
		for i, a := range argv {
			if a == "-device" || a == "-machine" || a == "-smp" || a == "-m" || a == "-kernel" || a == "-append" {
				out = append(out, a+" "+strings.Split(argv[i+1], ",mac=")[0])
			}
		}
		return out
	}
	a, b := devices(buildArgv(tmpl)), devices(buildArgv(node))
	if strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Fatalf("device sets differ:\n%v\n%v", a, b)
	}
	if !strings.Contains(argvString(node), "-incoming defer") || strings.Contains(argvString(tmpl), "-incoming") {
		t.Fatal("-incoming only on the restore")
	}
	if !strings.Contains(argvString(node), "if=none,id=seed0,media=cdrom,readonly=on -device") {
		t.Fatalf("a restore starts with an empty CD-ROM: %s", argvString(node))
	}
}

func TestMulticastPortIsStablePerGroupAndDistinctAcrossGroupsAndStateDirs(t *testing.T) {
	a := multicastPort("/s1", "CLUS1", nil)
	if b := multicastPort("/s1", "CLUS1", nil); a != b {
		t.Errorf("not stable: %d vs %d", a, b)
	}
	if b := multicastPort("/s1", "CLUS1", map[int]string{a: "CLUS1"}); b != a {
		t.Errorf("own group's port refused: %d", b)
	}
	if b := multicastPort("/s1", "CLUS1", map[int]string{a: "OTHER"}); b == a {
		t.Errorf("port %d shared with another group", a)
	}
	if b := multicastPort("/s2", "CLUS1", nil); b == a {
		t.Errorf("port %d shared by CLUS1 of two state dirs", a)
	}
	// A port bound on the host (another state dir's running segment) is
	// never handed out.
	l, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	bound := l.LocalAddr().(*net.UDPAddr).Port
	for group := 0; group < 20000; group++ {
		g := "G" + strconv.Itoa(group)
		if h := fnvPort("/s1", g); h == bound {
			if got := multicastPort("/s1", g, nil); got == bound {
				t.Fatalf("multicastPort handed out %d, which is bound on the host", bound)
			}
			break
		}
	}
	if m := macs("g", "CLUS1-00"); m[0] == m[1] || m == macs("g", "CLUS1-01") {
		t.Errorf("MACs not distinct: %v", m)
	}
}

func TestRecordsAreFoundByGroupAndOrphansSeparated(t *testing.T) {
	dir := t.TempDir()
	p := &Provider{vmsDir: dir}
	for _, r := range []*record{{Name: "CLUS1-00", Group: "CLUS1"}, {Name: "CLUS10-00", Group: "CLUS10"}, {Name: "CLUS1-01", Group: "CLUS1"}} {
		r.Dir = filepath.Join(dir, r.Name)
		os.Mkdir(r.Dir, 0o700)
		r.Created = time.Now()
		if err := r.save(); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(dir, "junk"), 0o700)
	infos, err := p.List(t.Context(), "CLUS1")
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 || infos[0].Name != "CLUS1-00" || infos[1].Name != "CLUS1-01" {
		t.Errorf("List(CLUS1) = %+v", infos)
	}
	for _, i := range infos {
		if i.State != provider.StateStopped {
			t.Errorf("%s without qemu should be Stopped, is %s", i.Name, i.State)
		}
	}
	_, orphans, _ := loadRecords(dir)
	if len(orphans) != 1 || filepath.Base(orphans[0]) != "junk" {
		t.Errorf("orphans = %v", orphans)
	}
}

func TestStartErrorsSayWhenAPortWasTaken(t *testing.T) {
	taken := classifyStart(errors.New("exit status 1"), "qemu-system-x86_64: -netdev user,id=n0,...: Could not set up host forwarding rule 'tcp:127.0.0.1:40001-:22'")
	other := classifyStart(errors.New("exit status 1"), "qemu-system-x86_64: -drive file=x: Could not open 'x': No such file or directory")
	var se *StartError
	if !errors.As(error(taken), &se) || !se.PortTaken {
		t.Errorf("a taken forward port not recognised: %+v", taken)
	}
	if other.PortTaken {
		t.Errorf("a missing file taken for a port clash: %+v", other)
	}
}
