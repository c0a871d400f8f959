"""The real training backend: torchvision SqueezeNet 1.1 trained from scratch with a configuration.

Training follows the study (see /work/shared/study/README.md): SqueezeNet 1.1 with 10 outputs,
ImageNet-normalized images, no augmentation; `cross_entropy` on the raw outputs, `nll` as
log-softmax + negative log likelihood, `mse` and `l1` of the raw outputs against one-hot
targets; PyTorch's optimizers fed from the study's single fields (one `alpha` for averaged_sgd
and rmsprop, one `eps` for adam, rmsprop and adadelta; adagrad keeps PyTorch's own eps, as in
the study's code; averaged_sgd keeps t0 = 1e6).

Every value a person can type is trained, never raised on: values PyTorch's optimizers refuse
make the run fail (`EpochReport.failed`), a NaN or inf batch loss stops the run as diverged,
batch sizes above the training set are clamped to it, running out of memory fails the run.

Two data paths give the same semantics: the fast path (default) decodes the images once into
uint8 tensors on the device, normalizes there, draws batches by index permutation, and uses
channels_last, bf16 autocast on CUDA and optionally `torch.compile` (CUDA only); the plain path
uses a torchvision Dataset with transforms and a DataLoader (`fast=False`), as a baseline.

All randomness (initial weights, dropout, batch order) comes from the `rng` given to `start`,
and runs keep their own torch RNG state, so interleaved runs stay reproducible. On CPU, the same
seed and thread count give the same losses.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

from envs import datasets as ds
from envs.backend import Backend, Run
from envs.space import Config, optimizer_rejection
from envs.trials import EpochReport, FinalResult

EVAL_BATCH_SIZE = 256
Batch = tuple[torch.Tensor, torch.Tensor]


# ------------------------------------------------------------------------------ losses

def _one_hot(targets: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
    return F.one_hot(targets, outputs.shape[1]).to(outputs.dtype)


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "cross_entropy": F.cross_entropy,
    "nll": lambda out, y: F.nll_loss(F.log_softmax(out, dim=1), y),
    "mse": lambda out, y: F.mse_loss(out, _one_hot(y, out)),
    "l1": lambda out, y: F.l1_loss(out, _one_hot(y, out)),
}


def compute_loss(name: str, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The study's loss `name` of raw network outputs (computed in float32)."""
    return LOSSES[name](outputs.float(), targets)


# -------------------------------------------------------------------------- optimizers

#: PyTorch's class for each optimizer, and arguments the form never set (ASGD's t0 = 1e6).
_OPTIMIZERS: dict[str, tuple[type[torch.optim.Optimizer], dict[str, Any]]] = {
    "sgd": (torch.optim.SGD, {}),
    "averaged_sgd": (torch.optim.ASGD, {"t0": 1e6}),
    "adagrad": (torch.optim.Adagrad, {}),
    "rmsprop": (torch.optim.RMSprop, {}),
    "adadelta": (torch.optim.Adadelta, {}),
    "adam": (torch.optim.Adam, {}),
}


def build_optimizer(config: Config, params: Any) -> torch.optim.Optimizer:
    """PyTorch's optimizer for `config`; raises ValueError where PyTorch refuses the values."""
    reason = optimizer_rejection(config)
    if reason:
        raise ValueError(reason)
    cls, fixed = _OPTIMIZERS[config.optimizer]
    kwargs = config.optimizer_fields()  # the fields this optimizer reads (envs.space.used_by)
    if "beta1" in kwargs:
        kwargs["betas"] = (kwargs.pop("beta1"), kwargs.pop("beta2"))
    return cls(params, **kwargs, **fixed)


# -------------------------------------------------------------------------------- data

