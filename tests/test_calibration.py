"""The calibration CLI on small synthetic fixtures: a loadable, reproducible parameter file."""

import json
from pathlib import Path

import numpy as np
import pytest

from envs.surrogate import SurrogateBackend, SurrogateParams
from experiments import calibrate_surrogate as cal
from experiments.study_data import concat, load_study

FIXTURES = Path(__file__).parent / "fixtures"
RUNS, SEARCH = FIXTURES / "runs_small.tsv", FIXTURES / "random_search_small.tsv"


def calibrate(out: Path, *extra: str) -> Path:
    argv = ["--runs", str(RUNS), "--random-search", str(SEARCH), "--out", str(out),
            "--seed", "0", "--draws", "640", *extra]
    assert cal.main(argv) == 0
    return out


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    return calibrate(tmp_path_factory.mktemp("cal") / "params.json")


def test_cli_writes_a_versioned_file_that_loads(fitted):
    data = json.loads(fitted.read_text())
    assert data["version"].startswith("study-map-v2+")
    assert data["fitted_on"] == {"runs_small.tsv": 40, "random_search_small.tsv": 12}
    for key in ("cv_spearman", "cv_mae", "cv_auc", "cv_seconds_mdape"):
        assert np.isfinite(data["calibration"][key])
    params = SurrogateParams.load(fitted)
    assert params.version == data["version"] and params != SurrogateParams()
    assert SurrogateBackend(fitted).describe()["surrogate_version"] == params.version


def test_fit_raises_the_likelihood_and_reads_the_cost_model(fitted):
    rows = concat([load_study(RUNS, "runs"), load_study(SEARCH, "random_search")])
    prior, params = SurrogateParams(), SurrogateParams.load(fitted)
    evidence = cal.Evidence.of(rows.subset(cal._startable(rows, prior)), prior)
    assert cal.accuracy_loglik(evidence, params) > cal.accuracy_loglik(evidence, prior) + 10
    timed = rows.subset(cal._timed(rows))
    error = np.abs(cal.predicted_seconds(timed, params) / timed.seconds - 1)
    assert np.median(error) < 0.25


def test_rerun_gives_the_same_file(tmp_path):
    first = calibrate(tmp_path / "first.json", "--skip-cv")
    second = calibrate(tmp_path / "second.json", "--skip-cv")
    assert first.read_text() == second.read_text()


def test_grid_of_random_search_file():
    grid = cal.grid_of(SEARCH)
    assert "beta1" not in grid and set(grid["batch_size"]) == {"25", "100", "500"}
    assert set(grid["optimizer"]) <= {"adam", "rmsprop", "adadelta", "averaged_sgd"}


def test_single_machine_tables_get_a_seeded_k_fold_split():
    runs = load_study(RUNS, "runs")
    by_server, scheme = cal.cv_folds(runs, seed=0)
    assert scheme == "Leave-one-server-out" and set(by_server) == set(runs.server)
    one = runs.subset(np.ones(len(runs), dtype=bool))
    one.server[:] = "local"
    folds, scheme = cal.cv_folds(one, seed=0)
    assert scheme == "5-fold" and len(set(folds)) == 5
    counts = sorted(np.unique(folds, return_counts=True)[1])
    assert counts[-1] - counts[0] <= 1
    np.testing.assert_array_equal(folds, cal.cv_folds(one, seed=0)[0])
    assert not np.array_equal(folds, cal.cv_folds(one, seed=1)[0])
