"""``selftaught run`` in a real, separate process that does not pay the imports again.

The crash tests start ~25 CLI processes, and each one spent about 4 of its ~9
seconds importing torch, transformers, TRL and datasets before doing anything.
Here the processes are forked from a multiprocessing *forkserver* that imported
those once: every run is still its own process, killed with a real SIGKILL and
resumed by another, which is what the tests are about.

Why a forkserver and not ``fork`` from pytest: the test process has run torch
ops, and forking a process whose OpenMP pool has started can hang the child.
The forkserver only ever imports, so its children start clean; each child sets
its thread count itself, since OpenMP read ``OMP_NUM_THREADS`` once, when the
forkserver loaded it. Only variables read at run time may differ between calls
(``SELFTAUGHT_CACHE``, ``SELFTAUGHT_FAULT``, ``OMP_NUM_THREADS``); tests that set
variables read at import (``HF_HUB_OFFLINE``, ``HF_HOME``) use ``subprocess``.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import tempfile
import traceback
from dataclasses import dataclass

PRELOAD = ["torch", "transformers", "trl", "trl.trainer.sft_trainer", "datasets", "pyarrow.parquet",
           "selftaught.cli", "selftaught.loop"]
_ctx = None


def _context():
    global _ctx
    if _ctx is None:
        _ctx = multiprocessing.get_context("forkserver")
        _ctx.set_forkserver_preload(PRELOAD)  # before the forkserver starts, i.e. before the first Process
    return _ctx


def _child(argv: list[str], env: dict, log: str) -> None:
    os.environ.clear()
    os.environ.update(env)
    os.setsid()  # its own process group, as subprocess's start_new_session: killpg reaches only it
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    import torch

    torch.set_num_threads(int(env.get("OMP_NUM_THREADS") or os.cpu_count() or 1))
    from selftaught import cli

    try:
        code = cli.main(argv) or 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else int(e.code is not None)
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@dataclass
class Done:
    returncode: int  # negative: killed by that signal, as subprocess reports it
    output: str  # stdout and stderr together


class Run:
    """A started ``selftaught <argv>``; ``pid`` leads its own process group."""

    def __init__(self, argv: list[str], env: dict) -> None:
        fd, self.log = tempfile.mkstemp(prefix="selftaught-run-", suffix=".log")
        os.close(fd)
        self.proc = _context().Process(target=_child, args=(argv, dict(env), self.log))
        self.proc.start()
        self.pid = self.proc.pid

    def poll(self) -> int | None:
        return self.proc.exitcode

    def wait(self) -> Done:
        self.proc.join()
        with open(self.log, errors="replace") as f:
            out = f.read()
        os.unlink(self.log)
        return Done(self.proc.exitcode, out)


def run(argv: list[str], env: dict) -> Done:
    """Run to the end (or to its death) and return its exit status and output."""
    return Run(argv, env).wait()
