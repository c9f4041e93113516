"""Every registered attack runs through the registry's calling convention."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robustbench_local.bench.attack_registry import ATTACKS, attack_entry, attack_params
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


def test_defaults_come_from_the_attack_signatures() -> None:
    import inspect

    from attacks import apgd, pgd, square

    for name, attack in [("pgd", pgd), ("apgd-ce", apgd), ("apgd-dlr", apgd), ("square", square)]:
        signature = inspect.signature(attack).parameters
        entry = attack_entry(name)
        assert {k: signature[k].default for k in entry.params} == dict(entry.params)
    # pgd-adaptive: its own weight and margin_cap, pgd's options, its own budget.
    adaptive = attack_entry("pgd-adaptive").params
    assert adaptive["steps"] == 20 and adaptive["weight"] == 3.0 and adaptive["step_size"] is None
    # A None default still has a type, for the config's type check.
    assert attack_entry("pgd").types["early_stop"] is bool
    assert attack_entry("pgd").types["select"] is str
    assert attack_entry("pgd").types["step_size"] is float


@pytest.mark.parametrize(
    ("configured", "stochastic", "expected"),
    [
        ({}, False, (None, "first_fooling")),
        ({}, True, (None, "max_loss")),
        ({"early_stop": False}, True, (False, "max_loss")),
        ({"early_stop": True}, True, (True, None)),
        ({"select": "max_loss"}, False, (None, "max_loss")),
        ({"early_stop": False}, False, (False, "first_fooling")),
    ],
)
def test_attack_params_choose_the_selection_by_the_model(configured, stochastic, expected) -> None:
    params = attack_params(attack_entry("pgd"), configured, stochastic=stochastic)
    assert (params["early_stop"], params["select"]) == expected
    assert "select" not in attack_params(attack_entry("fgsm"), {}, stochastic=True)


def test_every_attack_takes_norm_and_generator() -> None:
    # One calling shape: the registry passes both to every attack, no per-attack flags.
    import inspect

    from attacks import apgd, fgsm, pgd, square

    for attack in (apgd, fgsm, pgd, square):
        parameters = inspect.signature(attack).parameters
        for name in ("norm", "generator", "bounds"):
            assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY, (attack, name)
