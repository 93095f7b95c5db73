// Package image builds and caches the Debian 12 VM image the embedded QEMU
// provider boots: a kernel and initrd for direct kernel boot and an ext4 root
// filesystem that is never written (each VM gets a copy-on-write overlay).
package image

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
)

// Recipe is everything that decides an image's contents. Its hash names the
// cache entry, so changing any field builds a new image.
type Recipe struct {
	Suite      string   `json:"suite"`
	Mirror     string   `json:"mirror"`
	Security   string   `json:"security"`
	Components []string `json:"components"`
	Variant    string   `json:"variant"`
	Packages   []string `json:"packages"`
	// Customize runs on the host after packages are installed, with the
	// root tree as $1.
	Customize string `json:"customize"`
	// KeepAptLists keeps the package lists of the build in the image, so a
	// VM's `package_update` only fetches InRelease files when nothing changed.
	KeepAptLists bool `json:"keep_apt_lists"`
	// RootSizeGiB is the ext4 root filesystem's size (sparse on disk).
	RootSizeGiB int `json:"root_size_gib"`
	// KernelArgs are passed at direct kernel boot.
	KernelArgs string `json:"kernel_args"`
}

// Key is a short stable name for the recipe, used as the cache directory.
func (r Recipe) Key() string {
	b, _ := json.Marshal(r)
	sum := sha256.Sum256(b)
	return r.Suite + "-" + hex.EncodeToString(sum[:])[:12]
}

// DefaultRecipe is the default release's recipe (RecipeFor(DefaultRelease)).
func DefaultRecipe() Recipe { return RecipeFor(DefaultRelease) }

// RecipeFor is the BCM host image of a release: what the original
// cloud_init.yml installed (LXD, ZFS, Tor, wait-for-it) plus what
// cloud-init, SSH and the kernel need to boot it under QEMU. The package
// names are the same in both releases; what differs (paths, cloud-init's
// unit names) is in the release's customize script. An unknown release
// gets the default's recipe; ParseRelease is where a name is checked.
func RecipeFor(rel Release) Recipe {
	if _, ok := releases[rel]; !ok {
		rel = DefaultRelease
	}
	return Recipe{
		Suite:      string(rel),
		Mirror:     "http://deb.debian.org/debian",
		Security:   "http://deb.debian.org/debian-security",
		Components: []string{"main", "contrib"},
		Variant:    "important",
		Packages: []string{
			"linux-image-amd64", "linux-headers-amd64", "systemd-sysv", "dbus",
			"cloud-init", "openssh-server", "sudo", "locales",
			"iproute2", "ifupdown", "isc-dhcp-client", "iputils-ping",
			"lxd", "lxd-client", "zfs-dkms", "zfsutils-linux",
			"tor", "wait-for-it", "netcat-openbsd", "curl", "ca-certificates",
		},
		Customize:    customizeScript(rel),
		KeepAptLists: true,
		RootSizeGiB:  8,
		KernelArgs:   "root=LABEL=root rw console=ttyS0 net.ifnames=0 biosdevname=0 systemd.show_status=1",
	}
}

// Sources returns the apt source lines used for the build (and kept in the image).
func (r Recipe) Sources() []string {
	comps := strings.Join(r.Components, " ")
	return []string{
		"deb " + r.Mirror + " " + r.Suite + " " + comps,
		"deb " + r.Mirror + " " + r.Suite + "-updates " + comps,
		"deb " + r.Security + " " + r.Suite + "-security " + comps,
	}
}

// customizeScript is the release's customize script: customizeTemplate
// with the release's paths and unit names filled in.
func customizeScript(rel Release) string {
	r := releases[rel]
	return strings.NewReplacer(
		"@PYTHON_LIB@", r.pythonLib,
		"@CLOUD_INIT_NETWORK@", r.cloudInitNetwork,
		"@EXTRA@\n", r.extraCustomize,
	).Replace(customizeTemplate)
}

