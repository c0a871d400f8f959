"""Readers for configuration tables and the study's tidy logs (data/study/*.tsv).

`read_table`/`write_table` keep every cell as text, so columns a caller does not know pass
through unchanged. `load_study` turns runs.tsv and random_search.tsv rows into vectorized
configuration arrays plus what became of each run.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from envs.space import Config, InvalidConfigError, config_arrays, validate

#: The study's experience groups: G1 = 0 months, G2 = 1-9, G3 = more than 9.
GROUPS: tuple[str, ...] = ("G1", "G2", "G3")


def experience_group(months: float) -> str:
    """G1 = 0 months, G2 = more than 0 up to 9, G3 = more than 9."""
    return "G1" if months <= 0 else ("G2" if months <= 9 else "G3")


DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "study"
RUNS_FILE = DATA_DIR / "runs.tsv"
#: outcome codes (the runs table spells a diverged run "nan")
COMPLETED, DIVERGED, CANCELLED, UNFINISHED = "completed", "nan", "cancelled", "unfinished"


def delimiter_of(path: str | Path, sample: str = "") -> str:
    """Tab for .tsv, comma for .csv, otherwise sniffed from `sample` (tab if unsure)."""
    suffix = Path(path).suffix.lower()
    if suffix in (".tsv", ".tab"):
        return "\t"
    if suffix == ".csv":
        return ","
    try:
        return csv.Sniffer().sniff(sample, delimiters="\t,;").delimiter
    except csv.Error:
        return "\t"


def read_table(path: str | Path) -> tuple[list[dict[str, str]], list[str], str]:
    """Rows (column -> text), column names and delimiter of a TSV or CSV file."""
    text = Path(path).read_text(encoding="utf-8-sig")
    delimiter = delimiter_of(path, text[:4096])
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    rows = [{k: (v if v is not None else "") for k, v in row.items() if k is not None}
            for row in reader]
    return rows, list(reader.fieldnames or []), delimiter


def write_table(path: str | Path, rows: list[dict[str, str]], columns: list[str],
                delimiter: str | None = None) -> None:
    """Write rows (missing cells empty) with the delimiter of `path`'s extension."""
    delimiter = delimiter or delimiter_of(path)
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns, delimiter=delimiter, extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _number(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("nan")


@dataclass(frozen=True)
class StudyRows:
    """Study runs as arrays: configurations and what became of them."""

    configs: list[Config]
    arrays: dict[str, np.ndarray]
    source: np.ndarray  # "runs" or "random_search"
    server: np.ndarray  # lab machine (a, b, c); "" for the random search
    outcome: np.ndarray  # completed, nan (diverged), cancelled, unfinished
    val_accuracy: np.ndarray  # NaN where not reported
    seconds: np.ndarray  # time_taken_s, NaN where not recorded
    skipped: int  # rows whose values cannot describe a training

    def __len__(self) -> int:
        return len(self.configs)

    def subset(self, mask: np.ndarray) -> StudyRows:
        """The rows where `mask` is true."""
        index = np.flatnonzero(mask)
        return StudyRows([self.configs[i] for i in index],
                         {k: v[index] for k, v in self.arrays.items()}, self.source[index],
                         self.server[index], self.outcome[index], self.val_accuracy[index],
                         self.seconds[index], 0)


def _study_rows(rows: list[dict[str, str]], source: str) -> StudyRows:
    kept: list[tuple[Config, dict[str, str]]] = []
    for row in rows:
        try:
            kept.append((validate(row), row))
        except InvalidConfigError:
            continue
    configs = [c for c, _ in kept]
    column = [r for _, r in kept]
    return StudyRows(
        configs, config_arrays(configs), np.full(len(configs), source),
        np.array([r.get("server", "") for r in column], dtype=object),
        np.array([r.get("outcome", COMPLETED).strip() or UNFINISHED for r in column],
                 dtype=object),
        np.array([_number(r.get("val_accuracy", "")) for r in column]),
        np.array([_number(r.get("time_taken_s", "")) for r in column]),
        len(rows) - len(kept))


def load_study(path: str | Path, source: str | None = None) -> StudyRows:
    """Read a runs.tsv-style (with `outcome`) or random_search.tsv-style (all completed) file."""
    rows, columns, _ = read_table(path)
    kind = source or ("runs" if "outcome" in columns else "random_search")
    return _study_rows(rows, kind)


def concat(parts: list[StudyRows]) -> StudyRows:
    """One StudyRows holding all parts in order."""
    return StudyRows(
        [c for part in parts for c in part.configs],
        {k: np.concatenate([part.arrays[k] for part in parts]) for k in parts[0].arrays},
        *(np.concatenate([getattr(part, name) for part in parts])
          for name in ("source", "server", "outcome", "val_accuracy", "seconds")),
        sum(part.skipped for part in parts))
