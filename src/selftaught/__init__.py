"""selftaught: self-improvement loops for language models.

    import selftaught
    run = selftaught.run("recipe.yaml", ["iterations=2"], verifier=my_check)   # api.py
    selftaught.load_run("runs/star-arithmetic").metrics

Importing this package is cheap on purpose: no torch, TRL, vLLM or Ray here.
"""

from selftaught.api import Run, load_run, run

__all__ = ["Run", "load_run", "run"]
__version__ = "0.1.0"
