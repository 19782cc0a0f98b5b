"""The program that runs *inside* the sandbox. Standard library only; it is passed
to ``python -I -S -c`` as text, so the sandbox never needs to see this package.

argv: MODE RESULT_FD UID LIMITS_JSON   (MODE is ``tests`` or ``raw``)
stdin: one JSON object -- ``nonce``, and ``solution``/``setup``/``test``/``entry_point``
for ``tests``, or ``code`` for ``raw``.

Order matters (see the threat model in ``selftaught.sandbox``): limits and the uid
drop first; then the payload is read and stdin closed; then everything the checks
rely on is captured (builtins, the modules the tests import, ``os.write``,
``os._exit``) and the audit hook is installed; only then does model-written code
run. The nonce is written to RESULT_FD only after every test returned normally.
"""

import builtins
import collections
import json
import os
import resource
import sys
import types

# Every function below is created after this line, so it looks builtins up in this
# private copy: a solution that patches ``builtins.len`` cannot reach the runner.
__builtins__ = dict(builtins.__dict__)
_write, _exit, _type, _isinstance, _str = os.write, os._exit, type, isinstance, str
PLAIN = (int, float, complex, bool, str, bytes, type(None), range)
DICTS = (dict, collections.Counter, collections.OrderedDict, collections.defaultdict)
CONTAINERS = (list, tuple, set, frozenset, collections.deque) + DICTS
SEALED = CONTAINERS[4:]  # the stdlib containers above; the hook refuses to patch them
DENY_EVENTS = {
    "sys._getframe", "sys._current_frames", "sys.settrace", "sys.setprofile", "gc.get_objects",
    "gc.get_referrers", "gc.get_referents", "code.__new__", "marshal.load", "marshal.loads",
    "os.exec", "os.posix_spawn", "os.spawn", "os.system", "subprocess.Popen", "ctypes.dlopen",
}
DENY_ATTRS = {"tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_back"}
DENY_MODULES = {"ctypes", "_ctypes", "signal", "_signal", "_posixsubprocess", "_testcapi",
                "_testinternalcapi", "_xxsubinterpreters", "_xxinterpchannels", "gc"}


class Denied(ValueError):
    """Raised by the audit hook (a ValueError, so stdlib code that probes frames degrades politely)."""


def _audit(event, args):
    if event in DENY_EVENTS or (event == "object.__getattr__" and args[1] in DENY_ATTRS) or (
            event == "import" and _str(args[0]).partition(".")[0] in DENY_MODULES) or (
            event in ("object.__setattr__", "object.__delattr__") and any(args[0] is t for t in SEALED)):
        raise Denied(f"sandbox: {event} {args[:2] if event != 'import' else args[0]} is not allowed")


def apply_limits(limits):
    """Hard and soft limits alike, so the program cannot raise them again."""
    for name, value in limits.items():
        res = getattr(resource, "RLIMIT_" + name.upper())
        hard = value + 1 if name == "cpu" else value
        resource.setrlimit(res, (value, hard))


def drop_privileges(uid):
    if uid >= 0 and os.getuid() == 0:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)  # from root to non-root: all capabilities go too


def impure(value, depth=0):
    """None if ``value`` is plain data, else the name of the offending type. Objects
    with their own ``__eq__`` (an "always equal" object) are how a pass is faked
    without patching anything; plain builtin types cannot be patched from Python."""
    t = _type(value)
    if t in PLAIN:
        return None
    if t not in CONTAINERS or depth > 50:
        return t.__name__
    items = value.items() if t in DICTS else value
    for item in items:
        bad = impure(item, depth + 1)
        if bad:
            return bad
    return None


def guard(fn, name, violations):
    def candidate(*args, **kwargs):
        out = fn(*args, **kwargs)
        bad = impure(out)
        if bad:
            violations.append(f"{name} returned a {bad} object; tests accept only plain values (int, str, list, ...)")
            raise AssertionError(violations[-1])
        return out
    return candidate


def module_copies(code):
    """Pre-import the modules the test code imports and give the tests shallow copies,
    so a solution that patches ``math.isclose`` patches a module the tests never see."""
    import ast

    names = set()
    for node in ast.walk(ast.parse(code)):
        if _isinstance(node, ast.Import):
            names.update(a.name.partition(".")[0] for a in node.names)
        elif _isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.partition(".")[0])
    copies = {}
    for name in sorted(names):
        try:
            mod = __import__(name)
        except Exception:
            continue
        copy = types.ModuleType(mod.__name__)
        copy.__dict__.update(mod.__dict__)
        copies[name] = copy
    return copies


def test_builtins(pristine, copies):
    real_import = pristine["__import__"]

    def _import(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and name in copies:
            return copies[name]
        return real_import(name, globals, locals, fromlist, level)

    b = dict(pristine)
    b["__import__"] = _import
    return b


def run_tests(p, pristine, copies, violations):
    """Solution and tests in separate namespaces; the tests get pristine builtins,
    module copies, and guarded versions of the solution's functions."""
    sol = {"__name__": "__main__", "__builtins__": dict(pristine)}
    exec(compile(p["solution"], "<solution>", "exec"), sol)
    env = {"__name__": "__test__", "__builtins__": test_builtins(pristine, copies)}
    targets = set(p.get("targets") or ())  # functions under test may shadow builtins (MBPP's `sum`)
    for name, value in list(sol.items()):
        if name.startswith("__") or (name in pristine and name not in targets) or _isinstance(value, types.ModuleType):
            continue
        env[name] = guard(value, name, violations) if _type(value) is types.FunctionType else value
    entry = p.get("entry_point")
    if entry:
        if entry not in sol or not callable(sol[entry]):
            return f"entry point {entry!r} is not defined by the solution"
        env["candidate"] = guard(sol[entry], entry, violations)
    exec(compile(p.get("setup", ""), "<setup>", "exec"), env)
    exec(compile(p["test"], "<test>", "exec"), env)
    return violations[0] if violations else None


def describe(exc):
    try:
        text = _str(exc)[:500]
    except BaseException:
        text = "?"
    return f"{_type(exc).__name__}: {text}" if text else _type(exc).__name__


def main():
    mode, fd, uid, limits = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
    apply_limits(limits)
    drop_privileges(uid)
    chunks = []
    while True:
        chunk = os.read(0, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(0)
    payload = json.loads(b"".join(chunks))
    del chunks
    nonce = payload.pop("nonce").encode()
    if mode == "raw":  # OS-level isolation only: no in-process protection at all
        exec(compile(payload["code"], "<program>", "exec"), {"__name__": "__main__"})
        return
    pristine, violations = dict(builtins.__dict__), []
    copies = module_copies(payload.get("setup", "") + "\n" + payload["test"])
    # Compile later imports from source: the stdlib's .pyc files would need ``marshal``,
    # which the hook refuses because crafted bytecode can read the process's memory.
    sys.dont_write_bytecode, sys.pycache_prefix = True, "/nonexistent-pycache"
    sys.modules.pop("_signal", None)
    sys.modules.pop("gc", None)
    sys.addaudithook(_audit)
    try:
        verdict = run_tests(payload, pristine, copies, violations)
    except BaseException as e:  # SystemExit and KeyboardInterrupt too: an exit is not a pass
        verdict = describe(e)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()  # the program's prints, for debugging; never part of the verdict
        except BaseException:
            pass
    if verdict is None and not violations:
        _write(fd, nonce)
        _exit(0)
    try:
        _write(fd, ("FAIL " + _str(verdict or violations[0])[:2000]).encode("utf-8", "replace"))
    finally:
        _exit(1)


if __name__ == "__main__":
    main()
