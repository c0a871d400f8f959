"""Result files written atomically, tidy TSV tables, and the done marker of a finished job.

Every file is written to a temporary name in its own directory and moved into place with
`os.replace`, so a reader (or a killed writer) never sees half a file. A job writes its
`done.json` last: a directory without it holds no result, and a re-run redoes it.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DONE = "done.json"
TMP_MARK = ".tmp-"


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Call `write(tmp)` on a temporary sibling of `path`, then move it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}{TMP_MARK}{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _plain(value: Any) -> Any:
    """JSON-safe value: numpy scalars to Python, NaN and inf to None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: str | Path, data: Mapping[str, Any]) -> Path:
    return write_text(path, json.dumps(_plain(data), indent=2) + "\n")


def write_table(path: str | Path, table: pd.DataFrame, line_end: str = "\n") -> Path:
    """A tidy TSV (empty cells for missing values, one line per row; the study's own files
    end their lines with "\r\n")."""
    table = table.copy()
    for column in table.select_dtypes(include=["object", "string"]).columns:
        table[column] = table[column].replace(r"\s*[\t\r\n]+\s*", " ", regex=True)
    return atomic_write(path, lambda tmp: table.to_csv(tmp, sep="\t", index=False, na_rep="",
                                                       quoting=csv.QUOTE_NONE,
                                                       lineterminator=line_end))


def read_table(path: str | Path) -> pd.DataFrame:
    """A TSV written by `write_table` (or in the study's format): only empty cells are missing."""
    return pd.read_csv(path, sep="\t", keep_default_na=False, na_values=[""],
                       quoting=csv.QUOTE_NONE)


def save_figure(figure: Any, path: str | Path, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG atomically and close it (a tight bounding box only for
    figures without a layout engine: it costs a second rendering)."""
    import matplotlib.pyplot as plt

    bbox = None if figure.get_layout_engine() is not None else "tight"
    try:
        return atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=dpi,
                                                             bbox_inches=bbox))
    finally:
        plt.close(figure)


def is_done(directory: str | Path) -> bool:
    return (Path(directory) / DONE).is_file()


def mark_done(directory: str | Path, info: Mapping[str, Any]) -> Path:
    return write_json(Path(directory) / DONE, info)


def clear_partial(directory: str | Path, subdirs: tuple[str, ...] = ("figures",)) -> list[Path]:
    """Remove temporary files a killed writer left in `directory` (and its `subdirs`)."""
    directory = Path(directory)
    left = [p for d in (directory, *(directory / s for s in subdirs))
            for p in d.glob(f"*{TMP_MARK}*") if p.is_file()]
    for path in left:
        path.unlink(missing_ok=True)
    return left


def done_dirs(root: str | Path) -> list[Path]:
    """Every directory under `root` (itself included) that holds a done marker."""
    return sorted(p.parent for p in Path(root).rglob(DONE))
