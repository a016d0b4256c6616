"""Importing the papers' released trained networks: ``unroll import`` and
``unroll.zoo.load_published``. The formats live in a registry (see :mod:`.registry` for how to
add one); importing yields one of our own checkpoints and a ready compiled module."""
from .importer import choose_format, import_checkpoint, load_published, map_weights, sha256_of
from .registry import (Format, FormatMismatch, ImportOptions, Rule, aliases_of, formats,
                       formats_for_spec, get, register)

__all__ = ["Format", "FormatMismatch", "ImportOptions", "Rule", "aliases_of", "choose_format", "formats",
           "formats_for_spec", "get", "import_checkpoint", "load_published", "map_weights", "register",
           "sha256_of"]
