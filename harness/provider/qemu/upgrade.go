package qemu

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

// The upgrade boot brings a snapshot's disk up to the archive's state
// before its template boots to the seed gate: the image's root boots once,
// into a disk layer of its own, with the seed gate, cloud-init and every
// unit of the default target left out (systemd.run boots into the one
// command instead), runs upgradeScript from a CD-ROM and powers off. The
// kernel and ZFS stay at the image's versions (the kernel is booted from
// the image's files, and its module is built for it), held in every node.

// SimulatedUpdate makes a snapshot's template hold Packages one revision
// older than the image has (its dpkg status says "VERSION~bcmtestaged"),
// as if the archive had published theirs since the image was built. The
// upgrade boot then upgrades them through the apt cache, unless Stale
// keeps the snapshot as it was before the update, for its nodes to upgrade
// themselves. The snapshot's key names the simulation.
type SimulatedUpdate struct {
	Packages []string
	Stale    bool
}

// key is the shape's name for the simulation ("" for none).
func (s SimulatedUpdate) key() string {
	if len(s.Packages) == 0 {
		return ""
	}
	names := append([]string(nil), s.Packages...)
	sort.Strings(names)
	sum := sha256.Sum256([]byte(strings.Join(names, " ")))
	kind := "u"
	if s.Stale {
		kind = "s"
	}
	return kind + hex.EncodeToString(sum[:3])
}

// check refuses package names apt would not take, before any VM.
func (s SimulatedUpdate) check() error {
	for _, n := range s.Packages {
		if !packageName.MatchString(n) {
			return fmt.Errorf("simulated update: package %q: must be a Debian package name (lowercase letters, digits, + - .)", n)
		}
	}
	return nil
}

var packageName = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)

// upgradedDiskName is the upgrade boot's disk layer in a snapshot entry.
const upgradedDiskName = "upgraded.qcow2"

// upgradeLabel is the volume label of the upgrade boot's CD-ROM.
const upgradeLabel = "bcmupgrade"

// UpgradeResult is what a template's upgrade boot did.
type UpgradeResult struct {
	// Packages counts the packages whose version changed; Names lists
	// them ("name old -> new"), at most upgradeNamesKept.
	Packages int           `json:"packages"`
	Names    []string      `json:"names,omitempty"`
	Took     time.Duration `json:"took_ns"`
}

const upgradeNamesKept = 40

// upgradeKernelArgs boot into the CD-ROM's script alone. The mount is
// retried: the command may start before the CD-ROM's device node exists.
const upgradeKernelArgs = " systemd.mask=bcmtest-seed-gate.service systemd.mask=bcmtest-reexec.service cloud-init=disabled" +
	" systemd.run_success_action=poweroff systemd.run_failure_action=poweroff" +
	` systemd.run="/bin/sh -c 'for i in 1 2 3 4 5 6 7 8 9 10; do mount -o ro /dev/sr0 /mnt && exec /bin/sh /mnt/upgrade.sh; sleep 1; done; exit 1'"`

// Console lines of the upgrade script.
const (
	upgradeSays   = "bcmtest-upgrade: "
	upgradeDone   = "bcmtest-upgrade: done:"
	upgradeFailed = "bcmtest-upgrade: FAILED"
)

