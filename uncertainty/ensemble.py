"""Deep ensembles: average the members' predictive distributions (Lakshminarayanan et al. 2017)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from enum import Enum

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, vmap

from ._modes import eval_mode
from ._validation import looks_like_probabilities, warn_probabilities
from .predictive import SampledClassifier


class Vectorize(str, Enum):
    """When DeepEnsemble runs same-architecture members through one vmap call."""

    #: vmap for members on an accelerator (CUDA, ...), a loop for members on the CPU. On CPU,
    #: vmap turns convolutions into grouped convolutions and BatchNorm into elementwise ops:
    #: measured 1.6-2x slower than the loop for 5 small CNNs at batch 256 on 2 cores (while
    #: 5 MLPs were 1.5x faster), see benchmarks/test_uncertainty_speed.py.
    AUTO = "auto"
    #: always vmap same-architecture members.
    ALWAYS = "always"
    #: always loop (members whose forward vmap cannot trace: `.item()`, data-dependent Python
    #: control flow).
    NEVER = "never"


def _check_vectorize(vectorize: Vectorize | str | bool) -> Vectorize:
    if isinstance(vectorize, bool):
        return Vectorize.ALWAYS if vectorize else Vectorize.NEVER
    try:
        return Vectorize(vectorize)
    except ValueError:
        choices = ", ".join(repr(v.value) for v in Vectorize)
        raise ValueError(
            f"vectorize must be one of {choices} (or a bool); got {vectorize!r}"
        ) from None


def _structure_key(member: nn.Module) -> tuple:
    """What must match for two members to share one vectorised call.

    The class and `repr` catch layer hyper-parameters (stride, padding, p, ...); the names,
    shapes, dtypes and devices of parameters and buffers catch everything `torch.stack` needs.
    A forward that reads plain Python attributes missing from `repr` is the one case this cannot
    see; pass `vectorize="never"` for such members.
    """
    tensors = [*member.named_parameters(), *member.named_buffers()]
    return (
        type(member),
        repr(member),
        tuple((name, tuple(t.shape), t.dtype, t.device) for name, t in tensors),
    )


class DeepEnsemble(SampledClassifier):
    """An ensemble of classifiers that is itself a classifier.

    `forward(x)` returns log(mean_m softmax(member_m(x))), a (B, K) valid logit vector, so attacks
    and metrics take the ensemble like any model. Members always run in eval mode (BatchNorm uses
    its running statistics, dropout is off); each member's own `training` flags are restored
    afterwards. Members that share an architecture run in one vectorised call (`torch.func.vmap`
    over their stacked parameters) when `vectorize` says so; the others run one by one. Both
    paths give the same numbers up to float rounding. Gradients flow to the input (and to the
    members' parameters, should anyone train through the ensemble). A member whose outputs
    look like probabilities (it ends in softmax) gets a UserWarning: members must return logits.

    Args:
        members: the classifiers, each mapping (B, ...) inputs to (B, K) logits.
        vectorize: "auto" (default: vmap on accelerators, loop on CPU, where vmap was measured
            slower for CNNs), "always" or "never"; True / False mean "always" / "never".

    Example:
        >>> ens = DeepEnsemble([net1, net2, net3])
        >>> logits = ens(x)             # (B, K) log mean probabilities
        >>> probs = ens.sample_probs(x)  # (3, B, K)
    """

    def __init__(
        self, members: Sequence[nn.Module], *, vectorize: Vectorize | str | bool = Vectorize.AUTO
    ) -> None:
        super().__init__()
        if isinstance(members, nn.Module) or not isinstance(members, Sequence):
            raise TypeError(
                "members must be a sequence (list, tuple, nn.ModuleList) of nn.Module; "
                f"got {type(members).__name__}"
            )
        if len(members) == 0:
            raise ValueError("members must hold at least one nn.Module; got an empty sequence")
        for index, member in enumerate(members):
            if not isinstance(member, nn.Module):
                raise TypeError(
                    f"members[{index}] must be an nn.Module; got {type(member).__name__}"
                )
        self.members = nn.ModuleList(members)
        self.vectorize = _check_vectorize(vectorize)

    @property
    def stochastic(self) -> bool | None:  # type: ignore[override]
        """Whether the ensemble's output can change between calls (see
        `SampledClassifier.stochastic`): True when a member declares ``stochastic = True``
        (an MCDropout member stays random in eval mode), False when every member declares
        False, else None (unknown: an attack then runs the ensemble twice to find out;
        members run in eval mode, where a plain network is deterministic)."""
        flags = [getattr(member, "stochastic", None) for member in self.members]
        if any(flag is True for flag in flags):
            return True
        if all(flag is False for flag in flags):
            return False
        return None

    def _groups(self) -> list[list[int]]:
        """Member indices grouped by architecture, in first-seen order (recomputed per call, so
        moving a member to another device or dtype regroups it)."""
        if self.vectorize is Vectorize.NEVER:
            return [[i] for i in range(len(self.members))]
        groups: dict[tuple, list[int]] = {}
        for index, member in enumerate(self.members):
            groups.setdefault(_structure_key(member), []).append(index)
        if self.vectorize is Vectorize.ALWAYS:
            return list(groups.values())
        # AUTO: CPU groups go back to one member each (see Vectorize.AUTO for why).
        split: list[list[int]] = []
        for group in groups.values():
            if self._on_cpu(self.members[group[0]]):
                split.extend([index] for index in group)
            else:
                split.append(group)
        return split

    @staticmethod
    def _on_cpu(member: nn.Module) -> bool:
        tensor = next(itertools.chain(member.parameters(), member.buffers()), None)
        return tensor is None or tensor.device.type == "cpu"

    def _vmap_logits(self, members: list[nn.Module], x: Tensor) -> Tensor:
        # torch.stack (not stack_module_state, which detaches) keeps the members' parameters in
        # the graph and reads their current values, so later training or loading is seen.
        member_params = [dict(m.named_parameters()) for m in members]
        member_buffers = [dict(m.named_buffers()) for m in members]
        params = {name: torch.stack([p[name] for p in member_params]) for name in member_params[0]}
        buffers = {
            name: torch.stack([b[name] for b in member_buffers]) for name in member_buffers[0]
        }
        template = members[0]

        def call(p: dict[str, Tensor], b: dict[str, Tensor], inputs: Tensor) -> Tensor:
            return functional_call(template, (p, b), (inputs,))

        return vmap(call, in_dims=(0, 0, None))(params, buffers, x)

    def member_logits(self, x: Tensor) -> Tensor:
        """Every member's logits, members in eval mode.

        Args:
            x: (B, ...) inputs.

        Returns:
            (M, B, K) logits, in the order of `members`.
        """
        by_index: dict[int, object] = {}
        with eval_mode(self):
            for group in self._groups():
                if len(group) == 1:
                    by_index[group[0]] = self.members[group[0]](x)
                    continue
                logits = self._vmap_logits([self.members[i] for i in group], x)
                by_index.update(zip(group, logits.unbind(0), strict=True))
        outputs: list[Tensor] = []
        for index in range(len(self.members)):
            logits = by_index[index]
            if not isinstance(logits, Tensor) or logits.ndim != 2:
                shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
                raise ValueError(f"members[{index}](x) must return (B, K) logits; got {shape}")
            if outputs and logits.shape != outputs[0].shape:
                raise ValueError(
                    f"members[{index}](x) returned shape {tuple(logits.shape)} but members[0](x) "
                    f"returned {tuple(outputs[0].shape)}: members must agree on B and K"
                )
            outputs.append(logits)
        suspects = [str(i) for i, logits in enumerate(outputs) if looks_like_probabilities(logits)]
        if suspects:
            # One warning naming every such member, not one per member.
            warn_probabilities(f"members[{', '.join(suspects)}](x)")
        return torch.stack(outputs)

    def sample_log_probs(self, x: Tensor) -> Tensor:
        """Each member's predictive log-probabilities.

        Args:
            x: (B, ...) inputs.

        Returns:
            (M, B, K) log-probabilities.
        """
        return F.log_softmax(self.member_logits(x), dim=-1)
