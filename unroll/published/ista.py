"""ISTA-Net, ISTA-Net+ and CS-MRI ISTA-Net+ (jianzhangcs/ISTA-Net-PyTorch) state dicts: the
authors' ``fcs.{k}.*`` names mapped onto zoo:ista_net, zoo:ista_net_plus and zoo:ista_net_plus_mri."""
from __future__ import annotations

from pathlib import Path

import torch

from .operators import block_cs_operators, mri_mask_operator
from .registry import Format, FormatMismatch, Rule, register

__all__ = ["read_torch_state_dict", "ISTA_NET", "ISTA_NET_PLUS", "ISTA_NET_PLUS_MRI"]


def read_torch_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A PyTorch state dict (``weights_only=True``, GPU storages mapped to the CPU), with
    ``nn.DataParallel``'s ``module.`` prefix removed."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling refusal or corrupt file is the user's file
        raise FormatMismatch(f"{path.name}: not a PyTorch state dict loadable with weights_only=True "
                             f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    if not isinstance(saved, dict) or not all(isinstance(v, torch.Tensor) for v in saved.values()):
        raise FormatMismatch(f"{path.name}: expected a state dict of tensors, found {type(saved).__name__}")
    if all(k.startswith("module.") for k in saved):
        saved = {k.removeprefix("module."): v for k, v in saved.items()}
    return saved


def _scalar(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(())


_STEP = (Rule("fcs.{k}.lambda_step", "layers.{k}.rho", (1,), _scalar),
         Rule("fcs.{k}.soft_thr", "layers.{k}.theta", (1,), _scalar))

_PLUS_RULES = _STEP + (
    Rule("fcs.{k}.conv_D", "layers.{k}.D.0.weight", (32, 1, 3, 3)),
    Rule("fcs.{k}.conv1_forward", "layers.{k}.H.0.weight", (32, 32, 3, 3)),
    Rule("fcs.{k}.conv2_forward", "layers.{k}.H.2.weight", (32, 32, 3, 3)),
    Rule("fcs.{k}.conv1_backward", "layers.{k}.Ht.0.weight", (32, 32, 3, 3)),
    Rule("fcs.{k}.conv2_backward", "layers.{k}.Ht.2.weight", (32, 32, 3, 3)),
    Rule("fcs.{k}.conv_G", "layers.{k}.G.0.weight", (1, 32, 3, 3)),
)

# The authors' test: outputs clipped to [0, 1], PSNR/SSIM on the 0-255 scale.
_PROTOCOL = {"clip": True, "magnitude": False, "peak": 255.0}

ISTA_NET = register(Format(
    name="ista_net", specs=("ista_net",), target="zoo:ista_net", suffixes=(".pkl", ".pth", ".pt"),
    reader=read_torch_state_dict,
    rules=_STEP + (
        Rule("fcs.{k}.conv1_forward", "layers.{k}.Fw.0.weight", (32, 1, 3, 3)),
        Rule("fcs.{k}.conv2_forward", "layers.{k}.Fw.2.weight", (32, 32, 3, 3)),
        Rule("fcs.{k}.conv1_backward", "layers.{k}.Bw.0.weight", (32, 32, 3, 3)),
        Rule("fcs.{k}.conv2_backward", "layers.{k}.Bw.2.weight", (1, 32, 3, 3)),
    ),
    operators=block_cs_operators, protocol=_PROTOCOL,
    description="ISTA-Net (Zhang & Ghanem, CVPR 2018), ISTA-Net-PyTorch state dict, block CS 33x33"))

ISTA_NET_PLUS = register(Format(
    name="ista_net_plus", specs=("ista_net_plus",), target="zoo:ista_net_plus",
    suffixes=(".pkl", ".pth", ".pt"), reader=read_torch_state_dict, rules=_PLUS_RULES,
    operators=block_cs_operators, protocol=_PROTOCOL,
    description="ISTA-Net+ (Zhang & Ghanem, CVPR 2018), ISTA-Net-PyTorch state dict, block CS 33x33"))

ISTA_NET_PLUS_MRI = register(Format(
    name="ista_net_plus_mri", specs=("ista_net_plus_mri",), target="zoo:ista_net_plus_mri",
    suffixes=(".pkl", ".pth", ".pt"), reader=read_torch_state_dict, rules=_PLUS_RULES,
    operators=mri_mask_operator("P"), protocol=_PROTOCOL,
    description="ISTA-Net+ for CS-MRI (Zhang & Ghanem, CVPR 2018), ISTA-Net-PyTorch state dict, 256x256"))
