"""Deterministic inputs that both runtimes compute bit-identically.

No RNG is involved: each element is an integer expression divided in float64 (IEEE division is
correctly rounded everywhere) and then rounded to float32. The C# twin is Data.cs.
"""

from typing import Sequence

import torch


def pattern(shape: Sequence[int], salt: int) -> torch.Tensor:
    """float32 tensor whose i-th element is ((i * 7919 + salt * 104729) % 2001 - 1000) / 1000.

    Args:
        shape: the tensor's shape.
        salt: selects a different, equally deterministic, pattern.
    Returns:
        A contiguous float32 CPU tensor.
    """
    n = 1
    for d in shape:
        n *= d
    i = torch.arange(n, dtype=torch.int64)
    v = ((i * 7919 + salt * 104729) % 2001 - 1000).to(torch.float64) / 1000.0
    return v.to(torch.float32).reshape(list(shape))


def labels(n: int, classes: int, salt: int) -> torch.Tensor:
    """int64 class labels (i * 7 + salt) % classes."""
    i = torch.arange(n, dtype=torch.int64)
    return (i * 7 + salt) % classes


def tokens(shape: Sequence[int], vocab: int, salt: int) -> torch.Tensor:
    """int64 token ids (i * 7919 + salt * 104729) % vocab."""
    n = 1
    for d in shape:
        n *= d
    i = torch.arange(n, dtype=torch.int64)
    return ((i * 7919 + salt * 104729) % vocab).reshape(list(shape))
