"""The collapse detector's hits and false alarms over every saved benchmark run.

    python benchmarks/detector_replay.py            # table + benchmarks/results/detector_replay.json

Every ``benchmarks/results/*.json`` that holds runs' per-iteration metrics (the
loop's ``metrics.jsonl`` rows) is replayed through today's rules
(``monitor/detector.check``, default ``gate`` settings, over-optimization rule
included), iteration by iteration, as the loop would have called it; runs saved
by older code are judged by the current rules too. Nothing is re-run.

Ground truth, by a rule stated here rather than by hand: a run *declined* if its
held-out accuracy at some iteration fell more than ``DROP`` (5 points) below the
starting model's. A *hit* is a declined run with an alarm at warn level or above
("high" or "critical"; "info" notes do not count), a *miss* a declined run with
none, a *false alarm* an alarm on a run that never declined. The first alarm's
iteration is printed next to the first iteration of the decline.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from selftaught.config import GateConfig
from selftaught.monitor import detector

RESULTS = Path(__file__).parent / "results"
OUT = RESULTS / "detector_replay.json"
DROP = 0.05
WARN = {"high", "critical"}


def histories(obj, path=""):
    """(path, metrics rows) of every run held anywhere in a results JSON."""
    if isinstance(obj, dict):
        rows = obj.get("metrics")
        if isinstance(rows, list) and rows and isinstance(rows[0], dict) and "eval/acc" in rows[0]:
            yield path, rows
            return
        for k, v in obj.items():
            yield from histories(v, f"{path}/{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from histories(v, f"{path}[{i}]")


def replay(rows: list[dict], cfg: GateConfig) -> dict:
    acc = [r["eval/acc"] for r in rows]
    declined = next((r["iteration"] for r in rows if r["eval/acc"] < acc[0] - DROP), None)
    alarms = []
    for k in range(1, len(rows)):
        for a in detector.check(cfg, rows[: k + 1]):
            alarms.append({"iteration": rows[k]["iteration"], "severity": a.severity, "rule": a.rule,
                           "metric": a.metric, "message": a.message})
    warned = [a for a in alarms if a["severity"] in WARN]
    first = warned[0] if warned else None
    verdict = ("hit" if warned else "miss") if declined is not None else ("false alarm" if warned else "quiet")
    return {"acc": [round(x, 4) for x in acc], "declined_at": declined, "verdict": verdict,
            "first_alarm": first, "alarms": alarms}


def main() -> None:
    cfg = GateConfig()
    out = {}
    for f in sorted(RESULTS.glob("*.json")):
        if f == OUT:
            continue
        for path, rows in histories(json.loads(f.read_text())):
            out[f"{f.stem}{path}"] = replay(rows, cfg)
    table = Table(title=f"collapse detector replayed over saved runs (declined = held-out acc > {DROP:.0%} below the start)")
    for col in ("run", "acc start -> min -> end", "declined at", "first warning", "verdict"):
        table.add_column(col)
    for name, r in out.items():
        a = r["first_alarm"]
        table.add_row(name, f"{r['acc'][0]:.0%} -> {min(r['acc']):.0%} -> {r['acc'][-1]:.0%}",
                      "" if r["declined_at"] is None else str(r["declined_at"]),
                      "" if a is None else f"it {a['iteration']} {a['severity']} {a['rule']} ({a['metric']})",
                      r["verdict"])
    con = Console(width=200)
    con.print(table)
    tally = {v: sum(r["verdict"] == v for r in out.values()) for v in ("hit", "miss", "false alarm", "quiet")}
    con.print(f"{len(out)} runs: " + ", ".join(f"{n} {v}" for v, n in tally.items()), highlight=False)
    OUT.write_text(json.dumps({"drop": DROP, "tally": tally, "runs": out}, indent=1) + "\n")
    con.print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
