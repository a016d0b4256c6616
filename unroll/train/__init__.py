"""Training: the generic loop, checkpoints and reconstruction metrics."""
from .checkpoint import BEST, LAST, capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from .metrics import nmse_db, psnr, ssim
from .trainer import (
    Stage,
    TrainConfig,
    TrainingDiverged,
    TrainResult,
    evaluate_layers,
    load_model_state,
    plan_stages,
    train,
)

__all__ = [
    "BEST",
    "LAST",
    "capture_rng_state",
    "load_checkpoint",
    "restore_rng_state",
    "save_checkpoint",
    "nmse_db",
    "psnr",
    "ssim",
    "Stage",
    "TrainConfig",
    "TrainingDiverged",
    "TrainResult",
    "evaluate_layers",
    "load_model_state",
    "plan_stages",
    "train",
]
