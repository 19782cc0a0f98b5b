"""``selftaught probe``: is this model/task pair worth self-training?

Self-training needs a model that already solves some problems (there is nothing
to keep otherwise) but not most of them (there is little left to learn). So
before spending compute, measure the base model's greedy accuracy on the task's
held-out problems with a 95% Wilson interval, and say where it sits relative to
the *zone of proximal development*, 25-75% (the band where STaR-style loops
have signal; below it rationalization has to carry everything, above it the
loop mostly re-learns what the model knows).

    selftaught probe --model builtin:smollm2-135m-instruct --task reasoning_gym:basic_arithmetic \\
        --n 100 task.kwargs.max_digits=2 "task.kwargs.operators=[+,-]"

Extra ``key=value`` arguments override the task section (``task.`` prefix
optional), the backend (``backend.chat_template=false``) or the hardware
(``hardware.device=cpu``; default: a GPU in bf16 where there is one, see
``hardware.py``). ``--model`` takes what a recipe's ``model:`` takes, hub ids
(``HuggingFaceTB/SmolLM2-135M-Instruct``, ``org/name@revision``) included.
"""

from __future__ import annotations

import time

ZONE = (0.25, 0.75)


def _sections(task: str, overrides: list[str]) -> tuple[dict, dict, dict]:
    from selftaught.config import ConfigError, set_dotted

    tree: dict = {"task": {"type": task}, "backend": {"type": "hf"}, "hardware": {}}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override `{item}`: expected key=value, e.g. task.eval_size=100")
        key, raw = item.split("=", 1)
        if not key.startswith(("task.", "backend.", "hardware.")):
            key = "task." + key
        set_dotted(tree, key, raw)
    return tree["task"], tree["backend"], tree["hardware"]


def _valid(cls, section: dict, name: str):
    """A config section, or a ConfigError naming each bad field (not pydantic's raw dump)."""
    from pydantic import ValidationError

    from selftaught.config import ConfigError

    try:
        return cls.model_validate(section)
    except ValidationError as e:
        lines = [f"  `{'.'.join([name, *map(str, err['loc'])])}`: {err['msg'].removeprefix('Value error, ')}"
                 for err in e.errors()]
        raise ConfigError("invalid probe settings:\n" + "\n".join(lines)) from None


def zone(acc: float, lo: float, hi: float) -> tuple[str, bool]:
    """('below' | 'inside' | 'above', whether the whole interval agrees)."""
    where = "below" if acc < ZONE[0] else "above" if acc > ZONE[1] else "inside"
    sure = {"below": hi < ZONE[0], "above": lo > ZONE[1], "inside": lo >= ZONE[0] and hi <= ZONE[1]}[where]
    return where, sure


def probe(model: str, task: str, n: int = 200, overrides: list[str] = (), max_new_tokens: int = 160,
          seed: int = 0) -> dict:
    """Greedy base accuracy of ``model`` on ``n`` held-out problems of ``task``."""
    from selftaught import hardware, registry
    from selftaught.config import HardwareConfig
    from selftaught.evaluate import wilson
    from selftaught.models.loading import hub_revision, resolve

    task_sec, backend_sec, hw_sec = _sections(task, list(overrides))
    hw = hardware.use(_valid(HardwareConfig, hw_sec, "hardware"))
    task_obj = registry.load("task", task).build(_valid(registry.load("task", task).Config, task_sec, "task"))
    backend = registry.load("backend", "hf").build(_valid(registry.load("backend", "hf").Config, backend_sec, "backend"))
    problems = task_obj.eval_set()[:n]
    if not problems:
        raise ValueError(f"task {task}: empty held-out set")
    path = resolve(model, task_obj, seed=seed)
    t0 = time.perf_counter()
    backend.load(path, task_obj.position_tracker)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    outs = backend.sample([task_obj.prompt(p) for p in problems], 1, temperature=0.0, max_new_tokens=max_new_tokens,
                          seed=seed, desc=f"probe {task}")
    gen_s = time.perf_counter() - t0
    scores = [task_obj.verify(p, o[0]) for p, o in zip(problems, outs)]
    k = sum(s.correct for s in scores)
    acc = k / len(problems)
    lo, hi = wilson(acc, len(problems))
    where, sure = zone(acc, lo, hi)
    stated = sum(s.answer is not None for s in scores) / len(problems)
    return {"model": model, "revision": hub_revision(model), "hardware": hw.describe(),
            "task": task, "overrides": list(overrides), "n": len(problems), "correct": k,
            "acc": acc, "ci_low": lo, "ci_high": hi, "zone": where, "zone_certain": sure,
            "answered_frac": stated, "load_s": round(load_s, 2), "s_per_item": round(gen_s / len(problems), 3),
            "examples": [{"question": p.question[:300], "gold": p.answer, "completion": o[0], "correct": s.correct}
                         for p, o, s in list(zip(problems, outs, scores))[:3]]}


def add_arguments(p) -> None:
    p.add_argument("--model", required=True, help="hub id org/name[@revision], HF model dir, .gguf file, or builtin:<name>")
    p.add_argument("--task", required=True, help="task type, e.g. gsm8k or reasoning_gym:chain_sum")
    p.add_argument("--n", type=int, default=200, help="held-out problems to score (default 200)")
    p.add_argument("--max-new-tokens", type=int, default=160)
    p.add_argument("--json", help="also write the result to this JSON file")
    p.add_argument("overrides", nargs="*", help="task (or backend., hardware.) key=value overrides")


def cmd(args) -> int:
    import json

    from rich.console import Console

    r = probe(args.model, args.task, args.n, args.overrides, args.max_new_tokens)
    out = Console()
    at = f" at commit {r['revision']}" if r["revision"] else ""
    out.print(f"[dim]{r['model']}{at} on {r['hardware']}[/]", highlight=False)
    for ex in r["examples"]:
        out.print(f"[dim]gold {ex['gold']!r} ({'right' if ex['correct'] else 'wrong'}):[/] "
                  f"{ex['completion'][:200]!r}", highlight=False)
    sure = "" if r["zone_certain"] else " (the interval crosses a zone boundary: probe more problems)"
    out.print(f"[bold]{r['model']} x {r['task']}[/]: {r['correct']}/{r['n']} = {r['acc']:.1%} "
              f"[95% CI {r['ci_low']:.1%}-{r['ci_high']:.1%}], answered {r['answered_frac']:.0%}, "
              f"{r['s_per_item']} s/item -> [bold]{r['zone']}[/] the 25-75% zone{sure}", highlight=False)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f, indent=1)
    return 0
