"""Datasets and tasks: where data lives and how training batches and fixed test sets are made."""
from .location import ENV_VAR, resolve_data_dir
from .binding import TaskBindingError, bind_single_roles, spec_names
from .blockcs import BlockCSTask, load_phi, load_test_images
from .sparse import (
    SparseCodingTask,
    gaussian_dictionary,
    load_standard_problem,
)

__all__ = [
    "ENV_VAR",
    "resolve_data_dir",
    "SparseCodingTask",
    "BlockCSTask",
    "load_phi",
    "load_test_images",
    "TaskBindingError",
    "bind_single_roles",
    "spec_names",
    "gaussian_dictionary",
    "load_standard_problem",
]
