package inventory

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// node holds what makes one recorded node differ from another given the
// same cloud-init file: every kind of noise Normalise removes.
type node struct {
	host, fqdn, machineID, bootID, iid string
	mac, addr, addr6                   string
	hostKey, fingerprint, onion        string
	cursor, date, isoTime, syslogTime  string
	epoch                              float64
	pid, pid2, ephemeral               int
	certBody                           string
	// module times, which are timings and not differences
	sshSecs, finalSecs float64
}

var nodeA = node{
	host: "cidiff-0a1b2c-old", fqdn: "cidiff-0a1b2c-old.localdomain",
	machineID: "4f1c2a9d7e6b4a3c9d8e7f6a5b4c3d2e", bootID: "0b6a2f0c-3d7e-4a55-9c1e-7d2b8e4f6a01",
	iid: "iid-cidiff-0a1b2c-old", mac: "52:54:00:12:34:56", addr: "10.0.2.15", addr6: "fec0::5054:ff:fe12:3456",
	hostKey: "AAAAC3NzaC1lZDI1NTE5AAAAIHk9xq0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", fingerprint: "SHA256:abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ",
	onion:  "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvwx.onion",
	cursor: "s=0123456789abcdef0123456789abcdef;i=1a2;b=0b6a2f0c3d7e4a559c1e7d2b8e4f6a01;m=5f5e100;t=5f0a1b2c3d4e5;x=abc123",
	date:   "Thu, 03 Dec 2026 10:40:01 +0000", isoTime: "2026-12-03 10:40:01,123", syslogTime: "Dec  3 10:40:01",
	epoch: 1796294401.5, pid: 512, pid2: 733, ephemeral: 44123,
	certBody: "MIIBszCCAVmgAwIBAgIUQk1u", sshSecs: 1.25, finalSecs: 20.0,
}

var nodeB = node{
	host: "cidiff-0a1b2c-new", fqdn: "cidiff-0a1b2c-new.localdomain",
	machineID: "9a8b7c6d5e4f40312a1b0c9d8e7f6a5b", bootID: "7c1d9e2a-5b3f-4c8d-a1e2-3f4b5c6d7e8f",
	iid: "iid-cidiff-0a1b2c-new", mac: "52:54:00:ab:cd:ef", addr: "10.0.2.16", addr6: "fec0::5054:ff:feab:cdef",
	hostKey: "AAAAC3NzaC1lZDI1NTE5AAAAIZz8yq1bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", fingerprint: "SHA256:ZYXWVUTSRQPONMLKJIHGFEDCBAzyxwvutsrqponmlkj",
	onion:  "zyxwvutsrqponmlkjihgfedcba765432zyxwvutsrqponmlkjihgfedc.onion",
	cursor: "s=fedcba9876543210fedcba9876543210;i=2b3;b=7c1d9e2a5b3f4c8da1e23f4b5c6d7e8f;m=6f5e100;t=5f0a1b2c3d4f6;x=def456",
	date:   "Thu, 03 Dec 2026 10:41:17 +0000", isoTime: "2026-12-03 10:41:17,987", syslogTime: "Dec  3 10:41:17",
	epoch: 1796294477.25, pid: 498, pid2: 801, ephemeral: 51234,
	certBody: "MIIBtDCCAVqgAwIBAgIUZx9q", sshSecs: 1.5, finalSecs: 21.0,
}