// customizeTemplate prepares the tree for booting many VMs from one base:
// only the NoCloud datasource, no per-image identity, no apt timers that
// would hold the dpkg lock while cloud-init installs packages.
const customizeTemplate = `set -eu
root="$1"
cat > "$root/etc/cloud/cloud.cfg.d/90_bcmtest.cfg" <<'CFG'
# bcmtest: VMs get their seed from a NoCloud ISO; never probe network datasources.
datasource_list: [ NoCloud, None ]
CFG
echo 'LABEL=root / ext4 defaults 0 1' > "$root/etc/fstab"
echo localhost > "$root/etc/hostname"
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
rm -f "$root"/etc/ssh/ssh_host_*
mkdir -p "$root/etc/systemd/system/ssh.service.d"
cat > "$root/etc/systemd/system/ssh.service.d/bcmtest.conf" <<'UNIT'
# cloud-init generates this VM's host keys; start sshd after it so the key a
# client sees first is the key it keeps.
[Unit]
After=@CLOUD_INIT_NETWORK@
[Service]
# Only when cloud-init made none: ssh-keygen -A would add an RSA key, ~10 s
# of every boot under software emulation.
ExecStartPre=-/bin/sh -c 'ls /etc/ssh/ssh_host_*_key >/dev/null 2>&1 || ssh-keygen -A'
UNIT
# The seed gate: cloud-init waits until the NoCloud seed is on the CD-ROM.
# A VM restored from the booted snapshot gets its seed only after restore,
# so the gate also renews what it would otherwise share with its template.
cat > "$root/usr/local/sbin/bcmtest-seed-gate" <<'GATE'
#!/bin/sh
# Waits for the NoCloud seed (volume label cidata) on a CD-ROM. If the seed
# was not there at first look, this VM was restored from a snapshot of a
# template that booted without one: renew the clock, MACs, machine-id and
# entropy before cloud-init-local starts, so nothing per-node is shared.
# If any step of that fails, the node must not run cloud-init as a copy of
# the template: the gate says what failed on the console ("bcmtest-seed:
# FAILED: ...", which the harness watches for; it then boots the node
# cold) and powers the node off.
set -eu
say() { echo "bcmtest-seed: $*" >/dev/ttyS0 2>/dev/null || true; echo "bcmtest-seed: $*"; }
fail() {
  say "FAILED: $*; identity not renewed, powering off"
  systemctl poweroff --force --force
  exit 1
}
# step WHAT CMD...: runs CMD; on failure, fails naming WHAT and CMD's stderr.
step() {
  what=$1; shift
  out=$("$@" 2>&1 >/dev/null) || fail "$what: $(echo "${out:-exit status $?}" | tr '\n' ' ')"
}
found() {
  for d in /dev/sr0 /dev/sr1; do
    [ -b "$d" ] || continue
    [ "$(blkid -p -s LABEL -o value "$d" 2>/dev/null || true)" = cidata ] && { dev=$d; return 0; }
  done
  return 1
}
dev=
if found; then say "seed present at boot ($dev)"; exit 0; fi
# Only a template waits: read what cloud-init and apt load into the page
# cache now, so every VM restored from the snapshot finds it in RAM. Then
# say so: the harness takes the snapshot once it reads this line, so the
# work above is never redone after a restore. (Best effort: a miss here
# costs time, not correctness.)
find /usr/lib/python3/dist-packages/cloudinit @PYTHON_LIB@ -name '*.pyc' -exec cat {} + >/dev/null 2>&1 || true
apt-cache gencaches >/dev/null 2>&1 || true
cat /var/cache/apt/*.bin /var/lib/apt/lists/*_Packages /var/lib/dpkg/status >/dev/null 2>&1 || true
sync
say "waiting for the seed"
while ! found; do sleep 0.1; done
# The RTC follows the host's clock across a restore; the system clock is
# the template's until set. apt and TLS need it right.
if [ -r /sys/class/rtc/rtc0/since_epoch ]; then
  step "setting the clock from the RTC" date -u -s "@$(cat /sys/class/rtc/rtc0/since_epoch)"
fi
mnt=/run/bcmtest-seed
step "making $mnt" mkdir -p "$mnt"
step "mounting the seed $dev" mount -o ro "$dev" "$mnt"
[ -r "$mnt/bcmtest-entropy" ] || fail "the seed on $dev has no bcmtest-entropy"
step "mixing the seed's entropy in" sh -c 'cat "$1" >/dev/urandom' - "$mnt/bcmtest-entropy"
[ -r "$mnt/bcmtest-identity" ] || fail "the seed on $dev has no bcmtest-identity"
. "$mnt/bcmtest-identity"
[ -n "${MAC0:-}" ] && [ -n "${MAC1:-}" ] || fail "the seed's bcmtest-identity sets no MAC0 and MAC1"
step "setting eth0's MAC to $MAC0" ip link set dev eth0 address "$MAC0"
step "setting eth1's MAC to $MAC1" ip link set dev eth1 address "$MAC1"
if [ -n "${CLOCK:-}" ] && [ "$(date +%s)" -lt "$CLOCK" ]; then
  step "setting the clock to the seed's" date -u -s "@$CLOCK"
fi
step "unmounting the seed" umount "$mnt"
rm -f /run/blkid/blkid.tab
if mountpoint -q /etc/machine-id; then step "unmounting the template's machine-id" umount /etc/machine-id; fi
id=$(systemd-id128 new) || fail "making a machine-id"
step "writing /etc/machine-id" sh -c 'echo "$1" >/etc/machine-id' - "$id"
# journald caches the machine-id: restart it, so what cloud-init logs
# carries the new one. PID 1 caches it too: bcmtest-reexec.service
# re-executes it beside cloud-init-local (seconds of CPU each under
# software emulation, on two vCPUs), instead of before it.
# /proc/sys/kernel/random/boot_id stays the template's (the kernel makes
# it once per boot, and this kernel booted in the template): every node
# restored from one snapshot has the same boot ID. journald stamps it on
# entries (_BOOT_ID) beside the renewed _MACHINE_ID, which is what tells
# nodes apart; nothing in the image compares boot IDs across machines.
step "restarting journald" systemctl restart systemd-journald.service
: > /run/bcmtest-restored
say "seed found after restore ($dev); identity renewed"
GATE
chmod 0755 "$root/usr/local/sbin/bcmtest-seed-gate"
cat > "$root/etc/systemd/system/bcmtest-seed-gate.service" <<'UNIT'
[Unit]
Description=bcmtest: wait for the NoCloud seed before cloud-init
DefaultDependencies=no
After=systemd-udev-trigger.service systemd-remount-fs.service local-fs.target systemd-journald.service
Wants=systemd-udev-trigger.service
Before=cloud-init-local.service sysinit.target shutdown.target
Conflicts=shutdown.target
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/bcmtest-seed-gate
TimeoutStartSec=infinity
StandardOutput=journal+console
[Install]
WantedBy=cloud-init-local.service sysinit.target
UNIT
chroot "$root" systemctl enable bcmtest-seed-gate.service
cat > "$root/etc/systemd/system/bcmtest-reexec.service" <<'UNIT'
[Unit]
Description=bcmtest: PID 1 takes the node's machine-id after a restore
DefaultDependencies=no
After=bcmtest-seed-gate.service
Before=@CLOUD_INIT_NETWORK@ sysinit.target shutdown.target
Conflicts=shutdown.target
ConditionPathExists=/run/bcmtest-restored
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/kill -TERM 1
[Install]
WantedBy=sysinit.target
UNIT
chroot "$root" systemctl enable bcmtest-reexec.service
# What makes keys or certificates starts after the seed, never in the template.
for u in lxd.service lxd.socket tor@.service tor.service; do
  after=bcmtest-seed-gate.service
  case $u in tor*) after="$after @CLOUD_INIT_NETWORK@" ;; esac
  mkdir -p "$root/etc/systemd/system/$u.d"
  printf '[Unit]\nAfter=%s\n' "$after" > "$root/etc/systemd/system/$u.d/bcmtest-seed.conf"
done
@EXTRA@
# apt-key verifies each InRelease against every armoured key in
# trusted.gpg.d, dearmouring them in shell first: ~2.5 s per file under
# software emulation. Naming Debian's binary keyring cuts that to ~1 s.
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -s "$root$keyring" ] || { echo "$keyring missing from the image" >&2; exit 1; }
sed -i "s|^deb http|deb [signed-by=$keyring] http|" "$root/etc/apt/sources.list"
grep -q "signed-by=$keyring" "$root/etc/apt/sources.list" || { echo "sources.list has no signed-by" >&2; exit 1; }
# Throwaway VMs: dpkg need not fsync every file it unpacks.
echo force-unsafe-io > "$root/etc/dpkg/dpkg.cfg.d/bcmtest-unsafe-io"
sed -i 's/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/' "$root/etc/locale.gen"
chroot "$root" locale-gen
echo 'LANG=en_US.UTF-8' > "$root/etc/default/locale"
# LXD imports its own pools; the boot-time import units only pull in
# systemd-udev-settle, which costs ~10 s of every boot under TCG.
for u in apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer zfs-import-cache.service zfs-import-scan.service systemd-udev-settle.service; do
  chroot "$root" systemctl disable "$u" 2>/dev/null || true
  chroot "$root" systemctl mask "$u" 2>/dev/null || true
done
ls "$root"/lib/modules/*/updates/dkms/zfs.ko* >/dev/null 2>&1 || { echo "zfs.ko was not built by DKMS" >&2; exit 1; }
ls "$root"/boot/vmlinuz-* "$root"/boot/initrd.img-* >/dev/null
`
