"""A tiny hand-written block-CS network with the zoo specs' contract (operators Phi, Q; y -> x),
so data/evaluate/reproduce tests need neither the compiler nor the heavy conv specs."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


class TinyBlockCS(nn.Module):
    """x0 = Q y, then K steps x = x - rho_k Φᵀ(Φ x - y) + a shared 3×3 conv correction on the 33×33 block."""

    operator_names = ("Phi", "Q")
    input_names = ("y",)
    target_names = ("x_star",)
    output_names = ("x",)

    def __init__(self, Phi, Q, K: int = 2, dtype=torch.float32, conv_init: float = 0.0):
        super().__init__()
        self.K = K
        self.register_buffer("Phi", torch.as_tensor(np.asarray(Phi), dtype=dtype))
        self.register_buffer("Q", torch.as_tensor(np.asarray(Q), dtype=dtype))
        self.rho = nn.ParameterList([nn.Parameter(torch.tensor(0.5, dtype=dtype)) for _ in range(K)])
        self.conv = nn.Conv2d(1, 1, 3, padding=1, bias=False, dtype=dtype)
        with torch.no_grad():  # conv_init > 0: a deliberately bad start, so training has work to do
            self.conv.weight.copy_(conv_init * torch.randn(self.conv.weight.shape, generator=torch.Generator().manual_seed(0)))

    def forward(self, return_layers: bool = False, upto: int | None = None, **inputs):
        y = inputs["y"]
        x = y @ self.Q.T
        layers = []
        for k in range(upto or self.K):
            x = x - self.rho[k] * ((x @ self.Phi.T - y) @ self.Phi)
            x = x + self.conv(x.reshape(-1, 1, 33, 33)).reshape(x.shape)
            layers.append(x)
        return (x, layers) if return_layers else x

    def loss(self, batch, upto=None):
        x = self(y=batch["y"], upto=upto)
        return ((x - batch["x_star"]) ** 2).mean()

    def layer_parameters(self, k: int):
        return [self.rho[k - 1]]

    def shared_parameters(self):
        return [self.conv.weight]
