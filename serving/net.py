"""The model for a contract's features: one embedding per categorical feature, an MLP head, one logit.

Training builds it; serving rebuilds it from `model.pt`'s architecture. torch only (ships in model.tar.gz).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class TabularNet(nn.Module):
    mean: torch.Tensor  # buffers: standardisation of the numerical inputs, saved with the weights
    std: torch.Tensor

    def __init__(self, cardinalities: list[int], numerical_width: int, embedding_dim: int, hidden: tuple[int, ...]):
        super().__init__()
        self.architecture: dict[str, Any] = {
            "cardinalities": list(cardinalities),
            "numerical_width": numerical_width,
            "embedding_dim": embedding_dim,
            "hidden": list(hidden),
        }
        self.embeddings = nn.ModuleList(nn.Embedding(n, embedding_dim) for n in cardinalities)
        layers: list[nn.Module] = []
        width = embedding_dim * len(cardinalities) + numerical_width
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, 1))
        self.head = nn.Sequential(*layers)
        self.register_buffer("mean", torch.zeros(numerical_width))
        self.register_buffer("std", torch.ones(numerical_width))

    def forward(self, categorical: torch.Tensor, numerical: torch.Tensor) -> torch.Tensor:
        embedded = [emb(categorical[:, i]) for i, emb in enumerate(self.embeddings)]
        scaled = (numerical - self.mean) / self.std
        out: torch.Tensor = self.head(torch.cat([*embedded, scaled], dim=1)).squeeze(1)
        return out

    @classmethod
    def from_saved(cls, saved: dict[str, Any], weights: str = "float32") -> TabularNet:
        """A net from `{"architecture", "state_dict"}` as training (or `tide compress`) saves it, in eval mode.

        `weights` is the spec's layout: "dynamic_int8" rebuilds the quantised linear layers before loading."""
        architecture = dict(saved["architecture"])
        architecture["hidden"] = tuple(architecture["hidden"])
        net = cls(**architecture)
        if weights == "dynamic_int8":
            net = quantize_linear(net)
        net.load_state_dict(saved["state_dict"])
        net.eval()
        return net


def quantize_linear(net: TabularNet) -> TabularNet:
    """Dynamic int8 quantisation of the linear layers (weights int8, activations quantised per batch at run
    time); embeddings stay float. torch only, so it runs inside SageMaker's PyTorch container too."""
    import warnings

    # torch's default engine on x86 ("x86") measured 5.4 ms per single-row forward of the default head here,
    # fbgemm 0.27 ms (benchmarks/bench_compress.py); qnnpack is the engine ARM builds have.
    engines = torch.backends.quantized.supported_engines
    torch.backends.quantized.engine = "fbgemm" if "fbgemm" in engines else "qnnpack"
    with warnings.catch_warnings():  # torch 2.13 announces the move of torch.ao.quantization to torchao
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        from torch.ao.quantization import quantize_dynamic

        quantized: TabularNet = quantize_dynamic(net.eval(), {nn.Linear}, dtype=torch.qint8)  # type: ignore[no-untyped-call]
    return quantized
