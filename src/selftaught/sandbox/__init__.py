"""Run untrusted (model-written) Python and decide pass/fail in a way the program
cannot fake. Docs: ``docs/sandbox.md``.

Threat model. The program is hostile: it may try to damage or read the machine,
hog it, or *fake a pass*. Two layers, each tested in ``tests/unit/test_sandbox.py``:

1. Containment (the OS, not Python). Preferred level ``bwrap`` (bubblewrap):
   fresh network namespace (no interfaces but loopback: no network), pid, ipc and
   uts namespaces; a filesystem of read-only ``/usr`` plus the interpreter and its
   standard library (installed packages, this package, the datasets, ``/etc``,
   ``/home``, ``/root``, the run directory and ``/proc`` are simply not there); a
   size-capped tmpfs ``/tmp`` as the throwaway work dir; empty environment plus
   PATH/LANG. rlimits on CPU seconds, address space, processes, file size, core
   dumps. As root each execution runs under a fresh uid (``RLIMIT_NPROC`` is per
   uid and never enforced for uid 0). The harness kills the whole process group
   on the wall-clock timeout; with a pid namespace every descendant dies with it.
   ``unshare`` (network + pid namespaces, uid drop, rlimits; files readable by any
   uid stay readable) and ``none`` (rlimits, own session, scrubbed env, uid drop
   when root; no network or filesystem isolation) are fallbacks: ``auto`` picks
   the strongest that works, and ``Sandbox.level`` says which one ran.

2. Unforgeable verdict. The harness makes a random nonce per execution and
   passes it on stdin with the tests; it counts a pass only if the process exits 0
   *and* the result pipe holds exactly the nonce. The in-sandbox runner writes it
   after the test code returned normally, then calls ``os._exit``. So exit 0,
   ``os._exit(0)``, ``SystemExit``, printing "passed", writing to any fd, or a
   crash are all failures. The tests never exist as a file (nothing to
   overwrite); they run in their own namespace with a pristine copy of builtins,
   shallow copies of the modules they import (taken before the solution ran),
   and the solution's functions wrapped so that a return value that is not plain
   data (an "always equal" object) fails. To keep the nonce out of reach of the
   program in its own process, a ``sys.addaudithook`` hook (which cannot be
   removed) refuses frame access (``sys._getframe``, ``tb_frame``, ``gi_frame``,
   ``f_back``...), ``gc`` introspection, tracing/profiling hooks, new code objects
   and ``marshal``, ``ctypes``, signal handlers (they receive frames) and starting
   new programs (a fresh interpreter would have no hook); ``/proc`` is not mounted.

Not covered: kernel exploits; a program that gets native code into its own
process another way (e.g. writes and imports a compiled extension module) could
read the nonce; side channels (timing, /tmp-size probing); on ``unshare``/``none``
the files readable by any user. Audit hooks are a speed bump, not a wall -- the
namespaces and rlimits are the wall.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from selftaught.sandbox import isolation


@dataclass(frozen=True)
class Limits:
    cpu_s: int = 10  # CPU seconds per execution (SIGXCPU past it)
    wall_s: float = 20.0  # wall-clock seconds, then the process group is killed
    memory_mb: int = 1024  # address space (RLIMIT_AS)
    nproc: int = 64  # processes and threads the program may add
    file_mb: int = 16  # largest file it may write, stdout/stderr included
    tmp_mb: int = 64  # size of the throwaway /tmp (bwrap)
    output_kb: int = 16  # stdout/stderr kept in the result (tail)


@dataclass(frozen=True)
class Result:
    passed: bool
    status: str  # passed | failed | timeout | killed | error
    reason: str
    seconds: float
    returncode: int | None
    stdout: str = ""
    stderr: str = ""


SIGNALS = {signal.SIGXCPU: "CPU time limit", signal.SIGXFSZ: "file size limit", signal.SIGKILL: "killed",
           signal.SIGSEGV: "segmentation fault", signal.SIGABRT: "aborted"}


class Sandbox:
    """``Sandbox(limits, workers=2).check(solution, test, entry_point)`` -> Result.
    ``check_many`` runs up to ``workers`` executions at once."""

    def __init__(self, limits: Limits = Limits(), workers: int = 2, isolation_level: str = "auto") -> None:
        self.limits, self.workers = limits, max(1, workers)
        self.level = isolation.best(isolation_level)

    def check(self, solution: str, test: str, entry_point: str | None = None, setup: str = "",
              targets: list[str] = ()) -> Result:
        """Run ``solution``, then ``setup`` and ``test`` (which raises on failure) in a
        namespace of their own that sees the solution's names. With ``entry_point`` the
        tests see that function as ``candidate``; ``targets`` are functions under test
        that may shadow a builtin (the tests see every other builtin name pristine)."""
        return self._execute("tests", {"solution": solution, "test": test, "entry_point": entry_point,
                                       "setup": setup, "targets": list(targets)})

    def run(self, code: str) -> Result:
        """A plain program, contained by the OS layer only (no verdict protection):
        passed means exit status 0. For probing the containment itself."""
        return self._execute("raw", {"code": code})

    def check_many(self, jobs: list[dict]) -> list[Result]:
        """``jobs``: keyword dicts for ``check``; results in the same order."""
        if self.workers == 1 or len(jobs) <= 1:
            return [self.check(**j) for j in jobs]
        with ThreadPoolExecutor(self.workers) as pool:
            return list(pool.map(lambda j: self.check(**j), jobs))

    def _rlimits(self, uid: int) -> dict:
        lim = self.limits
        return {"cpu": lim.cpu_s, "as": lim.memory_mb << 20, "nproc": isolation.nproc_limit(lim.nproc, uid),
                "fsize": lim.file_mb << 20, "core": 0, "nofile": 256}

    def _execute(self, mode: str, payload: dict) -> Result:
        import json

        nonce = secrets.token_hex(16)
        uid = isolation.job_uid(self.level)
        read_end, write_end = os.pipe()
        workdir = tempfile.mkdtemp(prefix="selftaught-sandbox-")
        try:
            if uid >= 0:
                os.chown(workdir, uid, uid)
            argv = isolation.command(self.level, mode, write_end, uid, self._rlimits(uid), self.limits.tmp_mb)
            with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
                start = time.monotonic()
                proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=out, stderr=err, pass_fds=(write_end,),
                                        cwd=workdir, env={**isolation.ENV, "HOME": workdir}, start_new_session=True)
                os.close(write_end)
                write_end = -1
                timed_out = self._feed_and_wait(proc, json.dumps({**payload, "nonce": nonce}).encode())
                seconds = time.monotonic() - start
                os.set_blocking(read_end, False)
                try:
                    verdict = os.read(read_end, 65536)
                except BlockingIOError:
                    verdict = b""
                return self._result(mode, nonce, proc.returncode, timed_out, verdict, seconds, _tail(out, self.limits),
                                    _tail(err, self.limits))
        finally:
            for fd in (read_end, write_end):
                if fd >= 0:
                    os.close(fd)
            shutil.rmtree(workdir, ignore_errors=True)

    def _feed_and_wait(self, proc: subprocess.Popen, data: bytes) -> bool:
        """Send the payload, wait up to the wall limit, kill the process group if needed."""
        try:
            proc.stdin.write(data)
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass  # died before reading (e.g. a limit at start-up); its exit status says why
        try:
            proc.wait(timeout=self.limits.wall_s)
            return False
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            return True

    def _result(self, mode, nonce, rc, timed_out, verdict, seconds, stdout, stderr) -> Result:
        r = dict(seconds=seconds, returncode=rc, stdout=stdout, stderr=stderr)
        if timed_out:
            return Result(False, "timeout", f"wall-clock limit of {self.limits.wall_s:g}s", **r)
        sig = -rc if rc is not None and rc < 0 else (rc - 128 if rc and rc - 128 in SIGNALS else 0)
        if sig:  # bwrap reports a child killed by signal N as exit status 128 + N
            why = SIGNALS.get(sig, f"signal {sig}")
            return Result(False, "killed", why, **r)
        if rc and not verdict and seconds >= self.limits.cpu_s:
            # util-linux `unshare --fork` cannot always re-raise its child's SIGXCPU/SIGKILL
            # ("sigprocmask unblock failed") and exits 1 instead: a non-zero exit after at
            # least the whole CPU budget of wall time is the CPU limit, whatever the launcher says.
            return Result(False, "killed", "CPU time limit (reported by the launcher as an exit status)", **r)
        if mode == "raw":
            return Result(rc == 0, "passed" if rc == 0 else "failed", f"exit status {rc}", **r)
        if rc == 0 and verdict == nonce.encode():
            return Result(True, "passed", "all tests passed", **r)
        if verdict.startswith(b"FAIL "):
            return Result(False, "failed", verdict[5:].decode("utf-8", "replace"), **r)
        if rc == 0:
            return Result(False, "failed", "exited before the tests finished (no completion token)", **r)
        last = stderr.strip().splitlines()[-1:] or [""]
        return Result(False, "error", f"exit status {rc}: {last[0][:300]}", **r)


def _tail(f, limits: Limits) -> str:
    f.seek(0, os.SEEK_END)
    size = f.tell()
    f.seek(max(0, size - limits.output_kb * 1024))
    return f.read().decode("utf-8", "replace")


__all__ = ["Limits", "Result", "Sandbox", "asdict"]