def resolve_device(device: str) -> torch.device:
    """"auto" -> CUDA when available, else CPU; any other torch device string as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class FastFeed:
    """Decoded uint8 images held on the device; batches by index permutation."""

    def __init__(self, decoded: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
                 device: torch.device) -> None:
        self.device = device
        self._splits = {s: (x.to(device), y.to(device)) for s, (x, y) in decoded.items()}
        self._joined: dict[tuple[str, ...], tuple[torch.Tensor, torch.Tensor]] = {}

    def _tensors(self, splits: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        if len(splits) == 1:
            return self._splits[splits[0]]
        if splits not in self._joined:
            parts = [self._splits[s] for s in splits]
            self._joined[splits] = (torch.cat([x for x, _ in parts]),
                                    torch.cat([y for _, y in parts]))
        return self._joined[splits]

    def size(self, splits: tuple[str, ...]) -> int:
        return sum(len(self._splits[s][1]) for s in splits)

    def batches(self, splits: tuple[str, ...], batch_size: int,
                generator: torch.Generator | None) -> Iterator[Batch]:
        images, labels = self._tensors(splits)
        n = len(labels)
        order = None if generator is None else torch.randperm(n, generator=generator).to(
            self.device)
        for begin in range(0, n, batch_size):
            index = slice(begin, begin + batch_size) if order is None else \
                order[begin:begin + batch_size]
            yield ds.normalize(images[index]), labels[index]


#: decoded fast-path data by (dataset, data_root, train_subset, image_size, device)
_FAST_FEEDS: dict[tuple[Any, ...], FastFeed] = {}


class PlainFeed:
    """Torchvision datasets with transforms, batched by a standard DataLoader."""

    def __init__(self, splits: Mapping[str, torch.utils.data.Dataset], device: torch.device,
                 num_workers: int = 0) -> None:
        self.device, self.num_workers = device, num_workers
        self._splits = dict(splits)

    def size(self, splits: tuple[str, ...]) -> int:
        return sum(len(self._splits[s]) for s in splits)

    def batches(self, splits: tuple[str, ...], batch_size: int,
                generator: torch.Generator | None) -> Iterator[Batch]:
        data = torch.utils.data.ConcatDataset([self._splits[s] for s in splits])
        loader = torch.utils.data.DataLoader(
            data, batch_size=batch_size, shuffle=generator is not None, generator=generator,
            drop_last=False, num_workers=self.num_workers,
            pin_memory=self.device.type == "cuda")
        for images, labels in loader:
            yield (images.to(self.device, non_blocking=True),
                   labels.to(self.device, non_blocking=True))


Feed = FastFeed | PlainFeed


@dataclass
class _Data:
    """A backend's loaded data: its feed, class count, and the seconds loading took."""

    feed: Feed
    num_classes: int
    seconds: float


# --------------------------------------------------------------------------------- run

def sample_losses(losses: Sequence[float], k: int) -> np.ndarray:
    """`k` evenly spaced batch losses in order (first and last included; inf where non-finite;
    all inf when no batch ran)."""
    if not losses:
        return np.full(k, np.inf)
    picked = np.asarray(losses, dtype=np.float64)[
        np.linspace(0, len(losses) - 1, k).round().astype(int)]
    picked[~np.isfinite(picked)] = np.inf
    return picked


@dataclass
class _Trace:
    """What the batches of one epoch produced."""

    losses: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    interrupted: bool = False

    @property
    def diverged(self) -> bool:
        return bool(self.losses) and not math.isfinite(self.losses[-1])

    def mean_loss(self) -> float:
        if not self.losses:
            return math.nan
        if self.diverged:
            return math.inf
        return float(np.average(self.losses, weights=self.sizes))


def _is_out_of_memory(error: BaseException) -> bool:
    text = str(error).lower()
    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in text or \
        "can't allocate memory" in text


