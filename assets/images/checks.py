"""Data-quality checks of image_index."""

from assets.images.assets import image_index  # noqa: F401
