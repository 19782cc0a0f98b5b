"""How a sandboxed process is started: the command line for each isolation level
(``bwrap``, ``unshare``, ``none``), the probe that picks the best one that works on
this machine, and the view of the Python installation the sandbox gets."""

from __future__ import annotations

import functools
import os
import random
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

RUNNER = Path(__file__).with_name("runner.py")
LEVELS = ("bwrap", "unshare", "none")
ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0"}


def is_root() -> bool:
    return os.geteuid() == 0


def _world_readable(path: str) -> bool:
    p = Path(path).resolve()
    return all(os.stat(d).st_mode & 0o001 for d in [p, *p.parents]) and bool(os.stat(p).st_mode & 0o004)


def job_uid(level: str = "bwrap") -> int:
    """A fresh uid per execution when we are root: RLIMIT_NPROC counts processes per
    uid, and is not enforced at all for uid 0. -1 means "stay who we are" -- also at
    the fallback levels when another uid could not read the standard library (e.g.
    a Python under /root), where the sandbox then runs as root (see docs/sandbox.md)."""
    if not is_root() or (level != "bwrap" and not _world_readable(python_layout()["stdlib"])):
        return -1
    return 1_000_000 + random.SystemRandom().randrange(1_000_000_000)


def nproc_limit(n: int, uid: int = -1) -> int:
    """With a uid of its own the cap is ``n``. Sharing our uid, the cap must sit above
    the processes we already run: it then bounds what the program adds, not its total
    (and as root it is not enforced at all)."""
    if uid >= 0:
        return n
    uid, mine = str(os.getuid()), 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            mine += any(line.split()[1] == uid for line in status.read_text().splitlines() if line.startswith("Uid:"))
        except (OSError, IndexError):
            continue
    return mine + n


@functools.lru_cache(maxsize=1)
def python_layout() -> dict:
    """The real interpreter, its standard library and its shared libpython (if any)."""
    exe = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
    stdlib = sysconfig.get_paths()["stdlib"]
    libdir, ldlib = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("LDLIBRARY")
    libpython = None
    if sysconfig.get_config_var("Py_ENABLE_SHARED") and libdir and ldlib:
        cand = Path(libdir) / ldlib
        so = sorted(Path(libdir).glob(ldlib + ".*")) if cand.exists() else []
        libpython = str(so[0] if so else cand) if cand.exists() else None
    hidden = {p for p in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"],
                          "/usr/lib/python3/dist-packages", f"/usr/local/lib/python{sys.version_info.major}.{sys.version_info.minor}"}
              if os.path.isdir(p)}
    return {"exe": exe, "stdlib": stdlib, "libpython": libpython, "hidden": sorted(hidden),
            "version": f"python{sys.version_info.major}.{sys.version_info.minor}"}


def _bwrap(tmp_mb: int, root: bool) -> list[str]:
    lay = python_layout()
    cmd = ["bwrap", "--ro-bind", "/usr", "/usr"]
    for d in ("lib", "lib64", "bin", "sbin"):  # merged-/usr symlinks, or the real dirs on older systems
        p = Path("/" + d)
        if p.is_symlink():
            cmd += ["--symlink", os.readlink(p), str(p)]
        elif p.is_dir():
            cmd += ["--ro-bind", str(p), str(p)]
    std = f"/py/lib/{lay['version']}"
    cmd += ["--perms", "0755", "--dir", "/py", "--perms", "0755", "--dir", "/py/lib", "--perms", "0755", "--dir", "/py/bin",
            "--ro-bind", lay["exe"], "/py/bin/python3", "--ro-bind", lay["stdlib"], std]
    if lay["libpython"]:
        cmd += ["--ro-bind", lay["libpython"], "/py/lib/" + Path(lay["libpython"]).name]
    for h in lay["hidden"]:  # installed packages (this one, the datasets) stay out of sight
        target = std + "/site-packages" if h.startswith(lay["stdlib"]) else h
        if target.startswith("/usr") or target.startswith("/py"):
            cmd += ["--perms", "0700", "--tmpfs", target]
    cmd += ["--dev", "/dev", "--perms", "1777", "--size", str(tmp_mb << 20), "--tmpfs", "/tmp", "--chdir", "/tmp",
            "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--hostname", "sandbox", "--die-with-parent", "--new-session", "--clearenv",
            "--setenv", "LD_LIBRARY_PATH", "/py/lib", "--setenv", "HOME", "/tmp"]
    for k, v in ENV.items():
        cmd += ["--setenv", k, v]
    cmd += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"] if root else ["--unshare-user"]
    return cmd + ["/py/bin/python3"]


def command(level: str, mode: str, fd: int, uid: int, limits: dict, tmp_mb: int) -> list[str]:
    """argv that runs the in-sandbox runner at isolation ``level``."""
    import json

    tail = ["-I", "-S", "-c", RUNNER.read_text(), mode, str(fd), str(uid), json.dumps(limits)]
    if level == "bwrap":
        return _bwrap(tmp_mb, is_root()) + tail
    exe = python_layout()["exe"]
    if level == "unshare":  # own network and pid namespaces; the filesystem is only guarded by the uid
        return ["unshare", "--net", "--pid", "--fork", "--kill-child"] + ([] if is_root() else ["--map-root-user"]) + [exe] + tail
    return [exe] + tail


@functools.lru_cache(maxsize=None)
def works(level: str) -> bool:
    """Can this machine start a sandbox at ``level``? (A real trial run, cached.)"""
    if level != "none" and not shutil.which("bwrap" if level == "bwrap" else "unshare"):
        return False
    try:
        argv = command(level, "probe", 1, job_uid(level), {}, 1)
        r = subprocess.run(argv[: argv.index("-c") + 1] + ["print('ok')"], capture_output=True, timeout=30, env=ENV)
        return r.returncode == 0 and r.stdout.strip() == b"ok"
    except (OSError, subprocess.SubprocessError):
        return False


def best(requested: str = "auto") -> str:
    """``auto``: the strongest level that works here. A named level that does not work is an error."""
    if requested == "auto":
        return next(level for level in LEVELS if works(level))
    if requested not in LEVELS:
        raise ValueError(f"sandbox isolation {requested!r}: expected one of auto, {', '.join(LEVELS)}")
    if not works(requested):
        hint = " (install it: apt-get install -y bubblewrap)" if requested == "bwrap" else ""
        raise RuntimeError(f"sandbox isolation {requested!r} does not work on this machine{hint}")
    return requested