// upgradeScript runs in the upgrade boot. It leaves the disk as the image
// left it but for the packages: no machine-id, no host keys, no apt proxy,
// no address, the upgrade boot's journal gone; apt's own logs stay (a
// node's history.log shows the template's upgrade, then its own).
const upgradeScript = `#!/bin/sh
set -eu
say() { echo "bcmtest-upgrade: $*" >/dev/ttyS0 2>/dev/null || true; }
step=start rc=0
trap 'rc=$?; [ "$rc" = 0 ] || say "FAILED (exit $rc) while $step"' EXIT
step="bringing eth0 up"; say "$step"
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
printf 'Acquire::http::Proxy "http://%[1]s";\nAcquire::Languages "none";\n' >/etc/apt/apt.conf.d/90bcmtest-proxy
# No service starts or restarts from a maintainer script here: what would
# make keys or certificates must do so in each node, after the seed.
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
chmod 0755 /usr/sbin/policy-rc.d
export DEBIAN_FRONTEND=noninteractive
# upgrade.env: UPGRADE (1 to upgrade, 0 for a simulated stale snapshot)
# and AGE, the packages of a simulated update.
UPGRADE=1 AGE=
# shellcheck source=/dev/null
. /mnt/upgrade.env
for p in $AGE; do
  step="simulating an update of $p"; say "$step"
  v=$(dpkg-query -W -f '${Version}' "$p")
  awk -v p="$p" -v nv="$v~bcmtestaged" '/^Package: / {cur = $2} cur == p && /^Version: / {$0 = "Version: " nv} {print}' \
    /var/lib/dpkg/status >/var/lib/dpkg/status.bcmtest
  mv /var/lib/dpkg/status.bcmtest /var/lib/dpkg/status
  [ "$(dpkg-query -W -f '${Version}' "$p")" = "$v~bcmtestaged" ]
done
step="holding the kernel and ZFS at the image's versions"; say "$step"
held=$(dpkg-query -W -f '${db:Status-Abbrev} ${Package}\n' | awk '$1 == "ii" && $2 ~ /^(linux-|zfs|libzfs|libzpool|libnvpair|libuutil)/ {print $2}')
[ -n "$held" ] || { say "FAILED: no kernel or ZFS package installed"; exit 1; }
apt-mark hold $held >/dev/null
dpkg-query -W -f '${Package} ${Version}\n' | sort >/run/before
if [ "$UPGRADE" = 1 ]; then
  step="apt-get update"; say "$step"
  apt-get -q update
  step="apt-get full-upgrade"; say "$step"
  apt-get -q -y -o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-confdef full-upgrade
fi
dpkg-query -W -f '${Package} ${Version}\n' | sort >/run/after
step="cleaning up"; say "$step"
apt-get clean
rm -f /usr/sbin/policy-rc.d /etc/apt/apt.conf.d/90bcmtest-proxy /etc/ssh/ssh_host_*
if mountpoint -q /etc/machine-id; then umount /etc/machine-id; fi
: >/etc/machine-id
journalctl --relinquish-var >/dev/null 2>&1 || true
rm -rf /var/log/journal/*/
ip addr flush dev eth0
sync
n=$(comm -13 /run/before /run/after | wc -l)
names=$(join -a2 /run/before /run/after | awk 'NF == 3 && $2 != $3 {printf "%%s %%s -> %%s, ", $1, $2, $3} NF == 2 {printf "%%s (new) %%s, ", $1, $2}' | sed 's/, $//')
say "done: upgraded $n packages: $names"
`

