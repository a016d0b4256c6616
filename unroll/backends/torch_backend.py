"""Lower an unfolded graph to a live `torch.nn.Module` by running the generated source.

The source comes from `torch_codegen.generate` and is built only from validated identifiers and
number literals, never from spec text; it is registered with `linecache` so tracebacks show it.
"""
from __future__ import annotations

import linecache
from typing import Mapping

import numpy as np
import torch

from ..compiler.constraints import CONSTRAINTS
from ..compiler.unfold import Unfolded
from ..errors import SpecError
from .finite import check_built, check_operators
from .torch_codegen import Generated, generate

__all__ = ["lower", "load_class"]


def load_class(gen: Generated, filename: str) -> type:
    """Execute generated module source (ours, not the user's) and return its class."""
    linecache.cache[filename] = (len(gen.source), None, gen.source.splitlines(True), filename)
    namespace: dict = {"__name__": f"unroll_generated_{gen.class_name}"}
    code = compile(gen.source, filename, "exec")
    exec(code, namespace)  # generated-code: built from validated identifiers only
    return namespace[gen.class_name]


def _as_array(x):
    if torch.is_tensor(x):
        return x.detach()
    return torch.as_tensor(np.ascontiguousarray(x))  # copies views with negative strides


def _constraint_error(u: Unfolded, args: list, msg: str) -> None:
    """Raise a SpecError at the init of the first constrained learnable whose value breaks it."""
    from .numpy_backend import initial_parameters
    values = initial_parameters(u, {o: a.cpu().numpy() if torch.is_tensor(a) else a
                                    for o, a in zip(u.program.operators, args)})
    for node, info in u.params.items():
        if info.constraint and np.any(CONSTRAINTS[info.constraint].outside(values[node])):
            lrn = u.program.learnables[info.name]
            raise SpecError(f"learn {info.name} is {info.constraint} but its initial value is not "
                            f"({msg})", lrn.init.span or lrn.span, None, u.program.source) from None


def _input_caster(dtype: torch.dtype):
    """A forward pre-hook giving the inputs the module's dtype (that of its first real parameter or
    buffer, so `.double()` after compiling still works): numpy arrays become tensors, and float64
    (or integer) data meets a float32 model as float32 instead of a dtype error."""
    def hook(module, args, kwargs):
        real = next((t.dtype for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()),
                    dtype)
        cdtype = torch.complex64 if real == torch.float32 else torch.complex128

        def cast(v):
            if isinstance(v, np.ndarray):
                v = torch.as_tensor(np.ascontiguousarray(v))
            if not torch.is_tensor(v) or v.dtype == torch.bool or real not in (torch.float32, torch.float64):
                return v
            want = cdtype if v.is_complex() else real
            return v if v.dtype == want else v.to(want)
        return tuple(cast(a) for a in args), {k: cast(v) for k, v in kwargs.items()}
    return hook


def lower(u: Unfolded, operators: Mapping[str, object], dtype: torch.dtype = torch.float32,
          device: str | torch.device | None = None, layered: bool = False) -> torch.nn.Module:
    """Build the module for `u` with the given operator arrays (numpy or torch); `layered` adds
    the layer-by-layer methods the gradient modes use."""
    gen = generate(u, layered=layered)
    filename = f"<unroll:{u.program.name}:K={u.K}:{id(gen)}>"
    cls = load_class(gen, filename)
    args = [operators[o] if t.in_shape is not None else _as_array(operators[o])
            for o, t in u.program.operators.items()]
    check_operators(u, args)
    try:
        module = cls(*args, dtype=dtype)
    except ValueError as e:
        _constraint_error(u, args, str(e))
        lrn = next((u.program.learnables[i.name] for i in u.params.values() if i.constraint), None)
        raise SpecError(f"a constrained initial value is out of range in {dtype} ({e}); in float64 it "
                        "is not: the operators' scale makes it underflow or overflow",
                        (lrn.init.span or lrn.span) if lrn else None, "rescale the operators or use "
                        "float64", u.program.source) from None
    check_built(u, module)
    module.register_forward_pre_hook(_input_caster(dtype), with_kwargs=True)
    module.generated = gen
    module.unfolded = u
    if device is not None:
        module = module.to(device)
    return module
