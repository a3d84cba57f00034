"""The backbone's input geometry applied to a picture: the same resize and crop as open_clip's
eval transform, ending in uint8 pixels.

Workers hand uint8 to the model process (a quarter of the bytes of float32); the division by
255 and the mean/std normalisation happen on the device, batched (see encode.py). Resize and
crop follow torchvision's and open_clip's rounding exactly, so a picture gives the same input
tensor here as through `open_clip.create_model_and_transforms(...)[2]` (and, for SigLIP's
squash resize, as Hugging Face's SiglipImageProcessor).

JPEGs are decoded whole. Decoding at a reduced DCT scale (`draft`) is several times faster,
but its pixels are not those of a whole decode resized: up to a few levels off on photos (mean
0.3-1.2 of 255) and more on noise, which moved a SigLIP embedding to cosine 0.99987 of its
reference and a V2.5 score by 4e-4. Heads made elsewhere (LAION's, V2.5's) read features of
whole decodes, so the draft is only for callers that ask for it (`draft=True`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from orchestration.backbone import Identity

_RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


@dataclass(frozen=True)
class Geometry:
    """Target size (height, width), open_clip resize mode, interpolation and pad colour."""

    size: tuple[int, int]
    resize_mode: str = "shortest"
    interpolation: str = "bicubic"
    fill_color: int = 0
    draft: bool = False  # decode JPEGs at a reduced scale: faster, not the exact pixels

    @classmethod
    def of(cls, identity: Identity, draft: bool = False) -> Geometry:
        if identity.resize_mode not in ("shortest", "longest", "squash"):
            raise ValueError(f"unsupported open_clip resize_mode {identity.resize_mode!r}")
        return cls(
            identity.image_size,
            identity.resize_mode,
            identity.interpolation,
            identity.fill_color,
            draft,
        )

    @property
    def draft_size(self) -> tuple[int, int] | None:
        """The (width, height) a JPEG may be decoded down to (by a power of two) and still
        cover the target: the shortest side must stay at least the target's longest. None
        without `draft`: the whole picture is decoded."""
        if not self.draft:
            return None
        if self.resize_mode == "squash":
            return self.size[1], self.size[0]
        side = max(self.size)
        return side, side

    def apply(self, img: Image.Image) -> np.ndarray:
        """An RGB picture resized and cropped to the target: (height, width, 3) uint8."""
        if self.resize_mode == "squash":
            img = self._resize(img, self.size)
        elif self.resize_mode == "longest":
            img = self._crop_or_pad(self._resize(img, self._keep_ratio(img, longest=True)))
        elif self.size[0] == self.size[1]:
            img = self._crop_or_pad(self._resize(img, self._shortest_edge(img)))
        else:
            # open_clip resizes non-square targets with its default interpolation, bicubic.
            size = self._keep_ratio(img, longest=False)
            img = self._crop_or_pad(img.resize(size[::-1], Image.Resampling.BICUBIC))
        return np.asarray(img, dtype=np.uint8)

    def _resize(self, img: Image.Image, size: tuple[int, int]) -> Image.Image:
        if (img.height, img.width) == size:
            return img  # as torchvision: no resampling when the size already matches
        return img.resize((size[1], size[0]), _RESAMPLE.get(self.interpolation, Image.BICUBIC))

    def _shortest_edge(self, img: Image.Image) -> tuple[int, int]:
        """torchvision's Resize(int): shortest edge to the target, the other scaled, floored."""
        w, h = img.size
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = self.size[0], int(self.size[0] * long / short)
        return (new_long, new_short) if w <= h else (new_short, new_long)

    def _keep_ratio(self, img: Image.Image, longest: bool) -> tuple[int, int]:
        """open_clip's ResizeKeepRatio: fit the longest (or shortest) side, rounded."""
        ratio_h, ratio_w = img.height / self.size[0], img.width / self.size[1]
        ratio = max(ratio_h, ratio_w) if longest else min(ratio_h, ratio_w)
        return round(img.height / ratio), round(img.width / ratio)

    def _crop_or_pad(self, img: Image.Image) -> Image.Image:
        crop_h, crop_w = self.size
        if crop_w > img.width or crop_h > img.height:
            fill = (self.fill_color,) * 3
            padded = Image.new("RGB", (max(crop_w, img.width), max(crop_h, img.height)), fill)
            left = (crop_w - img.width) // 2 if crop_w > img.width else 0
            top = (crop_h - img.height) // 2 if crop_h > img.height else 0
            padded.paste(img, (left, top))
            img = padded
        top = int(round((img.height - crop_h) / 2.0))
        left = int(round((img.width - crop_w) / 2.0))
        if (top, left, img.height, img.width) == (0, 0, crop_h, crop_w):
            return img
        return img.crop((left, top, left + crop_w, top + crop_h))
