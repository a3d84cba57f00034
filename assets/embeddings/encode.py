"""uint8 pixels in, unit-length fp16 embeddings out, on the backbone's device.

Normalisation (to [0, 1], then mean and std) runs on the device over the whole batch, so
the host sends a quarter of the bytes float32 pixels would take, copied without blocking
from pinned memory on CUDA; the forward pass runs under `inference_mode` and autocast.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from orchestration.backbone import Backbone


class Encoder:
    """Callable turning (n, height, width, 3) uint8 chunks into one batch of (n, dim) float16
    vectors: chunks are copied to the device one by one and joined there."""

    def __init__(self, backbone: Backbone):
        self.backbone = backbone
        self.device = torch.device(backbone.device)
        shape = (1, 3, 1, 1)
        identity = backbone.identity
        self.scale = (1 / (255 * torch.tensor(identity.std))).view(shape).to(self.device)
        self.shift = (torch.tensor(identity.mean) / torch.tensor(identity.std)).view(shape)
        self.shift = self.shift.to(self.device)

    @torch.inference_mode()
    def __call__(self, chunks: Sequence[torch.Tensor]) -> np.ndarray:
        if not chunks:
            return np.empty((0, self.backbone.identity.embed_dim), np.float16)
        pixels = torch.cat([c.to(self.device, non_blocking=True) for c in chunks])
        x = pixels.permute(0, 3, 1, 2).float()
        x = x.mul_(self.scale).sub_(self.shift)  # (x / 255 - mean) / std, in one pass each
        dtype = self.backbone.autocast
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            features = self.backbone.model.encode_image(x)
        features = torch.nn.functional.normalize(features.float(), dim=-1)
        return features.half().cpu().numpy()
