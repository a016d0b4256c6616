"""The fixed part of every generated module: the `UnrolledModule` base class, written verbatim into
each model.py (after HELPERS), so the file still needs only torch.

Everything that is the same for every spec lives here: forward/loss/objective (argument binding,
which output to return), the parameter scopes, `project_`, `parameter_values` and the constraint
forms. A generated subclass sets the class tables listed in the base's docstring and writes only
`__init__` and the straight-line `_run`, `_loss` and `_cost` bodies (see torch_codegen).
"""
from __future__ import annotations

import ast

import torch

from ..compiler.graph import Namespace

__all__ = ["RUNTIME", "BASE", "BASE_WITH_OBJECTIVE", "runtime_names", "attr_name"]

BASE, BASE_WITH_OBJECTIVE = "UnrolledModule", "UnrolledModuleWithObjective"

RUNTIME = '''

def _constrained(v, name):
    """The value a learnable with constraint `name` takes in the network, from its stored value."""
    method, lo, hi, base = _CONSTRAINTS[name]
    if method == "project":
        return _feasible(v, lo, hi)
    return F.softplus(v) if method == "softplus" else torch.sigmoid(v)


def _stored(v, name):
    """What a learnable with constraint `name` stores, from its initial value (checked in its set)."""
    method, lo, hi, base = _CONSTRAINTS[name]
    if method == "project":
        return _check_in(v, lo, hi, base)
    return _inv_softplus(v) if method == "softplus" else _logit(v)


class UnrolledModule(torch.nn.Module):
    """An unrolled network compiled by unroll: the API every generated module shares.

    A subclass sets the tables below and writes `__init__` (buffers, consts, learnables), `_run`
    (the unrolled iteration as straight-line code) and `_loss` (the loss from the final states)."""

    spec_name = ""
    K = 0  # iterations (as compiled)
    input_names = target_names = output_names = operator_names = state_names = ()
    defaulted_operators = ()  # operators the spec computes when none is given (`= expr`)
    _arguments = ()  # forward()'s names of the inputs (input_names, renamed around Python's own)
    _layer_count = 0  # layers: K, plus one for a `finally` line
    _has_layers = False  # whether self.layers holds per-layer learnables or blocks
    _has_loss = False
    _loss_layers = False  # what _loss reads of the earlier layers: False, or 'states'
    _learnables = ()  # (spec name, attribute, per-layer copies (None: shared), constraint)
    _param_nodes = ()  # (graph node, attribute, layer (None: shared), constraint)
    _blocks = ()  # (spec name, attribute, per-layer copies (None: shared))

    def _bind(self, _what, _args, _kw, _options):
        """The inputs in order and the options' values, from arguments given as to a function
        `_what(*inputs, *options)`; errors as Python's for a wrong call."""
        _names = self._arguments + tuple(_options)
        if len(_args) > len(_names):
            raise TypeError(f"{_what}() takes {len(_names)} arguments but {len(_args)} were given")
        _got = dict(zip(_names, _args))
        for _key, _value in _kw.items():
            if _key not in _names:
                raise TypeError(f"{_what}() got an unexpected keyword argument {_key!r}")
            if _key in _got:
                raise TypeError(f"{_what}() got multiple values for argument {_key!r}")
            _got[_key] = _value
        _missing = [n for n in self._arguments if n not in _got]
        if _missing:
            raise TypeError(f"{_what}() missing required argument(s): {', '.join(_missing)}")
        return [_got[n] for n in self._arguments], [_got.get(k, v) for k, v in _options.items()]

    def _check_upto(self, upto):
        if upto is not None and not (hasattr(upto, '__index__') and 1 <= upto <= self._layer_count):
            raise ValueError(f'upto must be a layer from 1 to {self._layer_count}, got {upto!r}')

    def forward(self, *_args, **_kw):
        """forward(*inputs, return_layers=False, upto=None): the first output (and its value after
        every layer when return_layers); inputs by name or in the order of input_names."""
        _inputs, (return_layers, upto) = self._bind(
            "forward", _args, _kw, {"return_layers": False, "upto": None})
        states, layers = self._run(*_inputs, upto, return_layers, False)
        _first = self.state_names.index(self.output_names[0])
        return (states[_first], layers) if return_layers else states[_first]

    def loss(self, batch, upto=None):
        """The spec's training loss on a batch (a dict of inputs and targets)."""
        if not self._has_loss:
            raise NotImplementedError("the spec declares no loss")
        _states, _all = self._run(*[batch[n] for n in self.input_names], upto, self._loss_layers,
                                  batch)  # aux terms read their targets from the batch
        return self._loss(batch, _states, _all, upto)

    def _target(self, _aux, _name):
        """Target `_name` for an aux term: from the batch `loss` passes as `_aux`; None when aux
        terms are skipped (forward)."""
        if not _aux:
            return None
        if _aux is True or _name not in _aux:
            raise ValueError(f"an aux term reads the target {_name!r}: compute it through "
                             f"loss(batch) with {_name!r} in the batch")
        return _aux[_name]

    def layer_parameters(self, k):
        """Parameters owned by the k-th layer alone (k from 1, as `upto`); [] if all are shared."""
        return list(self.layers[k - 1].parameters()) if self._has_layers else []

    def shared_parameters(self):
        """Parameters used by every layer."""
        return [p for n, p in self.named_parameters() if not n.startswith('layers.')]

    def _copies(self, _attr, _copies):
        """The one shared copy of a learnable or block, or its per-layer copies."""
        if _copies is None:
            return [getattr(self, _attr)]
        return [getattr(_layer, _attr) for _layer in self.layers[:_copies]]

    @torch.no_grad()
    def project_(self):
        """Clamp projected learnables (positive, unit) into their sets, in place; returns self."""
        for _name, _attr, _n, _constraint in self._learnables:
            if _constraint is not None and _CONSTRAINTS[_constraint][0] == "project":
                _method, _lo, _hi, _base = _CONSTRAINTS[_constraint]
                for _p in self._copies(_attr, _n):
                    _p.clamp_(_lo, _hi)
        return self

    def parameter_values(self):
        """Every learnable as the network uses it (constraints applied), by graph node; the
        weights of learnable blocks as '<block>.<weight>' ('<block>_<k>.<weight>' per layer)."""
        _values = {}
        for _node, _attr, _layer, _constraint in self._param_nodes:
            _p = getattr(self if _layer is None else self.layers[_layer], _attr)
            _values[_node] = _p if _constraint is None else _constrained(_p, _constraint)
        for _name, _attr, _n in self._blocks:
            for _k, _block in enumerate(self._copies(_attr, _n)):
                _prefix = _name + '.' if _n is None else f'{_name}_{_k}.'
                _values.update((_prefix + n, v) for n, v in _block.named_parameters())
        return _values


class UnrolledModuleWithObjective(UnrolledModule):
    """A module whose spec has cost terms of its first output: their value after every layer."""

    def objective(self, *_args, **_kw):
        """objective(*inputs, upto=None): the cost terms of the first output after every layer,
        [layers, batch]."""
        _inputs, (upto,) = self._bind("objective", _args, _kw, {"upto": None})
        _, _layers = self._run(*_inputs, upto, True, False)
        return torch.stack([self._cost(_x, _k, *_inputs) for _k, _x in enumerate(_layers)])
'''


def runtime_names() -> set[str]:
    """Names the base classes define (methods and class attributes)."""
    names: set[str] = set()
    for node in ast.parse(RUNTIME).body:
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    names.add(item.name)
                elif isinstance(item, ast.Assign):
                    names.update(t.id for tgt in item.targets for t in ast.walk(tgt)
                                 if isinstance(t, ast.Name))
    return names


# Attributes a spec name may not take on the module (besides torch.nn.Module's own): the base
# classes' names, and those set on a module after it is built.
_MODULE_NAMES = runtime_names() | {"layers", "generated", "unfolded", "training", "fast"}


def attr_name(name: str) -> str:
    """The attribute a spec name gets on the module (a suffix avoids nn.Module's own names)."""
    safe = Namespace().safe(name)
    return safe + "_" if hasattr(torch.nn.Module, safe) or safe in _MODULE_NAMES else safe
