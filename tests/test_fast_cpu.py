"""The fast path declines training steps on a CPU (eager there is at least as fast) with one note."""
import warnings

import numpy as np
import torch

import unroll
from unroll.backends.fast import CPU_TRAINING_NOTE


def test_fast_training_step_on_cpu_runs_eager_with_one_note():
    A = np.random.default_rng(0).standard_normal((6, 10))
    fast = unroll.compile("zoo:lista", K=3, A=A, fast=True)
    eager = unroll.compile("zoo:lista", K=3, A=A)
    batch = {"y": torch.randn(4, 6), "x_star": torch.randn(4, 10)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            fast.loss(batch).backward()
    notes = [w for w in caught if CPU_TRAINING_NOTE in str(w.message)]
    assert len(notes) == 1 and fast._run.compiled is None  # torch.compile never ran
    eager.loss(batch).backward()
    torch.testing.assert_close(fast.S.grad, 2 * eager.S.grad)
