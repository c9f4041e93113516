"""Benchmarks run with `make bench` (pytest-benchmark); they are not part of the CI tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _fixed_threads():
    # The same thread count for every timing in a run, so ratios compare like with like.
    previous = torch.get_num_threads()
    torch.set_num_threads(min(previous, 2))
    yield
    torch.set_num_threads(previous)
