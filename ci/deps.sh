#!/usr/bin/env bash
# Installs the host packages bcmtest needs, by distribution (`make deps`).
#
# The packages every distribution installs come from the Makefile's
# HOST_PACKAGES (passed in the environment); this script adds each
# distribution's own names, read from /etc/os-release:
#
#   debian-12     + lxd-client (the lxc client) and chromium
#   debian-13     + chromium; the lxc client is optional (LXD is not a
#                   Debian 13 package)
#   ubuntu-22.04, ubuntu-24.04
#                 the lxc client and chromium are optional (both are snaps
#                 on Ubuntu); a hint says how to get them
#
# Anything else gets a message listing what to install, and exit status 3.
# Installed packages are never reinstalled: with everything present this is
# a no-op that runs neither apt-get nor sudo.
#
# Usage: HOST_PACKAGES="..." ci/deps.sh [--os-release FILE] [--list]
#   --os-release FILE  read FILE instead of /etc/os-release
#   --list             print the distribution and its package lists, install nothing
# BCMTEST_DISTRO=debian-12 (ID-VERSION_ID) overrides what os-release says.
set -euo pipefail

os_release=/etc/os-release
list_only=""
while [ $# -gt 0 ]; do
  case $1 in
    --os-release)
      [ $# -ge 2 ] || { echo "deps: --os-release needs a file" >&2; exit 2; }
      os_release=$2
      shift 2
      ;;
    --list) list_only=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "deps: unknown argument $1 (want --os-release FILE or --list)" >&2; exit 2 ;;
  esac
done

if [ -z "${HOST_PACKAGES:-}" ]; then
  echo "deps: HOST_PACKAGES is empty: run this through \`make deps\`, which passes the Makefile's list" >&2
  exit 2
fi
read -r -a common <<<"$HOST_PACKAGES"

# osrel KEY prints KEY's value from the os-release file, unquoted.
osrel() {
  sed -n "s/^$1=//p" "$os_release" | head -n 1 | sed -e 's/^"\(.*\)"$/\1/' -e "s/^'\(.*\)'\$/\1/"
}

if [ -n "${BCMTEST_DISTRO:-}" ]; then
  distro=$BCMTEST_DISTRO
  pretty="$BCMTEST_DISTRO (from BCMTEST_DISTRO)"
else
  [ -r "$os_release" ] || { echo "deps: cannot read $os_release to tell the distribution; set BCMTEST_DISTRO (debian-12, debian-13, ubuntu-22.04 or ubuntu-24.04)" >&2; exit 3; }
  distro="$(osrel ID)-$(osrel VERSION_ID)"
  pretty="$(osrel PRETTY_NAME)"
fi

# Hints for what is optional on a distribution: what it is for and how to get it.
lxc_hint="lxc client (optional: only to reach a cluster by hand with the line \`bcmtest up\` prints, LXD_CONF=... lxc cluster list NAME:, and for the integration specs labelled lxc): sudo snap install lxd"
chromium_hint="chromium at /usr/bin/chromium (optional: only for the matrix report's PNG screenshot; the JSON, Markdown and HTML reports are written without it): a chromium package that installs /usr/bin/chromium"

extra=()
optional=()
case $distro in
  debian-12) extra=(lxd-client chromium) ;;
  debian-13) extra=(chromium); optional=("$lxc_hint") ;;
  ubuntu-22.04 | ubuntu-24.04) optional=("$lxc_hint" "$chromium_hint") ;;
  *)
    {
      echo "deps: unsupported distribution \"$pretty\" ($distro, from $os_release)."
      echo "deps: supported: debian-12, debian-13, ubuntu-22.04, ubuntu-24.04 (BCMTEST_DISTRO=one of them uses its list)."
      echo "deps: install these with your package manager (Debian names), then run \`go mod download\`:"
      echo "  qemu-system-x86 qemu-utils    QEMU (qemu-system-x86_64, qemu-img)"
      echo "  mmdebstrap debian-archive-keyring e2fsprogs   building the Debian VM image"
      echo "  genisoimage                   the cloud-init seed ISO (genisoimage or mkisofs)"
      echo "  apt-cacher-ng socat           the VMs' private package cache and its forward"
      echo "  vde2                          vde_switch, the cluster's private switch"
      echo "  openssh-client iproute2 ca-certificates   reaching the VMs"
      echo "  gcc libc6-dev                 go test -race"
      echo "  optional: chromium fonts-liberation (the report's screenshot), the lxc client"
      echo "  all of: ${common[*]}"
    } >&2
    exit 3
    ;;
esac
packages=("${common[@]}" "${extra[@]}")

if [ -n "$list_only" ]; then
  echo "distribution: $distro"
  echo "packages: ${packages[*]}"
  for o in "${optional[@]}"; do echo "optional: $o"; done
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "deps: host packages present ($distro)"
else
  sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  echo "deps: installing ${missing[*]} ($distro)"
  "${sudo[@]}" apt-get update -q
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; then
    echo "deps: apt-get could not install ${missing[*]} on $distro" >&2
    case $distro in ubuntu-*) echo "deps: on Ubuntu these come from universe: sudo add-apt-repository universe" >&2 ;; esac
    exit 1
  fi
fi

if [[ " ${optional[*]} " == *"lxc client"* ]] && ! command -v lxc >/dev/null 2>&1; then
  echo "deps: not installed: $lxc_hint"
fi
if [[ " ${optional[*]} " == *"chromium at"* ]] && [ ! -x /usr/bin/chromium ]; then
  echo "deps: not installed: $chromium_hint"
fi
