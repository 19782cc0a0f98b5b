"""The box's compute roof, measured at the start of every benchmark and printed
beside its figures: boxes of this kind differ several-fold from one day to the
next, so only ratios measured side by side in one run compare."""

from __future__ import annotations

import time


def matmul_peak(n: int = 4096, reps: int = 3) -> float:
    """fp32 GFLOP/s of n x n products at the current torch thread count."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


if __name__ == "__main__":
    print(f"fp32 matmul peak: {matmul_peak():.1f} GFLOP/s")
