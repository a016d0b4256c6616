"""Test configuration: point data loaders at the shared reference data next to the repo."""
import os
from pathlib import Path

os.environ.setdefault("UNROLL_DATA", str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
