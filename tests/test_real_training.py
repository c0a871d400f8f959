"""Real SqueezeNet training backend on CPU: small digits subsets and a generated image folder."""

from __future__ import annotations

import csv
import math
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from envs import datasets as ds  # noqa: E402
from envs.real_training import RealBackend, compute_loss, sample_losses  # noqa: E402
from envs.space import OPTIMIZERS, Config  # noqa: E402
from envs.trials import STUDY_RUN_COLUMNS  # noqa: E402

N_CLASSES = 10


def cfg(**changes) -> Config:
    base = {"epochs": 2, "batch_size": 32, "loss": "cross_entropy", "optimizer": "adam"}
    return Config.from_mapping({**base, **changes})


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: fast for these tiny models and robust when other jobs share the CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits() -> RealBackend:
    """Digits at 32 px (the default size) on a 500-image training subset."""
    return RealBackend(dataset="digits", device="cpu", train_subset=500)


@pytest.fixture(scope="module")
def tiny() -> RealBackend:
    """Digits at 24 px on 40 training images: for edge cases where only speed matters."""
    return RealBackend(dataset="digits", device="cpu", image_size=24, train_subset=40)


def write_images(root, counts: dict[str, int], classes: list[str], suffix: str) -> None:
    """root/<split>/<class>/<n><suffix>: 16 px colour images whose brightness tells the class."""
    from PIL import Image

    generator = np.random.default_rng(0)
    for split, count in counts.items():
        for label, name in enumerate(classes):
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                pixels = generator.integers(0, 64, size=(16, 16, 3)) + 19 * label
                Image.fromarray(pixels.astype(np.uint8)).save(root / split / name / f"{i}{suffix}")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An image folder with train/val/test splits of 10 classes."""
    root = tmp_path_factory.mktemp("images")
    write_images(root, {"train": 4, "val": 2, "test": 2},
                 [f"class_{k}" for k in range(N_CLASSES)], ".png")
    return str(root)


def train_all(backend: RealBackend, config: Config, seed: int = 0):
    run = backend.start(config, rng(seed))
    reports = [run.next_epoch() for _ in range(run.epochs)]
    return run, reports


def test_sane_config_completes_with_decreasing_losses(digits: RealBackend) -> None:
    run, reports = train_all(digits, cfg(epochs=3, lr=1e-3), seed=2)
    losses = [r.train_loss for r in reports]
    assert all(math.isfinite(v) for v in losses)
    assert losses[0] > losses[1] > losses[2] and losses[2] < losses[0] - 0.1
    assert [r.epoch for r in reports] == [1, 2, 3] and run.finished
    for r in reports:
        assert 0.0 <= r.val_accuracy <= 1.0 and r.seconds > 0
        assert r.batch_losses.shape == (digits.n_batch_losses,)
        assert np.isfinite(r.batch_losses).all()
        assert not (r.diverged or r.interrupted or r.failed)


def test_same_seed_same_losses_other_seed_differs(tiny: RealBackend) -> None:
    first = train_all(tiny, cfg(batch_size=8), seed=5)[1]
    again = train_all(tiny, cfg(batch_size=8), seed=5)[1]
    other = train_all(tiny, cfg(batch_size=8), seed=6)[1]
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.batch_losses, b.batch_losses)
        assert a.val_accuracy == b.val_accuracy
    assert not np.array_equal(first[0].batch_losses, other[0].batch_losses)


def test_interleaved_runs_keep_their_own_randomness(tiny: RealBackend) -> None:
    alone = train_all(tiny, cfg(batch_size=8), seed=3)[1]
    run, noise = tiny.start(cfg(batch_size=8), rng(3)), tiny.start(cfg(batch_size=8), rng(9))
    mixed = []
    for _ in range(2):
        mixed.append(run.next_epoch())
        noise.next_epoch()
    for a, b in zip(alone, mixed, strict=True):
        np.testing.assert_array_equal(a.batch_losses, b.batch_losses)


def test_lr_8_momentum_4_diverges_and_stops(digits: RealBackend) -> None:
    run = digits.start(cfg(epochs=5, optimizer="sgd", lr=8.0, momentum=4.0), rng())
    report = run.next_epoch()
    assert report.diverged and math.isinf(report.train_loss)
    assert np.isinf(report.batch_losses[-1]) and not report.failed
    assert run.finished
    assert run.next_epoch().failed  # a finished run trains no more, and says so


@pytest.mark.parametrize("changes", [
    {"eps": 6.0},
    {"batch_size": 1},
    {"batch_size": 10**6},
    {"optimizer": "sgd", "momentum": 0.9, "lr": 0.01, "weight_decay": 5.0},
    {"optimizer": "rmsprop", "alpha": 0.0, "eps": 0.0},
    {"optimizer": "adagrad", "lr_decay": 3.0, "initial_accumulator_value": 100.0},
    {"optimizer": "adadelta", "rho": 1.0},
    {"optimizer": "averaged_sgd", "lambd": 50.0, "alpha": 9.0},
])
def test_absurd_values_train_without_crashing(tiny: RealBackend, changes: dict) -> None:
    run = tiny.start(cfg(epochs=1, **changes), rng())
    report = run.next_epoch()
    assert not report.failed and not report.interrupted
    assert report.diverged or math.isfinite(report.train_loss)
    assert 1 <= run.batch_size <= tiny.data.feed.size(("train",))


def test_max_epochs_caps_runs_and_reports_completion() -> None:
    backend = RealBackend(device="cpu", image_size=24, train_subset=20, max_epochs=1)
    run = backend.start(cfg(epochs=1200), rng())
    report = run.next_epoch()
    assert run.epochs == 1 and run.finished and report.epoch == 1200


@pytest.mark.parametrize("loss", ["l1", "mse"])
def test_regression_losses_against_one_hot_run(tiny: RealBackend, loss: str) -> None:
    report = train_all(tiny, cfg(epochs=1, loss=loss))[1][0]
    assert math.isfinite(report.train_loss) and np.isfinite(report.batch_losses).all()
    assert 0.0 <= report.val_accuracy <= 1.0


def test_nll_equals_cross_entropy_numerically(tiny: RealBackend) -> None:
    outputs = torch.relu(torch.randn(16, N_CLASSES, generator=torch.Generator().manual_seed(0)))
    targets = torch.arange(16) % N_CLASSES
    assert torch.allclose(compute_loss("nll", outputs, targets),
                          compute_loss("cross_entropy", outputs, targets), atol=1e-6)
    nll = train_all(tiny, cfg(epochs=1, loss="nll"), seed=4)[1][0]
    ce = train_all(tiny, cfg(epochs=1, loss="cross_entropy"), seed=4)[1][0]
    np.testing.assert_allclose(nll.batch_losses, ce.batch_losses, rtol=1e-5)


@pytest.mark.parametrize("changes, field", [
    ({"beta1": 4.0}, "beta1"),
    ({"optimizer": "adadelta", "rho": 2.0}, "rho"),
    ({"optimizer": "rmsprop", "eps": -1.0}, "eps"),
])
def test_values_torch_refuses_fail_the_run(tiny: RealBackend, changes: dict, field: str) -> None:
    run = tiny.start(cfg(**changes), rng())
    report = run.next_epoch()
    assert field in report.failed and "torch.optim refuses" in report.failed
    assert run.finished and math.isnan(report.val_accuracy)


def test_max_seconds_zero_interrupts(tiny: RealBackend) -> None:
    run = tiny.start(cfg(), rng())
    report = run.next_epoch(max_seconds=0.0)
    assert report.interrupted and not report.diverged and math.isnan(report.val_accuracy)
    assert not run.finished and run.next_epoch().epoch == 1  # the interrupted epoch is redone


def test_should_cancel_stops_between_batches(tiny: RealBackend) -> None:
    run = tiny.start(cfg(batch_size=4), rng())
    calls = iter(range(100))
    run.should_cancel = lambda: next(calls) >= 3
    report = run.next_epoch()
    assert report.interrupted and math.isfinite(report.train_loss)
    assert len(set(report.batch_losses.tolist())) == 3  # three batches ran, then it stopped


def test_batch_loss_sample_is_fixed_length_and_ordered() -> None:
    assert sample_losses([1.0, 2.0, 3.0], 16).tolist() == sorted(sample_losses([1, 2, 3], 16))
    sample = sample_losses(list(range(100)) + [float("nan")], 16)
    assert sample.shape == (16,) and sample[0] == 0 and np.isinf(sample[-1])
    assert np.isinf(sample_losses([], 16)).all()


def test_fast_and_plain_paths_see_the_same_pixels(tiny: RealBackend) -> None:
    image, _ = tiny.sources.splits["val"][0]
    fast = ds.normalize(ds.decode_transform(24)(image)[None])[0]
    plain = ds.plain_transform(24)(image)
    assert torch.allclose(fast, plain, atol=1e-5)


def test_plain_path_trains(tiny: RealBackend) -> None:
    backend = RealBackend(device="cpu", image_size=24, train_subset=40, fast=False)
    report = train_all(backend, cfg(epochs=1))[1][0]
    assert math.isfinite(report.train_loss) and 0.0 <= report.val_accuracy <= 1.0


def test_folder_dataset_and_final_test(folder: str) -> None:
    backend = RealBackend(dataset="folder", data_root=folder, device="cpu", image_size=24)
    assert backend.sources.num_classes == N_CLASSES
    report = train_all(backend, cfg(epochs=1, batch_size=8))[1][0]
    assert math.isfinite(report.train_loss) and 0.0 <= report.val_accuracy <= 1.0
    result = backend.final_test(cfg(epochs=1, batch_size=8), rng(), repeats=3)
    assert len(result.test_accuracies) == 3 and result.seconds > 0 and not result.diverged
    assert all(0.0 <= a <= 1.0 for a in result.test_accuracies)


def test_final_test_of_a_refused_config_reports_untrained_accuracy(tiny: RealBackend) -> None:
    result = tiny.final_test(cfg(beta1=4.0), rng(), repeats=2)
    assert len(result.test_accuracies) == 2 and not result.diverged


def test_missing_imagenette_names_path_and_download(tmp_path) -> None:
    with pytest.raises(ds.DatasetNotFoundError) as error:
        RealBackend(dataset="imagenette", data_root=str(tmp_path / "nowhere"))
    assert str(tmp_path / "nowhere") in str(error.value) and "download=True" in str(error.value)


def test_imagenette_on_disk_is_split_into_train_val_test(tmp_path) -> None:
    from torchvision.datasets import Imagenette

    wnids = sorted(Imagenette._WNID_TO_CLASS)
    write_images(tmp_path / "imagenette2-160", {"train": 2, "val": 3}, wnids, ".JPEG")
    backend = RealBackend(dataset="imagenette", data_root=str(tmp_path), device="cpu",
                          image_size=24)
    sizes = {s: len(v) for s, v in backend.sources.labels.items()}
    assert sizes == {"train": 30, "val": 10, "test": 10}
    assert math.isfinite(train_all(backend, cfg(epochs=1, batch_size=8))[1][0].train_loss)


def test_bad_backend_options_are_rejected(tmp_path) -> None:
    with pytest.raises(ValueError, match="image_size"):
        RealBackend(image_size=16)
    with pytest.raises(ValueError, match="dataset"):
        RealBackend(dataset="mnist")
    with pytest.raises(ds.DatasetNotFoundError, match="train"):
        RealBackend(dataset="folder", data_root=str(tmp_path))


def test_random_search_writes_the_study_runs_format(tmp_path) -> None:
    from experiments import real_random_search as rs

    out = tmp_path / "runs.tsv"
    rs.main(["--n", "2", "--out", str(out), "--max-epochs", "1", "--device", "cpu",
             "--image-size", "24", "--train-subset", "40", "--max-batch-size", "64"])
    with out.open() as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert tuple(rows[0]) == STUDY_RUN_COLUMNS and [r["run_id"] for r in rows] == ["1", "2"]
    for row in rows:
        assert row["outcome"] in ("completed", "nan", "cancelled", "unfinished")
        assert Config.from_mapping(row).epochs == 1
        assert (row["val_accuracy"] != "") == (row["outcome"] == "completed")


def test_random_search_domain_draws_values_torch_accepts() -> None:
    from envs.space import optimizer_rejection
    from experiments.real_random_search import sample_config

    generator = rng(2)
    draws = [sample_config(generator, max_epochs=5) for _ in range(500)]
    assert not any(optimizer_rejection(c) for c in draws)
    assert {c.optimizer for c in draws} == set(OPTIMIZERS) and max(c.epochs for c in draws) == 5


def test_contracts_load_without_torch() -> None:
    code = ("import sys, envs.space, envs.trials, envs.backend; "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
