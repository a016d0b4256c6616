"""Build-time values must be finite: operators given with NaN/Inf are refused, and a const or an
initial value that the operators make infinite (1/L with L = norm2(A)^2 = 0) is an error at its
declaration instead of a network that outputs NaN."""
from __future__ import annotations

from typing import Sequence

import torch

from ..compiler.unfold import Unfolded
from ..errors import SpecError

__all__ = ["check_operators", "check_built"]


def _finite(t: torch.Tensor) -> bool:
    return not (t.is_floating_point() or t.is_complex()) or bool(torch.isfinite(t).all())


def check_operators(u: Unfolded, args: Sequence[torch.Tensor]) -> None:
    """Every operator array is finite and not all zero."""
    p = u.program
    for name, a in zip(p.operators, args):
        if not isinstance(a, torch.Tensor):  # a matrix-free operator: callables, nothing to scan
            continue
        if not _finite(a):
            raise SpecError(f"operator {name} holds {int((~torch.isfinite(a)).sum())} NaN/Inf entries",
                            p.operators[name].span, "pass a finite array", p.source)
        if a.is_complex() and p.operators[name].dtype != "complex":
            raise SpecError(f"operator {name} was given a complex array but is declared real",
                            p.operators[name].span, f"declare `operator {name} : [...] complex`, or pass "
                            "its real part explicitly", p.source)
        if a.numel() and not bool(a.abs().sum() > 0):
            raise SpecError(f"operator {name} is all zeros", p.operators[name].span,
                            "an all-zero operator makes every step size 1/L infinite", p.source)


def check_built(u: Unfolded, module: torch.nn.Module) -> None:
    """Every const and learnable initial value of the built module is finite."""
    from .torch_codegen import attr_name
    p = u.program
    for name in u.consts:
        t = getattr(module, attr_name(name), None)
        if isinstance(t, torch.Tensor) and not _finite(t):
            raise SpecError(f"const {name} is not finite for the given operators (it holds NaN/Inf, "
                            "e.g. from a division by a zero norm)", p.spans.get(name),
                            "check the operators, or guard the division", p.source)
    holders = [module, *getattr(module, "layers", [])]
    for name, lrn in p.learnables.items():
        for h in holders:
            t = getattr(h, attr_name(name), None)
            if isinstance(t, torch.Tensor) and not _finite(t):
                raise SpecError(f"learn {name}: its initial value is not finite for the given operators "
                                "(NaN/Inf, e.g. from a division by a zero norm)", lrn.init.span or lrn.span,
                                "check the operators and the consts the value uses", p.source)
