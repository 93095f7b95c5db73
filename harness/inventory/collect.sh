#!/bin/sh
# bcmtest inventory collector, format 1. Runs as root on a node after
# cloud-init has ended; prints sections that inventory.Parse reads. It
# never prints a private key: for those only the kind is printed.
export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# $1, when given, is the key of the section marks (see inventory.SectionMark).
mark="@@@bcmtest-inventory${1:+-$1}:"
# Each section's time in milliseconds, printed in the timing section.
t_last=$(date +%s%3N) t_sec='' timing=''
lap() {
  t_now=$(date +%s%3N)
  [ -z "$t_sec" ] || timing="$timing$t_sec $((t_now - t_last))
"
  t_sec='' t_last=$t_now
}
sec() { lap; t_sec=$1; echo "$mark$1"; }
have() { command -v "$1" >/dev/null 2>&1; }

sec identity
echo "hostname=$(hostname 2>/dev/null)"
echo "fqdn=$(hostname -f 2>/dev/null)"
echo "machine_id=$(cat /etc/machine-id 2>/dev/null)"
echo "boot_id=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)"
echo "instance_id=$(cat /var/lib/cloud/data/instance-id 2>/dev/null)"
for a in /sys/class/net/*/address; do echo "mac=$(cat "$a")"; done
ip -o addr show 2>/dev/null | awk '{split($4, a, "/"); print "addr=" a[1]}'
# The package's version, upstream part, without starting cloud-init's
# Python (seconds under software emulation); else cloud-init's own word.
v=$(dpkg-query -W -f '${Version}' cloud-init 2>/dev/null | sed 's/^[0-9]*://; s/-[^-]*$//')
[ -n "$v" ] || v=$(cloud-init --version 2>/dev/null | awk '{print $NF}')
echo "cloud_init_version=$v"

# cloud-init's reports (status, schema, log, analyze) and the files
# section come from collect.py, in one Python process.
lap
tf=$(mktemp)
python3 - "$mark" "$tf" / <<'BCMTEST_PY'
@@collect.py@@
BCMTEST_PY
py_rc=$?
[ "$py_rc" -eq 0 ] || echo "collector: its Python part exited with code $py_rc" >&2
[ ! -s "$tf" ] || timing="$timing$(cat "$tf")
"
rm -f "$tf"
lap

sec packages
dpkg-query -W -f '${db:Status-Abbrev}\t${Package}\t${Version}\n' 2>/dev/null
sec unit_files
systemctl list-unit-files --no-legend --no-pager --type=service,socket,timer,path 2>/dev/null
sec units
systemctl list-units --all --no-legend --no-pager --plain --type=service,socket,timer,path 2>/dev/null
sec passwd
getent passwd
sec group
getent group
sec sudoers
for f in /etc/sudoers /etc/sudoers.d/*; do
  [ -f "$f" ] || continue
  grep -v '^[[:space:]]*\(#\|$\)' "$f" | sed "s|^|$f\t|"
done
sec sockets
ss -Hltunp 2>/dev/null
sec sysctl
sysctl -a 2>/dev/null
sec mounts
cat /proc/self/mounts
sec zpools
have zpool && zpool list -H -o name,health,size,altroot 2>/dev/null
sec datasets
have zfs && zfs list -H -t filesystem,volume -o name,type,mountpoint,canmount 2>/dev/null
sec apt_sources
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*; do
  [ -f "$f" ] || continue
  grep -v '^[[:space:]]*\(#\|$\)' "$f" | sed "s|^|$f\t|"
done
sec apt_keys
for f in /etc/apt/trusted.gpg /etc/apt/trusted.gpg.d/* /etc/apt/keyrings/*; do
  [ -f "$f" ] || continue
  printf '%s\t%s\n' "$f" "$(sha256sum < "$f" | cut -d' ' -f1)"
done

sec lxd
if have lxc && systemctl is-active --quiet lxd.service 2>/dev/null; then
  echo "running=yes"
  timeout 60 lxc storage list -f csv 2>/dev/null | sed 's/^/pool,/'
  timeout 60 lxc network list -f csv 2>/dev/null | sed 's/^/network,/'
  timeout 60 lxc profile list -f csv 2>/dev/null | sed 's/^/profile,/'
else
  echo "running=no"
fi
sec tor
echo "active=$(systemctl is-active tor@default.service 2>/dev/null || true)"
for f in /etc/tor/torrc /etc/tor/torrc.d/*; do
  [ -f "$f" ] || continue
  grep -E '^[[:space:]]*HiddenService(Dir|Port|Version)' "$f"
done
for d in $(grep -hE '^[[:space:]]*HiddenServiceDir' /etc/tor/torrc /etc/tor/torrc.d/* 2>/dev/null | awk '{print $2}'); do
  [ -s "$d/hostname" ] && echo "hostname $d $(cat "$d/hostname")"
done
sec output_log
cat /var/log/cloud-init-output.log 2>/dev/null
sec timing
printf '%s' "$timing"
sec end
exit "$py_rc"
