"""unroll: compile iterative algorithms written as mathematics into trainable PyTorch networks.

    >>> import unroll
    >>> model = unroll.compile("zoo:lista", K=16, A=A)      # doctest: +SKIP
    >>> x_hat = model(y=y)                                  # doctest: +SKIP
"""
from ._version import __version__
from .api import check, compile, generate, load_spec, parse, unfold
from .errors import SpecError
from . import zoo

__all__ = ["parse", "check", "unfold", "generate", "compile", "load_spec", "SpecError", "zoo", "__version__"]
