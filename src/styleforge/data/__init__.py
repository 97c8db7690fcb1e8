"""Image loading, transforms and datasets.

* :mod:`.images`: :func:`list_images`, :func:`load_rgb` (any file -> RGB or ``ImageLoadError``).
* :mod:`.transforms`: :class:`Transform` (seeded resize/crop/flip), :func:`to_tensor`, :func:`to_pil`.
* :mod:`.datasets`: the folder layouts, :func:`build_dataset`, :func:`detect_layout`.
* :mod:`.splits`: what a layout gives its users: :func:`dataset_kwargs` (the trainer's datasets),
  :func:`evaluation_jobs` (``evaluate``'s and periodic evaluation's jobs and reals).

Warnings about skipped files go to the ``logging`` logger ``"styleforge.data"``.
"""
from .datasets import (
    DATASET_KINDS,
    ClassFolderDataset,
    ContentStyleDataset,
    ImageDataset,
    PairedABDataset,
    PairedFolderDataset,
    SingleFolderDataset,
    UnpairedDataset,
    build_dataset,
    detect_layout,
)
from .images import IMG_EXTENSIONS, check_image, list_images, load_rgb, to_rgb
from .transforms import PREPROCESS_OPTIONS, Transform, to_pil, to_tensor

__all__ = [
    "DATASET_KINDS", "ClassFolderDataset", "ContentStyleDataset", "ImageDataset", "PairedABDataset",
    "PairedFolderDataset", "SingleFolderDataset", "UnpairedDataset", "build_dataset",
    "detect_layout", "IMG_EXTENSIONS", "check_image", "list_images", "load_rgb", "to_rgb",
    "PREPROCESS_OPTIONS", "Transform", "to_pil", "to_tensor",
]
