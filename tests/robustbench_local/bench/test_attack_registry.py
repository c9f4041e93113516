"""Every registered attack runs through the registry's calling convention."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robustbench_local.bench.attack_registry import ATTACKS, attack_entry
from robustbench_local.registry import UnknownNameError


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 5)
    ).eval()


@pytest.mark.parametrize("name", ATTACKS.names())
def test_every_attack_runs_within_its_budget(name: str) -> None:
    entry = attack_entry(name)
    model = _model()
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    y = torch.arange(6) % 5
    small = {"steps": 3, "n_queries": 20}  # keep the test fast; same code path
    params = {**entry.params, **{k: v for k, v in small.items() if k in entry.params}}
    for norm in sorted(entry.norms):
        eps = 0.1 if norm == "linf" else 0.5
        x_adv = entry.run(
            model, x, y, eps, norm=norm, generator=torch.Generator().manual_seed(0), **params
        )
        assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
        delta = (x_adv - x).flatten(1)
        size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
        assert float(size.max()) <= eps + 1e-6
        assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    assert ATTACKS.metadata(name)["description"]


def test_unknown_attack_suggests_the_closest() -> None:
    with pytest.raises(UnknownNameError, match=r"unknown attack 'apgd' \(did you mean "):
        attack_entry("apgd")


@pytest.mark.parametrize(
    ("name", "loss"),
    [("fgsm", "ce"), ("pgd", "ce"), ("apgd-ce", "ce"), ("apgd-dlr", "dlr"), ("pgd-adaptive", None)],
)
def test_each_attack_names_its_loss_and_the_runner_may_switch_it_to_margin(name, loss) -> None:
    # The runner's margin fallback re-runs a cross-entropy attack with loss="margin", also
    # where the registry fixes the loss (apgd-ce): the caller's value wins.
    entry = attack_entry(name)
    assert entry.loss(entry.params) == loss
    if loss != "ce":
        return
    model = _model()
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    y = torch.arange(6) % 5
    params = {**entry.params, **({"steps": 3} if "steps" in entry.params else {}), "loss": "margin"}
    assert entry.loss(params) == "margin"
    x_adv = entry.run(model, x, y, 0.1, norm="linf", generator=torch.Generator(), **params)
    assert x_adv.shape == x.shape and float((x_adv - x).abs().max()) <= 0.1 + 1e-6
