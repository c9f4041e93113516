"""callback=: what a lab sees per step (StepInfo), and that watching never changes the result."""

from __future__ import annotations

from itertools import pairwise

import pytest
import torch

from attacks import StepInfo, apgd, fgsm, pgd
from attacks.losses import cross_entropy
from tests.attacks.models import Recorder, staircase


class Trace:
    """A callback that keeps every StepInfo, as a lab would to plot loss trajectories."""

    def __init__(self) -> None:
        self.infos: list[StepInfo] = []

    def __call__(self, info: StepInfo) -> None:
        self.infos.append(info)

    def first_fooling_step(self, batch: int) -> list[int | None]:
        """Per row, the first step whose iterate fools the model (None: never)."""
        first: list[int | None] = [None] * batch
        for info in self.infos:
            for row, fooled in zip(info.active.tolist(), info.fooled.tolist(), strict=True):
                if fooled and first[row] is None and info.step > 0:
                    first[row] = info.step
        return first


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_trace_gives_loss_trajectories_and_first_fooling_steps(norm: str) -> None:
    # The staircase's every iterate is known: group j (4 rows each) first fools at step j + 1
    # for j < 4; groups 4 and 5 never do. Each step adds 0.2 to the margin sum(x) - 2.
    model, x, y, eps, _ = staircase(norm)
    trace = Trace()
    pgd(model, x, y, eps, norm=norm, steps=10, random_start=False, callback=trace)
    groups = torch.arange(6).repeat_interleave(4)
    expected = [int(g) + 1 if g < 4 else None for g in groups]
    assert trace.first_fooling_step(len(x)) == expected
    # Early stop (the default here): a row is reported up to its first fooling step.
    steps_seen = [info.step for info in trace.infos]
    assert steps_seen == list(range(11))
    assert [len(info.active) for info in trace.infos[:6]] == [24, 24, 20, 16, 12, 8]
    # The loss is the attack's CE at the reported iterate, recomputed from the margin.
    for info in trace.infos:
        assert info.loss.shape == info.active.shape == info.fooled.shape
        assert info.active.dtype == torch.int64 and info.fooled.dtype == torch.bool
        assert info.restart == 0
    start = trace.infos[0]
    with torch.no_grad():
        torch.testing.assert_close(start.loss, cross_entropy(model(x), y))
    # Along a trajectory the loss rises while the margin grows (until the ball's edge).
    row = 20  # group 5: never fooled, climbs for 4 steps, then sits at the edge
    trajectory = [float(i.loss[i.active == row]) for i in trace.infos if row in i.active]
    assert all(b > a for a, b in pairwise(trajectory[:5]))


@pytest.mark.parametrize(
    ("attack", "kwargs"),
    [
        (pgd, {"steps": 5, "restarts": 2}),
        (pgd, {"steps": 4, "early_stop": False, "select": "first_fooling"}),
        (pgd, {"steps": 4, "select": "max_loss", "targeted": True}),
        (apgd, {"steps": 6}),
        (pgd, {"steps": 3, "eot_samples": 2}),
    ],
)
def test_callback_never_changes_the_result(digits_model, digits_split, attack, kwargs) -> None:
    x, y = digits_split["x_test"][:48], digits_split["y_test"][:48]
    if kwargs.get("targeted"):
        y = (y + 1) % 10

    def run(callback) -> tuple[torch.Tensor, list[int]]:
        recorder = Recorder(digits_model)
        x_adv = attack(recorder, x, y, 0.12, generator=0, callback=callback, **kwargs)
        return x_adv, [len(b) for b in recorder.seen]

    trace = Trace()
    watched, watched_calls = run(trace)
    plain, plain_calls = run(None)
    assert torch.equal(watched, plain)
    assert watched_calls == plain_calls  # not even an extra forward pass
    assert trace.infos and {i.restart for i in trace.infos} <= set(range(kwargs.get("restarts", 1)))


def test_callback_cannot_reach_the_loop_through_its_tensors(digits_model, digits_split) -> None:
    x, y = digits_split["x_test"][:32], digits_split["y_test"][:32]

    def vandal(info: StepInfo) -> None:
        info.loss.fill_(float("nan"))
        info.active.zero_()
        info.fooled.fill_(True)

    expected = apgd(digits_model, x, y, 0.1, steps=5, generator=0)
    assert torch.equal(
        apgd(digits_model, x, y, 0.1, steps=5, generator=0, callback=vandal), expected
    )
    with pytest.raises(Exception, match=r"frozen|cannot assign"):
        StepInfo(0, 0, torch.zeros(1), torch.zeros(1), torch.zeros(1)).step = 1  # type: ignore[misc]


def test_fgsm_reports_the_start_and_its_one_step(digits_model, digits_split) -> None:
    x, y = digits_split["x_test"][:40], digits_split["y_test"][:40]
    trace = Trace()
    x_adv = fgsm(digits_model, x, y, 0.15, callback=trace)
    assert torch.equal(x_adv, fgsm(digits_model, x, y, 0.15))
    assert [i.step for i in trace.infos] == [0, 1]
    with torch.no_grad():
        clean, adv = digits_model(x), digits_model(x_adv)
    torch.testing.assert_close(trace.infos[0].loss, cross_entropy(clean, y))
    torch.testing.assert_close(trace.infos[1].loss, cross_entropy(adv, y))
    assert torch.equal(trace.infos[1].fooled, adv.argmax(dim=1) != y)
    assert torch.equal(trace.infos[1].active, torch.arange(40))


def test_targeted_loss_is_reported_as_the_loss_towards_the_target(digits_model, digits_split):
    x = digits_split["x_test"][:16]
    target = (digits_split["y_test"][:16] + 3) % 10
    trace = Trace()
    pgd(digits_model, x, target, 0.3, steps=5, targeted=True, generator=0, callback=trace)
    with torch.no_grad():
        # Step 0 is the random start; its loss is CE towards the target, not minus it.
        assert bool((trace.infos[0].loss > 0).all())
    fooled_rows = torch.cat([i.active[i.fooled] for i in trace.infos if i.step > 0])
    assert fooled_rows.numel() > 0  # fooled means: predicts the target
