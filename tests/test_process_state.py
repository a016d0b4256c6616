"""Library calls leave process-wide state as they found it (the thread count, TF32, the matplotlib
backend); only the command line sets such switches, and it restores them too."""
import matplotlib
import pytest
import torch

from unroll.train.budget import fastest_threads, parse_duration, torch_threads
from unroll.train.trainer import _tf32


def test_tf32_is_allowed_only_inside_the_run():
    flags = (torch.backends.cuda.matmul, torch.backends.cudnn)
    before = [f.allow_tf32 for f in flags]
    with _tf32(True):
        assert all(f.allow_tf32 for f in flags)
    assert [f.allow_tf32 for f in flags] == before
    with pytest.raises(RuntimeError), _tf32(True):
        raise RuntimeError("a failed run restores the flags too")
    assert [f.allow_tf32 for f in flags] == before


def test_thread_count_is_restored():
    before = torch.get_num_threads()
    assert fastest_threads(size=(20, 30), batch=4, reps=1) in (1, before)
    assert torch.get_num_threads() == before
    with torch_threads(1) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_plots_do_not_switch_the_matplotlib_backend(tmp_path):
    from unroll.demo import plot_curves

    before = matplotlib.get_backend()
    path = plot_curves({"LISTA": [-1.0, -2.0], "ISTA": [-0.5, -1.0]}, tmp_path / "c.png", "t")
    assert path.is_file() and path.stat().st_size > 0
    assert matplotlib.get_backend() == before


@pytest.mark.parametrize("text, seconds", [("90", 90.0), ("600s", 600.0), ("10m", 600.0),
                                           ("2 min", 120.0), ("1.5h", 5400.0), (45, 45.0), (None, None)])
def test_durations_read_as_seconds(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0", "-5", "10 weeks", "inf", "nan", "1e3", 0, float("inf")])
def test_bad_durations_are_value_errors(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)
