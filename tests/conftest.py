"""Test configuration: point data loaders at the shared reference data next to the repo, and run
torch on one thread (the tests use small tensors, where a second thread only adds contention; on a
busy 2-core machine two threads made tiny ops hundreds of times slower)."""
import os
from pathlib import Path

os.environ.setdefault("UNROLL_DATA", str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
os.environ.setdefault("OMP_NUM_THREADS", "1")  # subprocesses started by tests inherit it

import torch  # noqa: E402

torch.set_num_threads(1)
