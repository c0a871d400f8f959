"""Image datasets for the real training backend: digits, Imagenette and any image folder.

Every dataset comes as three splits (train, val, test) of `(PIL image, label)` pairs. Two ways
to consume them share those sources and one resize step, so both give the same pixels:

- `decode_splits` decodes every image once into uint8 tensors (N, 3, S, S) for the fast path,
  which normalizes on the device (`normalize`);
- `plain_splits` wraps the sources in standard torchvision transforms (resize, to-tensor,
  ImageNet normalization) for a DataLoader.

Images are resized (squashed, not cropped) to `image_size` x `image_size` and normalized with
ImageNet's mean and std. No augmentation by default (the study had none); `augment_batch`
flips images horizontally when asked. Sources:

- `digits`: scikit-learn's bundled 8x8 digits (16 grey levels), grey levels scaled to 0-255,
  upscaled to `image_size`, 3 channels; a fixed seeded stratified 60/20/20 split.
- `imagenette`: torchvision's Imagenette (160 px edition) under `data_root` (default
  `DEFAULT_IMAGENETTE_ROOT`); its official val split gives 500 validation and 500 test images
  (50 per class, seeded; a third each when it is smaller) and the rest of it joins the training
  images, close to the study's ~13,000 / 500 / 500.
- `folder`: any tree `data_root/{train,val,test}/<class>/<image>` (torchvision ImageFolder).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset
from torchvision import datasets as tv_datasets
from torchvision import transforms as T

DATASETS: tuple[str, ...] = ("digits", "imagenette", "folder")
SPLITS: tuple[str, ...] = ("train", "val", "test")
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
#: SqueezeNet 1.1's three stride-2 poolings need at least this many pixels per side.
MIN_IMAGE_SIZE = 17
SPLIT_SEED = 0
DEFAULT_IMAGENETTE_ROOT = "~/.cache/hpo-arena/imagenette"  # when data_root is None
IMAGENETTE_HELD_OUT = 500  # validation and test images each, taken from Imagenette's val split


class DatasetNotFoundError(FileNotFoundError):
    """A dataset that is not on disk; the message says where it was looked for and what to do."""


def default_image_size(dataset: str) -> int:
    """32 px for digits (8x8 originals), 128 px (the study's size) otherwise."""
    return 32 if dataset == "digits" else 128


class ArrayImages(Dataset):
    """Grey-level images held in a uint8 array (N, H, W), served as PIL images."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels.astype(np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        return Image.fromarray(self.images[index]), int(self.labels[index])


class Transformed(Dataset):
    """A `(PIL image, label)` dataset with a transform applied to the images."""

    def __init__(self, base: Dataset, transform: Callable[[Image.Image], Any]) -> None:
        self.base, self.transform = base, transform

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image, label = self.base[index]
        return self.transform(image), int(label)


@dataclass(frozen=True)
class Sources:
    """The three splits of one dataset as `(PIL image, label)` datasets."""

    splits: dict[str, Dataset]
    labels: dict[str, np.ndarray]
    num_classes: int

    def restrict_train(self, size: int | None) -> Sources:
        """The same sources with a fixed, class-balanced subset of `size` training images."""
        keep = subset_indices(self.labels["train"], size)
        if len(keep) == len(self.labels["train"]):
            return self
        splits = {**self.splits, "train": Subset(self.splits["train"], keep.tolist())}
        labels = {**self.labels, "train": self.labels["train"][keep]}
        return Sources(splits, labels, self.num_classes)


def _stratified_split(labels: np.ndarray, fractions: Sequence[float], seed: int
                      ) -> list[np.ndarray]:
    """Index arrays, one per fraction, each holding that share of every class (seeded)."""
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in fractions]
    bounds = np.cumsum(fractions)[:-1]
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        cuts = np.round(bounds * len(members)).astype(int)
        for part, chunk in zip(parts, np.split(members, cuts), strict=True):
            part.extend(chunk.tolist())
    return [np.sort(np.array(part, dtype=np.int64)) for part in parts]


def _digits_sources() -> Sources:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    labels = bunch.target.astype(np.int64)
    parts = _stratified_split(labels, (0.6, 0.2, 0.2), SPLIT_SEED)
    splits = {s: ArrayImages(images[i], labels[i]) for s, i in zip(SPLITS, parts, strict=True)}
    return Sources(splits, {s: d.labels for s, d in splits.items()}, 10)


def _folder_sources(data_root: str | Path | None) -> Sources:
    if data_root is None:
        raise DatasetNotFoundError("dataset='folder' needs data_root (a folder path)")
    root = Path(data_root).expanduser()
    missing = [str(root / s) for s in SPLITS if not (root / s).is_dir()]
    if missing:
        raise DatasetNotFoundError(
            f"dataset='folder' needs {root}/train, val and test, each with one subfolder per "
            f"class; missing: {', '.join(missing)}")
    splits = {s: tv_datasets.ImageFolder(str(root / s)) for s in SPLITS}
    classes = splits["train"].classes
    for s in SPLITS:
        if splits[s].classes != classes:
            raise ValueError(f"{root / s} has classes {splits[s].classes}, train has {classes}")
    labels = {s: np.array(d.targets, dtype=np.int64) for s, d in splits.items()}
    return Sources(dict(splits), labels, len(classes))


def _imagenette_sources(data_root: str | Path | None, download: bool) -> Sources:
    root = Path(data_root or DEFAULT_IMAGENETTE_ROOT).expanduser()
    try:
        train = tv_datasets.Imagenette(str(root), split="train", size="160px", download=download)
        held = tv_datasets.Imagenette(str(root), split="val", size="160px", download=download)
    except RuntimeError as error:
        raise DatasetNotFoundError(
            f"Imagenette (160px) not found under {root} (expected {root / 'imagenette2-160'}); "
            "pass download=True to download it (about 94 MB), or point data_root at a folder "
            f"that holds imagenette2-160/ ({error})") from error
    # labels from the file lists (torchvision keeps them in `_samples`), without decoding
    held_labels = np.array([label for _, label in held._samples], dtype=np.int64)
    share = min(IMAGENETTE_HELD_OUT / len(held_labels), 1 / 3)
    val_idx, test_idx, rest = _stratified_split(held_labels, (share, share, 1 - 2 * share),
                                                SPLIT_SEED)
    train_labels = np.array([label for _, label in train._samples], dtype=np.int64)
    splits = {"train": ConcatDataset([train, Subset(held, rest.tolist())]),
              "val": Subset(held, val_idx.tolist()), "test": Subset(held, test_idx.tolist())}
    labels = {"train": np.concatenate([train_labels, held_labels[rest]]),
              "val": held_labels[val_idx], "test": held_labels[test_idx]}
    return Sources(splits, labels, 10)


def load_sources(dataset: str, data_root: str | Path | None = None,
                 download: bool = False) -> Sources:
    """The train/val/test sources of a dataset (`DATASETS`)."""
    if dataset == "digits":
        return _digits_sources()
    if dataset == "folder":
        return _folder_sources(data_root)
    if dataset == "imagenette":
        return _imagenette_sources(data_root, download)
    raise ValueError(f"dataset={dataset!r} is not allowed: expected one of {DATASETS}")


def subset_indices(labels: np.ndarray, size: int | None, seed: int = SPLIT_SEED) -> np.ndarray:
    """A fixed, roughly class-balanced subset of `size` indices (all of them for None)."""
    if size is None or size >= len(labels):
        return np.arange(len(labels))
    if size < 1:
        raise ValueError(f"train_subset={size!r} is not allowed: expected an integer >= 1")
    order = np.random.default_rng(seed).permutation(len(labels))
    # round-robin over classes, so even tiny subsets see every class
    rank = np.empty(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        members = order[labels[order] == label]
        rank[members] = np.arange(len(members))
    picked = order[np.lexsort((np.arange(len(labels)), rank[order]))][:size]
    return np.sort(picked)


def _resize(image_size: int) -> list[Callable]:
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size={image_size!r} is not allowed: expected an integer >= "
                         f"{MIN_IMAGE_SIZE} (SqueezeNet 1.1 needs it)")
    return [T.Resize((image_size, image_size)), T.Lambda(_to_rgb)]


def _to_rgb(image: Image.Image) -> Image.Image:
    return image if image.mode == "RGB" else image.convert("RGB")


def decode_transform(image_size: int) -> T.Compose:
    """PIL image -> resized uint8 tensor (3, S, S)."""
    return T.Compose([*_resize(image_size), T.PILToTensor()])


def plain_transform(image_size: int) -> T.Compose:
    """PIL image -> resized, ImageNet-normalized float tensor (3, S, S)."""
    return T.Compose([*_resize(image_size), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def plain_splits(sources: Sources, image_size: int) -> dict[str, Transformed]:
    """Each split wrapped in the standard torchvision transforms."""
    transform = plain_transform(image_size)
    return {s: Transformed(d, transform) for s, d in sources.splits.items()}


def decode_splits(sources: Sources, image_size: int, num_workers: int = 0
                  ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Each split decoded once: (uint8 images (N, 3, S, S), int64 labels (N,))."""
    transform = decode_transform(image_size)
    decoded = {}
    for split, data in sources.splits.items():
        loader = DataLoader(Transformed(data, transform), batch_size=256,
                            num_workers=num_workers)
        parts = list(loader)
        images = torch.cat([x for x, _ in parts]) if parts else torch.empty(
            0, 3, image_size, image_size, dtype=torch.uint8)
        decoded[split] = (images, torch.as_tensor(sources.labels[split]))
    return decoded


@functools.lru_cache(maxsize=8)
def _pixel_stats(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """ImageNet mean and std in 0-255 pixel units, shaped (1, 3, 1, 1), on `device`."""
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1) * 255.0
    return mean, std


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, 3, H, W) -> ImageNet-normalized float32, on their own device."""
    mean, std = _pixel_stats(images.device)
    return (images.float() - mean) / std


def augment_batch(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Flip each image horizontally with probability 1/2 (draws from `generator`, on CPU)."""
    flip = torch.rand(images.shape[0], generator=generator) < 0.5
    flip = flip.to(images.device).view(-1, 1, 1, 1)
    return torch.where(flip, images.flip(-1), images)
