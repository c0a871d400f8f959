"""evaluate_configs: every row comes back; absurd rows end as training would; bad rows say why."""

import csv
from pathlib import Path

import numpy as np
import pytest

from envs.backend import Backend, Run
from envs.space import validate
from envs.surrogate import SurrogateBackend
from envs.trials import EpochReport, FinalResult
from experiments import evaluate_configs as ev
from experiments.study_data import read_table

ABSURD = Path(__file__).parent / "fixtures" / "absurd_configs.tsv"


def evaluate(tmp_path, *extra, source=ABSURD, name="out.tsv"):
    out = tmp_path / name
    assert ev.main(["--configs", str(source), "--out", str(out), "--repeats", "4", *extra]) == 0
    rows, columns, _ = read_table(out)
    return rows, columns, out


def check_absurd(rows):
    for row in rows:
        expect, label = row["expect"], row["label"]
        if expect.startswith("error:"):
            assert row["outcome"] == "" and expect[6:] in row["error"].split("=")[0], label
            continue
        assert row["error"] == "", label
        if expect == "failed":
            assert row["outcome"] == "failed" and row["reason"], label
        elif expect == "learns":
            assert row["outcome"] == "completed" and float(row["val_accuracy"]) > 0.3, label
        else:
            assert row["outcome"] in ("diverged", "completed"), label
            assert row["outcome"] == "diverged" or float(row["val_accuracy"]) <= 0.15, label
            assert (row["diverged"] == "true") == (row["outcome"] == "diverged"), label
            assert float(row["test_accuracy"]) <= 0.15, label


def test_absurd_and_bad_rows_come_back_as_training_would(tmp_path):
    rows, columns, _ = evaluate(tmp_path)
    source, source_columns, _ = read_table(ABSURD)
    assert columns[: len(source_columns)] == source_columns
    assert set(ev.ADDED) <= set(columns)
    assert [r["label"] for r in rows] == [r["label"] for r in source]
    assert [r["note"] for r in rows] == [r["note"] for r in source]
    check_absurd(rows)


def test_per_row_path_through_the_backend_interface(tmp_path):
    rows, _, _ = evaluate(tmp_path, "--per-row")
    check_absurd(rows)


def test_same_seed_same_file_and_csv_input(tmp_path):
    _, _, first = evaluate(tmp_path, "--seed", "3", name="a.tsv")
    _, _, second = evaluate(tmp_path, "--seed", "3", name="b.tsv")
    _, _, other = evaluate(tmp_path, "--seed", "4", name="c.tsv")
    assert first.read_text() == second.read_text() != other.read_text()
    rows, columns, _ = read_table(ABSURD)
    path = tmp_path / "configs.txt"  # no extension: the delimiter is sniffed
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
    csv_rows, _, _ = evaluate(tmp_path, "--seed", "3", source=path, name="d.tsv")
    assert [r["val_accuracy"] for r in csv_rows] == \
        [r["val_accuracy"] for r in read_table(first)[0]]


def test_colliding_columns_are_prefixed_and_max_epochs_caps(tmp_path):
    source = tmp_path / "runs.tsv"
    source.write_text("epochs\tbatch_size\tloss\toptimizer\tval_accuracy\n"
                      "1000000000\t64\tnll\tadam\t0.5\n")
    rows, columns, _ = evaluate(tmp_path, "--max-epochs", "3", source=source)
    assert rows[0]["val_accuracy"] == "0.5" and "surrogate_val_accuracy" in columns
    assert float(rows[0]["seconds"]) < 60


class CountingBackend(Backend):
    """A minimal backend: every run learns one point per epoch; crashes on batch size 13."""

    name = "counting"

    def start(self, config, rng):
        if config.batch_size == 13:
            raise RuntimeError("unlucky batch size")
        backend = self

        class _Run(Run):
            epoch = 0

            def next_epoch(self, max_seconds=float("inf")):
                self.epoch += 1
                return EpochReport(self.epoch, 1.0, np.ones(backend.n_batch_losses),
                                   0.1 + 0.01 * self.epoch, 2.0)

        return _Run()

    def final_test(self, config, rng, repeats):
        return FinalResult(tuple(rng.uniform(0.1, 0.2, repeats)), False, 1.0)


def test_generic_path_works_for_any_backend():
    parsed = [validate({"epochs": e, "batch_size": b, "loss": "nll", "optimizer": "sgd"})
              for e, b in ((3, 32), (5, 13), (7, 64))]
    results = ev.evaluate(parsed, CountingBackend(), repeats=3, seed=0)
    assert [r.outcome for r in results] == ["completed", "failed", "completed"]
    assert results[0].val_accuracy == pytest.approx(0.13) and results[0].seconds == 6.0
    assert "unlucky" in results[1].reason
    again = ev.evaluate(parsed, CountingBackend(), repeats=3, seed=0)
    assert [r.test_accuracy for r in again] == [r.test_accuracy for r in results]
    assert isinstance(SurrogateBackend(), Backend)
