"""unroll: compile iterative algorithms written as mathematics into trainable PyTorch networks.

    >>> import unroll
    >>> model = unroll.compile("zoo:lista", K=16, A=A)      # doctest: +SKIP
    >>> x_hat = model(y=y)                                  # doctest: +SKIP
"""
__version__ = "0.1.0"

from .api import check, compile, load_spec, parse, unfold  # noqa: E402
from .errors import SpecError  # noqa: E402
from . import zoo  # noqa: E402

__all__ = ["parse", "check", "unfold", "compile", "load_spec", "SpecError", "zoo", "__version__"]
