# bcmtest inventory collector, its Python part: cloud-init's own reports
# and the files section. collect.sh runs it as
#   python3 - MARK TIMINGS ROOT
# MARK is the section mark, TIMINGS a file that gets a "section ms" line
# per section, ROOT the node's root ("/"; a directory in tests).
#
# Under software emulation each `cloud-init` command spends seconds
# importing cloud-init's modules; here they are imported once and each
# command runs in a child forked from this process, with the command
# line's own logging, output and exit code.
import base64
import hashlib
import json
import os
import pwd
import grp
import re
import stat
import subprocess
import sys
import tempfile
import time
import traceback

MARK, TIMINGS, ROOT = sys.argv[1], sys.argv[2], sys.argv[3]
OUT = sys.stdout.buffer
TEXT_MAX = 65536
KEY_RE = re.compile(rb"-----BEGIN .*PRIVATE KEY-----")


def emit(data):
    OUT.write(data if isinstance(data, bytes) else data.encode("utf-8", "surrogateescape"))
    OUT.flush()


class Sections:
    """Prints each section's mark and writes each section's time."""

    def __init__(self):
        self.name, self.start, self.lines = None, time.monotonic(), []

    def __call__(self, name):
        self.close()
        self.name, self.start = name, time.monotonic()
        emit(MARK + name + "\n")

    def close(self):
        if self.name is not None:
            ms = int((time.monotonic() - self.start) * 1000)
            self.lines.append("%s %d\n" % (self.name, ms))
        self.name = None
        with open(TIMINGS, "w") as f:
            f.write("".join(self.lines))


def path(p):
    """The node's path p under ROOT."""
    return os.path.join(ROOT, p.lstrip("/"))


def cat(p):
    try:
        with open(path(p), "rb") as f:
            emit(f.read())
    except OSError:
        pass


def load_cloud_init():
    """cloud-init's command line entry, with the modules its status,
    schema and analyze commands import loaded; None where cloud-init's
    package does not import (the commands then run as programs)."""
    try:
        from cloudinit.cmd.main import main
    except Exception:
        return None
    for mod in ("cloudinit.cmd.status", "cloudinit.config.schema",
                "cloudinit.analyze", "cloudinit.analyze.__main__",
                "cloudinit.analyze.dump"):
        try:
            __import__(mod)
        except Exception:
            pass
    return main


def run(ci_main, args, out_fd, err_fd):
    """Runs `cloud-init ARGS` with its output on out_fd and err_fd; returns
    its exit code as a shell would give it."""
    sys.stdout.flush()
    sys.stderr.flush()
    if ci_main is None:
        try:
            return subprocess.run(["cloud-init"] + args, stdin=subprocess.DEVNULL,
                                  stdout=out_fd, stderr=err_fd).returncode % 256
        except OSError as e:
            os.write(err_fd, ("cloud-init: %s\n" % e).encode())
            return 127
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.dup2(out_fd, 1)
            os.dup2(err_fd, 2)
            os.environ.setdefault("TZ", ":/etc/localtime")
            ret = ci_main(["cloud-init"] + args)
            code = ret if isinstance(ret, int) else 0 if not ret else 1
        except SystemExit as e:
            if isinstance(e.code, int):
                code = e.code
            elif e.code is None:
                code = 0
            else:
                sys.stderr.write("%s\n" % e.code)
        except BaseException:
            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code % 256)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def cloud_init_sections(sec, ci_main, devnull):
    # `status --format json` exits non-zero on a failed or degraded boot
    # with its JSON all the same; `status --long` runs only where there is
    # no JSON.
    sec("status")
    with tempfile.TemporaryFile() as f:
        run(ci_main, ["status", "--format", "json"], f.fileno(), devnull)
        f.seek(0)
        st = f.read()
    if st.startswith(b"{"):
        emit(st if st.endswith(b"\n") else st + b"\n")
    else:
        emit('{"bcmtest_format_json": "unsupported"}\n')
    sec("status_long")
    if not st.startswith(b"{"):
        run(ci_main, ["status", "--long"], 1, 1)
    sec("result_json")
    cat("/run/cloud-init/result.json")
    sec("status_json")
    cat("/run/cloud-init/status.json")
    sec("schema")
    code = run(ci_main, ["schema", "--system"], 1, 1)
    emit("bcmtest-exit=%d\n" % code)
    sec("log")
    cat("/var/log/cloud-init.log")
    sec("analyze")
    run(ci_main, ["analyze", "dump"], 1, devnull)