class RealRun(Run):
    """One SqueezeNet training run, trained one epoch per `next_epoch` call.

    `epochs` is the number of epochs it trains (the config's, capped by the backend's
    `max_epochs`; when capped, the last epoch reports the config's epoch number so that callers
    see the run complete). Set `should_cancel` to a callable to stop an epoch between batches
    (reported as `interrupted`). An interrupted epoch is abandoned: the next call starts it
    afresh. Interrupted and failed epochs report `val_accuracy` NaN (not measured).
    """

    def __init__(self, backend: RealBackend, config: Config, rng: np.random.Generator,
                 train_splits: tuple[str, ...] = ("train",), eval_split: str | None = "val"
                 ) -> None:
        self.backend, self.config = backend, config
        self.train_splits, self.eval_split = train_splits, eval_split
        self.should_cancel: Callable[[], bool] | None = None
        self.epochs = min(config.epochs, backend.max_epochs or config.epochs)
        self.epochs_done, self.ended = 0, ""
        data = backend.data
        self._feed, self._device = data.feed, backend.device
        self.batch_size = min(config.batch_size, max(self._feed.size(train_splits), 1))
        model_seed, order_seed = (int(s) for s in rng.integers(0, 2**62, size=2))
        self._order = torch.Generator().manual_seed(order_seed)
        self.model, self._rng_states = self._build_model(data.num_classes, model_seed)
        self._forward = torch.compile(self.model) if backend.compiled else self.model
        try:
            self.optimizer: torch.optim.Optimizer | None = build_optimizer(
                config, self.model.parameters())
            self._failure = ""
        except ValueError as error:  # PyTorch refuses the values: the run fails at its start
            self.optimizer, self._failure = None, str(error)

    # -- setup ---------------------------------------------------------------------------
    def _rng_devices(self) -> list[int]:
        return [self._device.index or 0] if self._device.type == "cuda" else []

    def _build_model(self, num_classes: int, seed: int) -> tuple[torch.nn.Module, list]:
        with torch.random.fork_rng(devices=self._rng_devices()):
            torch.manual_seed(seed)
            model = torchvision.models.squeezenet1_1(num_classes=num_classes)
            states = self._get_rng_states()
        model = model.to(self._device)
        if self.backend.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model, states

    def _get_rng_states(self) -> list[torch.Tensor]:
        states = [torch.get_rng_state()]
        if self._device.type == "cuda":
            states.append(torch.cuda.get_rng_state(self._device))
        return states

    @contextmanager
    def _own_rng(self) -> Iterator[None]:
        """Run dropout from this run's own torch RNG state, leaving the global one untouched."""
        with torch.random.fork_rng(devices=self._rng_devices()):
            torch.set_rng_state(self._rng_states[0])
            if self._device.type == "cuda":
                torch.cuda.set_rng_state(self._rng_states[1], self._device)
            yield
            self._rng_states = self._get_rng_states()

    # -- training ------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        """True once the run completed, diverged or failed."""
        return bool(self.ended)

    def next_epoch(self, max_seconds: float = float("inf")) -> EpochReport:
        """Train one more epoch; stop between batches past `max_seconds` or on cancel."""
        start = time.perf_counter()
        if self._failure or self.ended:
            return self._failed(self._failure or f"the run has already {self.ended}", start)
        try:
            with self._own_rng():
                trace = self._train_epoch(start, max_seconds)
            return self._report(trace, start)
        except RuntimeError as error:  # torch.OutOfMemoryError included
            if not _is_out_of_memory(error):
                raise
            self._release()
            return self._failed(f"out of memory on {self._device} with batch_size="
                                f"{self.batch_size} ({str(error).splitlines()[0]})", start)

    def _train_epoch(self, start: float, max_seconds: float) -> _Trace:
        trace, pending = _Trace(), []
        sync_every = self.backend.sync_every
        self.model.train()
        for images, labels in self._feed.batches(self.train_splits, self.batch_size, self._order):
            if self._stop_requested(start, max_seconds):
                trace.interrupted = True
                break
            pending.append(self._step(images, labels))
            trace.sizes.append(len(labels))
            if len(pending) >= sync_every:
                trace.losses += torch.stack(pending).tolist()
                pending.clear()
                if not all(map(math.isfinite, trace.losses[-sync_every:])):
                    break
        if pending:
            trace.losses += torch.stack(pending).tolist()
        self._cut_at_divergence(trace)
        return trace

    @staticmethod
    def _cut_at_divergence(trace: _Trace) -> None:
        bad = next((i for i, v in enumerate(trace.losses) if not math.isfinite(v)), None)
        if bad is not None:
            del trace.losses[bad + 1:], trace.sizes[bad + 1:]

    def _stop_requested(self, start: float, max_seconds: float) -> bool:
        if self.should_cancel is not None and self.should_cancel():
            return True
        return time.perf_counter() - start > max_seconds

    def _prepare(self, images: torch.Tensor, training: bool = False) -> torch.Tensor:
        if training and self.backend.augment:
            images = ds.augment_batch(images, self._order)
        if self.backend.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def _autocast(self) -> Any:
        return torch.autocast(self._device.type, dtype=torch.bfloat16,
                              enabled=self.backend.amp)

    def _step(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        assert self.optimizer is not None
        with self._autocast():
            outputs = self._forward(self._prepare(images, training=True))
        loss = compute_loss(self.config.loss, outputs, labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def evaluate(self, split: str) -> float:
        """Accuracy of the model as it stands on a split ("val" or "test")."""
        correct, total = torch.zeros((), dtype=torch.long, device=self._device), 0
        self.model.eval()
        with torch.inference_mode(), self._autocast():
            for images, labels in self._feed.batches((split,), EVAL_BATCH_SIZE, None):
                outputs = self._forward(self._prepare(images))
                correct += (outputs.argmax(dim=1) == labels).sum()
                total += len(labels)
        self.model.train()
        return float(correct.item()) / max(total, 1)

    # -- reports -------------------------------------------------------------------------
    def _report(self, trace: _Trace, start: float) -> EpochReport:
        k = self.backend.n_batch_losses
        epoch = self.epochs_done + 1
        diverged, interrupted = trace.diverged, trace.interrupted and not trace.diverged
        if not interrupted:
            self.epochs_done = epoch
        if diverged:
            self.ended = "diverged"
        elif not interrupted and epoch >= self.epochs:
            self.ended = "completed"
            epoch = self.config.epochs
        measure = self.eval_split is not None and not interrupted
        accuracy = self.evaluate(self.eval_split) if measure else math.nan
        return EpochReport(epoch=epoch, train_loss=trace.mean_loss(),
                           batch_losses=sample_losses(trace.losses, k), val_accuracy=accuracy,
                           seconds=time.perf_counter() - start, diverged=diverged,
                           interrupted=interrupted)

    def _failed(self, reason: str, start: float) -> EpochReport:
        self.ended = self.ended or "failed"
        return EpochReport(epoch=self.epochs_done + 1, train_loss=math.nan,
                           batch_losses=sample_losses([], self.backend.n_batch_losses),
                           val_accuracy=math.nan, seconds=time.perf_counter() - start,
                           failed=reason)

    def _release(self) -> None:
        if self.optimizer is not None:
            self.optimizer.zero_grad(set_to_none=True)
        if self._device.type == "cuda":
            torch.cuda.empty_cache()

    def close(self) -> None:
        """Free the optimizer state (the model stays for `evaluate`)."""
        self._release()
        self.optimizer = None
        self.ended = self.ended or "closed"


# ----------------------------------------------------------------------------- backend

class RealBackend(Backend):
    """Real SqueezeNet 1.1 training on digits, Imagenette or an image folder.

    Keyword arguments: `dataset` ("digits" | "imagenette" | "folder"), `data_root` (folder
    of imagenette or of the image folder), `download` (Imagenette only), `device` ("auto" ->
    CUDA if available, else CPU), `image_size` (32 for digits, 128 otherwise), `max_epochs`
    (caps every run's epochs, for quick checks), `fast` (fast data path), `compile`
    (torch.compile, CUDA only), `train_subset` (train on a fixed class-balanced subset of this
    many images), `num_threads` (torch CPU threads), `augment` (random horizontal flips; the
    study had none), `num_workers` (DataLoader workers: plain path and decoding).
    The dataset's files are found at construction (a missing dataset raises
    `envs.datasets.DatasetNotFoundError` there); images are decoded on the first `start` or
    `final_test` (`data`).
    """

    name = "real"
    deterministic = False

    def __init__(self, dataset: str = "digits", data_root: str | None = None,
                 download: bool = False, device: str = "auto", image_size: int | None = None,
                 max_epochs: int | None = None, fast: bool = True, compile: bool = False,
                 train_subset: int | None = None, num_threads: int | None = None,
                 augment: bool = False, num_workers: int = 0) -> None:
        if dataset not in ds.DATASETS:
            raise ValueError(f"dataset={dataset!r} is not allowed: expected one of "
                             f"{ds.DATASETS}")
        if max_epochs is not None and max_epochs < 1:
            raise ValueError(f"max_epochs={max_epochs!r} is not allowed: expected >= 1 or None")
        self.dataset, self.data_root, self.download = dataset, data_root, download
        self.device = resolve_device(device)
        self.image_size = image_size or ds.default_image_size(dataset)
        ds.decode_transform(self.image_size)  # validates image_size early
        self.max_epochs, self.fast, self.train_subset = max_epochs, fast, train_subset
        self.augment, self.num_workers = augment, num_workers
        cuda = self.device.type == "cuda"
        self.compiled = compile and cuda and fast
        self.channels_last = fast
        self.amp = fast and cuda
        self.sync_every = 8 if cuda else 1
        self.num_threads = num_threads
        self._configure_torch(cuda)
        self.sources = ds.load_sources(dataset, data_root, download).restrict_train(train_subset)
        self._data: _Data | None = None

    def _configure_torch(self, cuda: bool) -> None:
        if self.num_threads:
            torch.set_num_threads(self.num_threads)
        if cuda:
            torch.backends.cudnn.benchmark = self.fast
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        else:  # reproducible losses on CPU
            torch.use_deterministic_algorithms(True, warn_only=True)

    @property
    def data(self) -> _Data:
        """The dataset, loaded (and for the fast path decoded onto the device) once."""
        if self._data is None:
            start = time.perf_counter()
            if self.fast:
                feed: Feed = self._shared_fast_feed()
            else:
                feed = PlainFeed(ds.plain_splits(self.sources, self.image_size), self.device,
                                 self.num_workers)
            self._data = _Data(feed, self.sources.num_classes, time.perf_counter() - start)
        return self._data

    def _shared_fast_feed(self) -> FastFeed:
        """Decoded splits on the device, decoded once per process for the same settings and
        shared read-only by every backend using them (a tournament has one environment per
        participant)."""
        key = (self.dataset, str(self.data_root), self.train_subset, self.image_size,
               str(self.device))
        if key not in _FAST_FEEDS:
            _FAST_FEEDS[key] = FastFeed(ds.decode_splits(self.sources, self.image_size,
                                                         self.num_workers), self.device)
        return _FAST_FEEDS[key]

    def start(self, config: Config, rng: np.random.Generator) -> RealRun:
        """A run of `config` on the training split, validated on the validation split."""
        return RealRun(self, config, rng)

    def final_test(self, config: Config, rng: np.random.Generator, repeats: int) -> FinalResult:
        """Retrain on train+validation `repeats` times (own seeds); test accuracy of each.

        A run that diverges or fails is tested as it stands (diverged or untrained weights).
        """
        start, accuracies, diverged = time.perf_counter(), [], False
        for _ in range(repeats):
            run = RealRun(self, config, rng, train_splits=("train", "val"), eval_split=None)
            while not run.finished:
                run.next_epoch()
            diverged |= run.ended == "diverged"
            accuracies.append(run.evaluate("test"))
            run.close()
        return FinalResult(tuple(accuracies), diverged, time.perf_counter() - start)

    def describe(self) -> dict[str, object]:
        """Settings to record beside every result."""
        name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu"
        return {"backend": self.name, "dataset": self.dataset, "device": str(self.device),
                "device_name": name, "image_size": self.image_size, "fast": self.fast,
                "compile": self.compiled, "max_epochs": self.max_epochs,
                "train_subset": self.train_subset, "augment": self.augment,
                "num_threads": torch.get_num_threads(), "torch": torch.__version__}
