"""Gradient modes: how a compiled module's backward pass runs through its K layers.

- ``unroll``: backpropagate through every layer (the straight-line `_run`; memory grows with K).
- ``checkpoint``: activation checkpointing in segments of s = sqrt(K S / L) layers (S: bytes of the
  values crossing a layer boundary, L: bytes one layer saves for backward, measured once): only the
  values passed between segments are kept, and each segment is recomputed once during backward.
  Same gradients; memory O(K/s states + one segment), within O(one layer + K states).
- ``truncated:T``: the first K - T layers run without a graph; backpropagate through the last T.
- ``implicit``: iterate the shared map T to its fixed point without a graph, apply it once with one,
  and solve the adjoint equation (I - J_T(z*)') u = g by restarted GMRES in backward (implicit
  differentiation; memory independent of K; far fewer vector-Jacobian products than iterating
  u = g + J'u when the map contracts slowly). K bounds the forward iterations and the products.

`apply(module, grad)` replaces the module's `_run` with a `GradRunner` that uses the layer-by-layer
methods written by `torch_layers`. Without a graph to build (`torch.no_grad`) the plain `_run` runs.
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch.utils.checkpoint import checkpoint

from .krylov import gmres

__all__ = ["parse_grad", "apply", "GradRunner", "GRAD_MODES"]

GRAD_MODES = ("unroll", "checkpoint", "truncated:T", "implicit")


def parse_grad(text: str) -> tuple[str, int | None]:
    """('unroll' | 'checkpoint' | 'truncated' | 'implicit', T or None); ValueError otherwise."""
    text = str(text).strip()
    if text in ("unroll", "checkpoint", "implicit"):
        return text, None
    if text.startswith("truncated:"):
        try:
            T = int(text.split(":", 1)[1])
        except ValueError:
            T = 0
        if T >= 1:
            return "truncated", T
        raise ValueError(f"grad {text!r}: T in truncated:T must be a positive integer (layers "
                         "to backpropagate through), e.g. truncated:8")
    raise ValueError(f"grad must be one of {', '.join(GRAD_MODES)}; got {text!r}")


class _Adjoint(torch.autograd.Function):
    """Identity forward; backward returns the adjoint fixed point `solve(g)` for each state."""

    @staticmethod
    def forward(ctx, solve, *zs):  # noqa: D401 - autograd signature
        ctx.solve = solve
        return tuple(z.clone() for z in zs)

    @staticmethod
    def backward(ctx, *gs):
        return (None, *ctx.solve(gs))


def _residual(new: list[torch.Tensor], old: list[torch.Tensor]) -> float:
    """Largest relative change over the tensors (per tensor, Frobenius norm)."""
    out = 0.0
    for a, b in zip(new, old):
        scale = float(a.detach().abs().pow(2).sum().sqrt())
        out = max(out, float((a.detach() - b.detach()).abs().pow(2).sum().sqrt()) / max(scale, 1e-30))
    return out


class GradRunner:
    """Stands in for a module's `_run(*inputs, upto, return_layers, aux)` under a gradient mode."""

    def __init__(self, module: torch.nn.Module, mode: str, T: int | None = None,
                 tol: float | None = None):
        self.plain = module._run
        self.module = module
        self.mode, self.T, self.tol = mode, T, tol
        self.info: dict[str, Any] = {}
        self._seg_cache: dict[tuple, int] = {}  # checkpoint segment length per (K, input shapes)
        self.unconverged: dict[str, int] = {}  # implicit: iterations that stopped short, by kind

    def _short(self, kind: str, message: str, stacklevel: int) -> None:
        """Warn the first time an implicit iteration (forward or adjoint) stops short of its
        tolerance; later ones are only counted in `unconverged` (one warning per step would
        flood a training log)."""
        self.unconverged[kind] = self.unconverged.get(kind, 0) + 1
        if self.unconverged[kind] == 1:
            warnings.warn(message + " Later occurrences are counted in the module's "
                          "_run.unconverged, not repeated.", stacklevel=stacklevel + 1)

    def __call__(self, *args, **kwargs):
        m = self.module
        n = len(m.input_names)
        inputs, rest = args[:n], list(args[n:])
        names = ("upto", "return_layers", "aux")
        opts = {"upto": None, "return_layers": False, "aux": True}
        opts.update(zip(names, rest))
        opts.update(kwargs)
        if not torch.is_grad_enabled() or self.mode == "unroll":
            return self.plain(*inputs, opts["upto"], opts["return_layers"], opts["aux"])
        if self.mode == "implicit":
            if opts["upto"] is not None:
                raise ValueError("grad='implicit' trains the fixed point of the whole iteration; "
                                 "layer-wise training (upto) needs grad='unroll' or 'checkpoint'")
            return self._implicit(inputs, opts["aux"], opts["return_layers"])
        return self._layered(inputs, opts["upto"], opts["return_layers"], opts["aux"])

    def _start(self, inputs, aux):
        m = self.module
        env: dict[str, Any] = dict(m._state_numbers)
        env.update(m._prologue(aux, *inputs))
        ref = inputs[0] if inputs else None
        where = (ref.real.dtype, ref.device) if ref is not None else (torch.get_default_dtype(), None)
        return env, where

    def _layer(self, k: int, env: dict, where, aux, mode: str = "unroll") -> None:
        m = self.module
        args, outs = m._layer_io[k]
        fn = getattr(m, f"_layer_{k}")
        vals = [env[a] for a in args]
        if mode == "checkpoint":
            res = checkpoint(fn, aux, *where, *vals, use_reentrant=False)
        elif mode == "nograd":
            with torch.no_grad():
                res = fn(aux, *where, *vals)
        else:
            res = fn(aux, *where, *vals)
        env.update(zip(outs, res))

    def _layered(self, inputs, upto, return_layers, aux):
        m = self.module
        env, where = self._start(inputs, aux)
        stop = len(m._layer_io) if upto is None else int(upto)  # K, or K + 1 with `finally`
        first = m.state_names.index(m.output_names[0])
        if self.mode == "checkpoint":
            return self._segments(env, where, stop, first, return_layers, aux)
        layers = []
        for k in range(stop):
            mode = self.mode
            if mode == "truncated":
                mode = "nograd" if k < stop - self.T else "unroll"
            self._layer(k, env, where, aux, mode)
            if return_layers:
                layers.append(env[m._state_nodes[k + 1][first]])
        return tuple(env[n] for n in m._state_nodes[stop]), layers

    def _segment_length(self, env, where, stop, aux, need) -> int:
        """Layers per checkpoint segment: sqrt(K * S / L) minimises K/s kept boundary values of S
        bytes plus one segment of s layers' saved activations of L bytes (measured once per input
        shape by running layer 0 under saved-tensor hooks), so light states with heavy layers
        (ISTA-Net+ blocks) get short segments and LISTA about sqrt(K)."""
        m = self.module
        key = (stop, tuple(tuple(v.shape) for v in env.values() if torch.is_tensor(v)))
        cache = self._seg_cache
        if key not in cache:
            owned = {t.data_ptr() for t in list(m.parameters()) + list(m.buffers())}
            saved = 0

            def pack(t):
                nonlocal saved
                if t.data_ptr() not in owned:
                    saved += t.numel() * t.element_size()
                return t
            args, outs = m._layer_io[0]
            with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                res = getattr(m, "_layer_0")(aux, *where, *[env[a] for a in args])
            state = sum(v.numel() * v.element_size() for o, v in zip(outs, res)
                        if o in need[1] and torch.is_tensor(v))
            cache[key] = max(1, min(stop, round(math.sqrt(stop * state / saved)) if saved else stop))
        return cache[key]

    def _segments(self, env, where, stop, first, return_layers, aux):
        """Checkpoint segments (see `_segment_length`): only the values that cross a segment
        boundary are kept, and each segment is recomputed once in backward."""
        m = self.module
        io = m._layer_io
        need = [set() for _ in range(stop + 1)]  # values read by layers k.. or returned
        need[stop] = set(m._state_nodes[stop])
        for k in range(stop - 1, -1, -1):
            need[k] = need[k + 1] | set(io[k][0])
        seg = self._segment_length(env, where, stop, aux, need)
        layers = []
        for start in range(0, stop, seg):
            end = min(start + seg, stop)
            made: list[str] = []
            for k in range(start, end):
                made.extend(io[k][1])
            ins = [a for a in dict.fromkeys(a for k in range(start, end) for a in io[k][0])
                   if a not in made]
            outs = [o for o in dict.fromkeys(made) if o in need[end]]
            shown = [m._state_nodes[k + 1][first] for k in range(start, end)] if return_layers else []

            def run(aux, *vals, start=start, end=end, ins=ins, outs=outs, shown=shown):
                local = dict(zip(ins, vals))
                for k in range(start, end):
                    args, res_names = io[k]
                    res = getattr(m, f"_layer_{k}")(aux, *where, *[local[a] if a in local else env[a]
                                                                   for a in args])
                    local.update(zip(res_names, res))
                return tuple(local[o] for o in outs) + tuple(local.get(n, env.get(n)) for n in shown)
            res = checkpoint(run, aux, *[env[a] for a in ins], use_reentrant=False)
            env.update(zip(outs, res[:len(outs)]))
            layers.extend(res[len(outs):])
            for key in [key for key in env if key not in need[end]]:
                del env[key]
        return tuple(env[n] for n in m._state_nodes[stop]), layers

    def _implicit(self, inputs, aux, return_layers):
        m = self.module
        K = len(m._layer_io)
        env, where = self._start(inputs, aux)
        args, outs = m._layer_io[K - 1]
        fn = getattr(m, f"_layer_{K - 1}")
        s_in, s_out = m._state_nodes[K - 1], m._state_nodes[K]
        var = [i for i, nd in enumerate(s_in) if nd not in m._state_numbers]
        pos = {s_in[i]: i for i in var}
        # Layers before the map's loop-invariant inputs exist run with a graph (a few at most).
        warm = 0
        while warm < K - 1 and (warm == 0 or any(a not in env and a not in pos for a in args)):
            self._layer(warm, env, where, aux)
            warm += 1
        z = [env[m._state_nodes[warm][i]] for i in range(len(s_in))]

        def step(z: list, env: dict) -> list:
            vals = [z[pos[a]] if a in pos else env[a] for a in args]
            res = dict(zip(outs, fn(aux, *where, *vals)))
            return [res[nd] if nd in res else z[pos[nd]] if nd in pos else
                    m._state_numbers.get(nd, env.get(nd)) for nd in s_out]

        tol = self.tol if self.tol is not None else (1e-10 if where[0] == torch.float64 else 1e-5)
        flt = [i for i in var if torch.is_tensor(z[i]) and (z[i].is_floating_point() or z[i].is_complex())]
        iters, res = warm, float("inf")
        with torch.no_grad():
            z = [v.detach() if torch.is_tensor(v) else v for v in z]
            while iters < K - 1:
                new = step(z, env)
                res = _residual([new[i] for i in flt], [z[i] for i in flt])
                z, iters = new, iters + 1
                if res <= tol:
                    break
        if res > tol:
            self._short("forward", f"grad='implicit': the forward iteration did not converge in "
                        f"K={K} iterations (relative change {res:.2e} > {tol:g}); the gradient is "
                        "approximate. Raise K or check the map contracts.", 4)
        z_star = [v.detach() if torch.is_tensor(v) else v for v in z]
        out = step(z_star, env)  # one application with a graph: dT/dparams at the fixed point
        detached = {k: v.detach() if torch.is_tensor(v) else v for k, v in env.items()}
        info = self.info = {"forward_iterations": iters + 1, "forward_residual": res}

        def solve(gs):
            z0 = list(z_star)
            for i in flt:
                z0[i] = z_star[i].detach().requires_grad_()
            with torch.enable_grad():
                f0 = step(z0, detached)
            f_t, z_t = [f0[i] for i in flt], [z0[i] for i in flt]
            g = list(gs)  # one per floating state, in the order of `flt`

            def matvec(u):  # (I - J') u, one vector-Jacobian product
                vjp = torch.autograd.grad(f_t, z_t, grad_outputs=u, retain_graph=True, allow_unused=True)
                return [a - (v if v is not None else 0) for a, v in zip(u, vjp)]
            u, j, r = gmres(matvec, g, g, tol, max_products=K)
            info.update(adjoint_iterations=j, adjoint_residual=r)
            if r > tol:
                self._short("adjoint", f"grad='implicit': the adjoint iteration did not converge "
                            f"in {K} products (relative residual {r:.2e}); the gradient is "
                            "approximate.", 2)
            return u

        wrapped = _Adjoint.apply(solve, *[out[i] for i in flt])
        for i, v in zip(flt, wrapped):
            out[i] = v
        first = m.state_names.index(m.output_names[0])
        return tuple(out), ([out[first]] if return_layers else [])


def apply(module: torch.nn.Module, grad: str, tol: float | None = None) -> torch.nn.Module:
    """Run `module` (built with the layer-by-layer methods) under gradient mode `grad`, in place."""
    mode, T = parse_grad(grad)
    module.grad_mode = grad
    if mode == "unroll":
        return module
    if not hasattr(module, "_layer_io"):
        raise ValueError("this module was built without its layer-by-layer form; compile it with "
                         "unroll.compile(..., grad=...)")
    layers = len(module._layer_io)
    if T is not None and T > layers:
        raise ValueError(f"grad={grad!r}: T = {T} is more than the {layers} layers")
    module._run = GradRunner(module, mode, T, tol)
    return module