// change is what a recorded NEW file changes on the node.
type change struct {
	extraPackage, extraFile, extraUser, runcmdFails bool
	// legacyStatus records a cloud-init without `status --format json`.
	legacyStatus bool
	warning      string
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// recording is the collector's output as cloud-init 22.4 on the qemu
// image prints it (formats as recorded from a node), for node n.
func recording(n node, c change) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	sec := func(name string) { w("%s%s\n", sectionMark, name) }
	sec("identity")
	w("hostname=%s\nfqdn=%s\nmachine_id=%s\nboot_id=%s\ninstance_id=%s\n", n.host, n.fqdn, n.machineID, n.bootID, n.iid)
	w("mac=00:00:00:00:00:00\nmac=%s\naddr=127.0.0.1\naddr=%s\naddr=::1\naddr=%s\ncloud_init_version=22.4.2\n", n.mac, n.addr, n.addr6)
	status, errs := "done", "[]"
	if c.runcmdFails {
		status, errs = "error", `["('scripts_user', RuntimeError('Runparts: 1 failures (runcmd) in 1 attempted commands'))"]`
	}
	sec("status")
	if c.legacyStatus {
		w("{\"bcmtest_format_json\": \"unsupported\"}\n")
	} else {
		// cloud-init 22.4.2's `status --format json`, as the image prints it.
		w(`{
  "_schema_version": "1",
  "boot_status_code": "enabled-by-generator",
  "datasource": "nocloud",
  "detail": "DataSourceNoCloud [seed=/dev/sr0][dsmode=net]",
  "errors": %s,
  "last_update": "%s",
  "schemas": {"1": {"boot_status_code": "enabled-by-generator", "datasource": "nocloud", "errors": %s, "status": "%s"}},
  "status": "%s"
}`+"\n", errs, n.date, errs, status, status)
	}
	sec("status_long")
	w("status: %s\ntime: %s\ndetail:\nDataSourceNoCloud [seed=/dev/sr0][dsmode=net]\n", status, n.date)
	sec("result_json")
	w(`{"v1": {"datasource": "DataSourceNoCloud [seed=/dev/sr0][dsmode=net]", "errors": %s}}`+"\n", errs)
	sec("status_json")
	w(`{"v1": {"datasource": "DataSourceNoCloud", "init": {"errors": [], "finished": %.3f, "start": %.3f}, "init-local": {"errors": [], "finished": %.3f, "start": %.3f}, "modules-config": {"errors": [], "finished": %.3f, "start": %.3f}, "modules-final": {"errors": %s, "finished": %.3f, "start": %.3f}, "stage": null}}`+"\n",
		n.epoch+10, n.epoch+2, n.epoch+1, n.epoch, n.epoch+15, n.epoch+11, errs, n.epoch+40, n.epoch+16)
	sec("schema")
	w("Valid cloud-config: system userdata\nbcmtest-exit=0\n")
	sec("log")
	w("%s - util.py[DEBUG]: Cloud-init v. 22.4.2 running 'init-local' at %s. Up 4.21 seconds.\n", n.isoTime, n.date)
	w("%s - cc_set_hostname.py[DEBUG]: Setting the hostname to %s (%s)\n", n.isoTime, n.fqdn, n.host)
	w("%s - util.py[DEBUG]: Writing to /var/lib/cloud/instances/%s/sem/config_ssh - wb: [644] 24 bytes\n", n.isoTime, n.iid)
	w("%s - modules.py[INFO]: Skipping modules 'ansible,apt_pipelining' because no applicable config is provided.\n", n.isoTime)
	w("%s - subp.py[DEBUG]: Running command ['ip', 'link', 'set', 'eth0', 'address', '%s'] with allowed return codes [0]\n", n.isoTime, n.mac)
	w("%s - util.py[DEBUG]: Reading from /proc/%d/stat (quiet=False)\n", n.isoTime, n.pid)
	if c.warning != "" {
		w("%s - cc_%s.py[WARNING]: %s on %s\n", n.isoTime, "apt_configure", c.warning, n.host)
	}
	if c.runcmdFails {
		w("%s - subp.py[DEBUG]: Unexpected error while running command.\n", n.isoTime)
		w("%s - cc_scripts_user.py[WARNING]: Failed to run module scripts_user (scripts in /var/lib/cloud/instance/scripts)\n", n.isoTime)
		w("%s - util.py[WARNING]: Running module scripts_user (<module 'cloudinit.config.cc_scripts_user'>) failed\n", n.isoTime)
		w("%s - util.py[DEBUG]: Running module scripts_user failed\nTraceback (most recent call last):\n  File \"/usr/lib/python3/dist-packages/cloudinit/config/modules.py\", line 246, in _run_modules\n    ran, _r = cc.run(\nRuntimeError: Runparts: 1 failures (runcmd) in 1 attempted commands\n", n.isoTime)
	}
	w("%s - util.py[DEBUG]: Cloud-init v. 22.4.2 finished at %s. Datasource DataSourceNoCloud.  Up 40.12 seconds\n", n.isoTime, n.date)
	sec("analyze")
	final := "SUCCESS"
	if c.runcmdFails {
		final = "FAIL"
	}
	w(`[{"description": "running config-ssh", "event_type": "start", "name": "init-network/config-ssh", "origin": "cloudinit", "timestamp": %.3f},`, n.epoch+3)
	w(`{"description": "running config-ssh", "event_type": "finish", "name": "init-network/config-ssh", "origin": "cloudinit", "result": "SUCCESS", "timestamp": %.3f},`, n.epoch+3+n.sshSecs)
	w(`{"description": "running modules for final", "event_type": "start", "name": "modules-final", "origin": "cloudinit", "timestamp": %.3f},`, n.epoch+16)
	w(`{"description": "running config-scripts-user", "event_type": "start", "name": "modules-final/config-scripts_user", "origin": "cloudinit", "timestamp": %.3f},`, n.epoch+17)
	w(`{"description": "running config-scripts-user", "event_type": "finish", "name": "modules-final/config-scripts_user", "origin": "cloudinit", "result": "%s", "timestamp": %.3f}]`+"\n", final, n.epoch+17+n.finalSecs)
	sec("packages")
	w("ii \tcloud-init\t22.4.2-1+deb12u1\nii \tjq\t1.6-2.1\nrc \told-thing\t1.0\n")
	if c.extraPackage {
		w("ii \ttree\t2.1.0-1\n")
	}
	sec("unit_files")
	w("ssh.service                                enabled         enabled\ncloud-final.service enabled enabled\nnftables.service disabled enabled\n")
	sec("units")
	w("ssh.service loaded active running OpenBSD Secure Shell server\ncloud-final.service loaded active exited Execute cloud user/final scripts\nfoo.service not-found inactive dead foo.service\n")
	sec("passwd")
	w("root:x:0:0:root:/root:/bin/bash\ndebian:x:1000:1000:Debian:/home/debian:/bin/bash\n")
	if c.extraUser {
		w("reviewer:x:1001:1001::/home/reviewer:/bin/sh\n")
	}
	sec("group")
	w("root:x:0:\nsudo:x:27:debian\ndebian:x:1000:\n")
	if c.extraUser {
		w("reviewer:x:1001:\nreviewers:x:1002:reviewer\n")
	}
	sec("sudoers")
	w("/etc/sudoers.d/90-cloud-init-users\tdebian ALL=(ALL) NOPASSWD:ALL\n")
	sec("sockets")
	w("tcp   LISTEN 0      128          0.0.0.0:22        0.0.0.0:*    users:((\"sshd\",pid=%d,fd=3))\n", n.pid)
	w("tcp   LISTEN 0      128             [::]:22           [::]:*    users:((\"sshd\",pid=%d,fd=4))\n", n.pid)
	w("udp   UNCONN 0      0            0.0.0.0:%d      0.0.0.0:*    users:((\"dhclient\",pid=%d,fd=6))\n", n.ephemeral, n.pid2)
	w("udp   UNCONN 0      0       0.0.0.0%%eth0:68        0.0.0.0:*    users:((\"dhclient\",pid=%d,fd=9))\n", n.pid2)
	w("tcp   LISTEN 0      4096      %s:8443        0.0.0.0:*    users:((\"lxd\",pid=%d,fd=20))\n", n.addr, n.pid2+7)
	sec("sysctl")
	w("kernel.hostname = %s\nkernel.random.boot_id = %s\nkernel.ns_last_pid = %d\nfs.file-nr = %d\t0\t9223372036854775807\nkernel.spl.kmem.slab_kvmem_alloc = %d\nvm.swappiness = 60\nnet.core.somaxconn = 4096\n", n.host, n.bootID, n.pid2+100, n.pid*3, n.pid*1024)
	sec("mounts")
	w("/dev/vda1 / ext4 rw,relatime 0 0\ntmpfs /run tmpfs rw,nosuid,nodev,size=202592k,mode=755 0 0\nbcmpool /bcmpool zfs rw,xattr,noacl 0 0\n")
	sec("zpools")
	w("bcmpool\tONLINE\t480M\t-\n")
	sec("datasets")
	w("bcmpool\tfilesystem\t/bcmpool\ton\n")
	sec("apt_sources")
	w("/etc/apt/sources.list\tdeb http://deb.debian.org/debian bookworm main contrib\n")
	sec("apt_keys")
	sec("files")
	w("since=%d\n", int(n.epoch))
	file := func(path, mode, kind, payload string) {
		w("file\t%s\t%s root:root 10\t%s\t%s\n", path, mode, kind, payload)
	}
	file("/etc/hostname", "644", "text", b64(n.host+"\n"))
	file("/etc/hosts", "644", "text", b64("127.0.1.1 "+n.fqdn+" "+n.host+"\n127.0.0.1 localhost\n"))
	file("/etc/ssh/ssh_host_ed25519_key", "600", "private-key", "256-bit (ED25519)")
	file("/etc/ssh/ssh_host_ed25519_key.pub", "644", "text", b64("ssh-ed25519 "+n.hostKey+" root@"+n.host+"\n"))
	file("/etc/bcm/cert.pem", "644", "text", b64("-----BEGIN CERTIFICATE-----\n"+n.certBody+"\n-----END CERTIFICATE-----\n"))
	file("/etc/bcm/fingerprints", "644", "text", b64("ED25519 "+n.fingerprint+" root@"+n.host+"\n"))
	file("/etc/network/interfaces.d/50-cloud-init", "644", "text", b64("auto eth0\niface eth0 inet dhcp\n    hwaddress ether "+n.mac+"\n    address "+n.addr+"\n"))
	file("/etc/bcm/onion", "644", "text", b64(n.onion+"\n"))
	file("/etc/bcm/state", "644", "text", b64(fmt.Sprintf("cursor=%s\nboot=%s\nmachine=%s\nstarted=%s\nsyslog=%s\nepoch=%.3f\npid=%d\n", n.cursor, n.bootID, n.machineID, n.isoTime, n.syslogTime, n.epoch, n.pid)))
	file("/var/lib/cloud/instances/"+n.iid+"/marker", "644", "text", b64("x\n"))
	if c.extraFile {
		file("/etc/bcmtest-review.conf", "644", "text", b64("review = yes\n"))
	}
	sec("lxd")
	w("running=yes\npool,default,zfs,,1,CREATED\nnetwork,lxdbr0,bridge,YES,10.%d.1/24,,,1,CREATED\nprofile,default,,1\n", n.pid%200)
	sec("tor")
	w("active=active\nHiddenServiceDir /var/lib/tor/bcm/\nHiddenServicePort 80 127.0.0.1:8080\nhostname /var/lib/tor/bcm/ %s\n", n.onion)
	sec("end")
	return b.String()
}