// upgradeLayer makes tmp's upgraded.qcow2: the image's root brought up to
// the archive's state by one boot of the shape, through the apt cache.
func (p *Provider) upgradeLayer(ctx context.Context, img image.Image, sh Shape, key string, aptPort int, tmp string) (UpgradeResult, error) {
	start := time.Now()
	what := "upgrading the template to archive state " + sh.Archive
	switch {
	case sh.Simulated != "" && p.cfg.Simulate.Stale:
		what = fmt.Sprintf("making the template as before an update of %s (simulated)", strings.Join(p.cfg.Simulate.Packages, ", "))
	case sh.Simulated != "":
		what = fmt.Sprintf("upgrading the template after an update of %s (simulated)", strings.Join(p.cfg.Simulate.Packages, ", "))
	}
	fail := func(err error) (UpgradeResult, error) {
		return UpgradeResult{}, fmt.Errorf("%s: %w", what, err)
	}
	disk := filepath.Join(tmp, upgradedDiskName)
	if err := createOverlay(ctx, disk, img.Root, "raw", p.cfg.Recipe.RootSizeGiB); err != nil {
		return fail(fmt.Errorf("its disk: %w", err))
	}
	run, err := os.MkdirTemp("", "bcmtest-upgrade-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(run)
	iso := filepath.Join(run, "upgrade.iso")
	upgrade := "1"
	if p.cfg.Simulate.Stale {
		upgrade = "0"
	}
	env := fmt.Sprintf("UPGRADE=%s\nAGE=%q\n", upgrade, strings.Join(p.cfg.Simulate.Packages, " "))
	if err := writeISO(ctx, iso, upgradeLabel, map[string][]byte{
		"upgrade.sh": []byte(fmt.Sprintf(upgradeScript, AptProxyAddr)), "upgrade.env": []byte(env)}); err != nil {
		return fail(err)
	}
	serial := filepath.Join(tmp, "upgrade-serial.log")
	in, err := templateArgv("upgrade", img, sh, key, aptPort, disk, serial, run)
	if err != nil {
		return fail(err)
	}
	in.Seed = iso
	in.KernelArgs += upgradeKernelArgs
	q, err := startTemplate(in, filepath.Join(tmp, "upgrade-qemu.log"))
	if err != nil {
		return fail(err)
	}
	defer q.stop()
	p.logf("snapshot %s: %s first (image %s)", key, what, img.Key)

	said := 0
	uctx, cancel := context.WithTimeout(ctx, p.cfg.Intervals.SnapshotUpgrade)
	defer cancel()
	var done string
	err = wait.Until(uctx, p.cfg.Intervals.Poll, p.cfg.Intervals.PollMax, func(context.Context) (bool, string, error) {
		exited := q.exited()
		lines := upgradeLines(readFile(serial))
		for ; said < len(lines); said++ {
			l := lines[said]
			switch {
			case strings.HasPrefix(l, upgradeFailed):
				return false, "", fmt.Errorf("%s; console: %s", strings.TrimPrefix(l, upgradeSays), tailFile(serial, 10))
			case strings.HasPrefix(l, upgradeDone):
				done = l
			default:
				p.logf("snapshot %s: upgrade: %s", key, strings.TrimPrefix(l, upgradeSays))
			}
		}
		if exited {
			if done == "" {
				return false, "", fmt.Errorf("the upgrade boot powered off without finishing: %s; console: %s", tailFile(q.log, 5), tailFile(serial, 10))
			}
			return true, "", nil
		}
		if done != "" {
			return false, "the upgrade boot powering off", nil
		}
		return false, "the upgrade boot running", nil
	})
	if err != nil {
		return fail(err)
	}
	res := parseUpgradeDone(done)
	res.Took = time.Since(start)
	p.logf("snapshot %s: upgrade boot upgraded %d packages in %s", key, res.Packages, res.Took.Round(time.Second))
	return res, nil
}

// upgradeLines are the upgrade script's lines on the console, each from
// its "bcmtest-upgrade: " on.
func upgradeLines(console string) []string {
	var out []string
	for _, l := range strings.Split(console, "\n") {
		if i := strings.Index(l, upgradeSays); i >= 0 {
			out = append(out, strings.TrimRight(l[i:], "\r"))
		}
	}
	return out
}

// parseUpgradeDone reads "bcmtest-upgrade: done: upgraded N packages: a
// 1 -> 2, b 3 -> 4".
func parseUpgradeDone(line string) UpgradeResult {
	rest := strings.TrimSpace(strings.TrimPrefix(line, upgradeDone))
	var res UpgradeResult
	fmt.Sscanf(rest, "upgraded %d packages", &res.Packages)
	if _, names, ok := strings.Cut(rest, "packages: "); ok && strings.TrimSpace(names) != "" {
		for _, n := range strings.Split(names, ", ") {
			if len(res.Names) == upgradeNamesKept {
				break
			}
			res.Names = append(res.Names, strings.TrimSpace(n))
		}
	}
	return res
}