def since():
    """When cloud-init started: the init-local stage's start in
    status.json; the boot time if that is missing."""
    try:
        with open(path("/run/cloud-init/status.json")) as f:
            return int(json.load(f)["v1"]["init-local"]["start"])
    except Exception:
        with open("/proc/uptime") as f:
            return int(time.time()) - int(float(f.read().split()[0]))


# Reported by their own sections, or the node's own random values (the
# machine-id; /etc/hostid is the node's ZFS host ID).
SKIP_EXACT = {
    "/etc/passwd", "/etc/passwd-", "/etc/group", "/etc/group-", "/etc/shadow", "/etc/shadow-",
    "/etc/gshadow", "/etc/gshadow-", "/etc/subuid", "/etc/subuid-", "/etc/subgid", "/etc/subgid-",
    "/etc/.pwd.lock", "/etc/ld.so.cache", "/etc/machine-id", "/etc/sudoers", "/etc/apt/sources.list",
    "/etc/zfs/zpool.cache", "/etc/hostid",
}
SKIP_PREFIX = ("/etc/sudoers.d/", "/etc/apt/sources.list.d/", "/etc/apt/trusted.gpg", "/etc/apt/keyrings/")


def skipped(name, full):
    if name in SKIP_EXACT or name.startswith(SKIP_PREFIX):
        return True
    parts = name.split("/", 3)  # "", "home", user, rest
    if len(parts) == 4 and parts[1] == "home" and parts[3]:
        skel = path("/etc/skel/" + parts[3])
        if os.path.isfile(skel) and not os.path.islink(full) and same_content(skel, full):
            return True
    return False


def same_content(a, b):
    try:
        with open(a, "rb") as fa, open(b, "rb") as fb:
            return fa.read() == fb.read()
    except OSError:
        return False


def changed_files(start):
    """Regular files under the trees cloud-init's files land in, changed
    after start, on the tree's own file system, sorted by their bytes."""
    found = []
    limit = start * 1_000_000_000
    for tree in ("/etc", "/usr/local", "/opt", "/srv", "/root", "/home"):
        top = path(tree)
        if os.path.islink(top) or not os.path.isdir(top):
            continue
        dev = os.lstat(top).st_dev
        for d, dirs, files in os.walk(top):
            keep = []
            for sub in dirs:
                try:
                    st = os.lstat(os.path.join(d, sub))
                except OSError:
                    continue
                if st.st_dev == dev:
                    keep.append(sub)
            dirs[:] = keep
            for name in files:
                full = os.path.join(d, name)
                try:
                    st = os.lstat(full)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode) and st.st_mtime_ns > limit:
                    found.append(("/" + os.path.relpath(full, ROOT)).encode("utf-8", "surrogateescape"))
    return sorted(found)


def owner(st):
    try:
        user = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        user = "UNKNOWN"
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = "UNKNOWN"
    return "%s:%s" % (user, group)


def key_kind(full, data):
    try:
        out = subprocess.run(["ssh-keygen", "-l", "-f", full], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout.split()
    except OSError:
        out = []
    if out:
        return out[0] + b"-bit " + out[-1]
    for line in data.split(b"\n"):
        if b"-----BEGIN" in line:
            return line
    return b""


def files_section():
    start = since()
    emit("since=%d\n" % start)
    for name_b in changed_files(start):
        name = name_b.decode("utf-8", "surrogateescape")
        full = path(name)
        if skipped(name, full):
            continue
        try:
            st = os.stat(full)
            with open(full, "rb") as f:
                data = f.read()
        except OSError:
            continue
        meta = ("%o %s %d" % (st.st_mode & 0o7777, owner(st), st.st_size)).encode()
        row = [b"file", name_b, meta]
        if KEY_RE.search(data):
            row += [b"private-key", key_kind(full, data)]
        elif len(data) == 0 or (len(data) <= TEXT_MAX and b"\0" not in data and data.strip(b"\n")):
            row += [b"text", base64.b64encode(data)]
        else:
            row += [b"binary", hashlib.sha256(data).hexdigest().encode()]
        emit(b"\t".join(row) + b"\n")


def main():
    sec = Sections()
    sec("cloud_init_import")
    ci_main = load_cloud_init()
    devnull = os.open(os.devnull, os.O_WRONLY)
    cloud_init_sections(sec, ci_main, devnull)
    sec("files")
    files_section()
    sec.close()


main()
