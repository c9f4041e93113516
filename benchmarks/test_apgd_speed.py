"""APGD-20 speed on the small CNN of benchmarks/conftest.py (batch 512, CPU), as ratios in one run.

Reference: our PGD-20, the same loop with a fixed step (its own benchmark holds it to the
floor of 20 forward+backward passes), so the ratio is the cost of APGD's step rule alone:
momentum, the best point and the checkpoint counts. Peer: torchattacks' APGD with the same
eps, steps, loss and one restart (it takes one gradient more; printed, not enforced, as in
test_attack_speed). Target: ours/pgd <= 1.05. Run it on a quiet machine: on a shared one the
spread between rounds is larger than the rule's cost (about 1%).

    .venv/bin/python -m pytest benchmarks/test_apgd_speed.py --benchmark-only -s
"""

from __future__ import annotations

import torchattacks

from attacks import apgd, pgd
from benchmarks.timing import interleaved_ratios

STEPS, EPS = 20, 0.05


def test_apgd_against_pgd_and_torchattacks(benchmark, digits28) -> None:
    model, x, y = digits28
    peer = torchattacks.APGD(model, eps=EPS, steps=STEPS, loss="ce", n_restarts=1)
    ratios = interleaved_ratios(
        benchmark,
        lambda: apgd(model, x, y, EPS, steps=STEPS),
        {"pgd": lambda: pgd(model, x, y, EPS, steps=STEPS), "torchattacks": lambda: peer(x, y)},
        group="apgd-20, batch 512, CPU",
    )
    assert ratios["ours / pgd"] <= 1.05
