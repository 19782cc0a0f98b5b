"""selftaught: self-improvement loops for language models.

Importing this package is cheap on purpose: no torch, TRL, vLLM or Ray here.
"""

__version__ = "0.1.0"
