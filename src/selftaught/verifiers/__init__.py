"""Verifiers and scorers: the design's Verifier/Scorer noun in one place. A
verifier is a plain function ``(problem, completion) -> Score`` (each task's
``verify``, e.g. ``tasks/arithmetic.verify``); here live what scores beyond the
task's own check: graded rewards and reward models (``scorers``), the model as
its own judge (``judge``), and the majority vote (``vote``)."""
