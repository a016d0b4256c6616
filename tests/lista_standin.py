"""A hand-written 3-layer LISTA with the compiled-model contract, so data/train tests need no compiler."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


class TinyLISTA(nn.Module):
    """x_{k+1} = soft(W y + S x_k, theta_k): W, S shared, theta per layer (names configurable)."""

    def __init__(self, A, K: int = 3, lam: float = 0.1, names=("A", "y", "x_star"), dtype=torch.float32):
        super().__init__()
        A = torch.as_tensor(np.asarray(A), dtype=dtype)
        L = torch.linalg.matrix_norm(A, ord=2) ** 2
        n, m = A.shape
        self.K = K
        self.operator_names = (names[0],)
        self.input_names = (names[1],)
        self.target_names = (names[2],)
        self.output_names = ("x",)
        self.W = nn.Parameter(A.T / L)
        self.S = nn.Parameter(torch.eye(m, dtype=dtype) - A.T @ A / L)
        self.theta = nn.ParameterList(
            [nn.Parameter(torch.full((m,), lam, dtype=dtype) / L) for _ in range(K)]
        )

    def forward(self, return_layers: bool = False, upto: int | None = None, **inputs):
        y = inputs[self.input_names[0]]
        x = torch.zeros(y.shape[0], self.W.shape[0], dtype=y.dtype)
        layers = []
        for k in range(upto or self.K):
            z = y @ self.W.T + x @ self.S.T
            x = torch.sign(z) * torch.relu(z.abs() - self.theta[k])
            layers.append(x)
        return (x, layers) if return_layers else x

    def loss(self, batch, upto=None):
        x = self(**{n: batch[n] for n in self.input_names}, upto=upto)
        return ((x - batch[self.target_names[0]]) ** 2).sum(dim=1).mean()

    def layer_parameters(self, k: int):
        return [self.theta[k - 1]]

    def shared_parameters(self):
        return [self.W, self.S]
