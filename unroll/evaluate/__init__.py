"""Whole-image evaluation of block-CS models (ISTA-Net's protocol on Set11) and writing the results."""
from .blockcs import BlockCSEvaluation, ImageScore, evaluate_images, reconstruct_blocks, reconstruct_image
from .figures import side_by_side, write_png, write_reconstructions

__all__ = [
    "BlockCSEvaluation",
    "ImageScore",
    "evaluate_images",
    "reconstruct_blocks",
    "reconstruct_image",
    "side_by_side",
    "write_png",
    "write_reconstructions",
]
