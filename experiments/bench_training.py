"""Benchmark the real backend's fast data path against the plain DataLoader path.

Both paths train the same configuration on the same device in one process. After one warm-up
epoch each, their epochs alternate (plain, fast, plain, fast, ...) so that both see the same
machine load; throughput is training images per second of the median epoch time (training plus
the per-epoch validation pass, as a tuning session pays it).

    python -m experiments.bench_training [--device auto] [--epochs 2] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import platform
import statistics
from typing import Any

import numpy as np

from envs.space import Config

PATHS: dict[str, bool] = {"plain": False, "fast": True}


def device_name(device: str) -> str:
    """A readable name of the device the backend resolves `device` to."""
    import torch

    from envs.real_training import resolve_device

    resolved = resolve_device(device)
    if resolved.type == "cuda":
        return f"{resolved} ({torch.cuda.get_device_name(resolved)})"
    return f"{resolved} ({platform.processor() or platform.machine()}, "\
        f"{torch.get_num_threads()} threads)"


def start_run(fast: bool, config: Config, args: argparse.Namespace) -> tuple[Any, Any]:
    """A backend for one data path (data loaded, one warm-up epoch done) and a fresh run."""
    from envs.real_training import RealBackend

    backend = RealBackend(dataset=args.dataset, data_root=args.data_root, device=args.device,
                          image_size=args.image_size, fast=fast, compile=args.compile,
                          num_threads=args.num_threads, num_workers=args.num_workers)
    backend.start(config.replace(epochs=1), np.random.default_rng(1)).next_epoch()
    return backend, backend.start(config, np.random.default_rng(args.seed))


def summarize(backend: Any, reports: list) -> dict[str, float]:
    """Median epoch time and throughput of one path's timed epochs."""
    epoch_s = statistics.median(r.seconds for r in reports)
    return {"load_s": backend.data.seconds, "epoch_s": epoch_s,
            "images_per_s": backend.data.feed.size(("train",)) / epoch_s,
            "final_loss": reports[-1].train_loss, "val_accuracy": reports[-1].val_accuracy}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--compile", action="store_true", help="torch.compile (CUDA only)")
    parser.add_argument("--num-threads", type=int, default=None)
    parser.add_argument("--num-workers", type=int, default=0, help="plain path DataLoader")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Run both paths and print images/s for each and their ratio."""
    args = parse_args(argv)
    if args.num_threads:
        import torch

        torch.set_num_threads(args.num_threads)
    print(f"device: {device_name(args.device)}")
    print(f"dataset={args.dataset} epochs={args.epochs} batch_size={args.batch_size}")
    config = Config(epochs=args.epochs, batch_size=args.batch_size, loss="cross_entropy",
                    optimizer="adam")
    started = {label: start_run(fast, config, args) for label, fast in PATHS.items()}
    reports: dict[str, list] = {label: [] for label in PATHS}
    for _ in range(args.epochs):
        for label, (_, run) in started.items():
            reports[label].append(run.next_epoch())
    results = {}
    for label, (backend, _) in started.items():
        r = results[label] = summarize(backend, reports[label])
        print(f"{label:>5}: {r['images_per_s']:8.1f} images/s  {r['epoch_s']:6.2f} s/epoch  "
              f"(load {r['load_s']:.2f} s, loss {r['final_loss']:.4f}, "
              f"val {r['val_accuracy']:.3f})")
    ratio = results["fast"]["images_per_s"] / results["plain"]["images_per_s"]
    print(f"speed-up fast/plain: {ratio:.2f}x")
    return results


if __name__ == "__main__":
    main()
