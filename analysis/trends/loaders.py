"""Loaders for the public trend data sets, each given a path, each returning a clean pandas table.

- Epoch AI "Data on AI Models" (epoch.ai/data/ai-models, CC-BY 4.0): one row per model, either the
  "Notable AI Models" download (a `Frontier model` flag) or the full "AI Models" database (a
  `Compute rank when published` column; frontier = rank <= 10 at release, notable = a non-empty
  `Notability criteria`, or a true `is_notable`).
- Epoch AI "Machine Learning Hardware" (epoch.ai/data/machine-learning-hardware, CC-BY 4.0): one row per chip.
- Karl Rupp's "Microprocessor Trend Data" (github.com/karlrupp/microprocessor-trend-data, CC-BY 4.0): either
  the long CSV `metric, unit_description, year, value` or one of the repository's raw two-column `.dat` files.

Cleaning is the same everywhere: dates are parsed leniently ("2020-05-28", "2020-05", "2020", with or
without a time) into a decimal `year`; rows without a date or without the measured quantity are dropped;
non-positive values are treated as missing (a log-linear fit cannot use them); exact duplicate rows and
repeated model names are dropped (the first, most recently published row is kept).

Note on Epoch's `Training dataset size (datapoints)`: for language models Epoch records *words*
(tokens x 0.75), so it is kept as `dataset_size` and never used as a token count here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scaling.errors import DataError

# Candidate column names, first match wins (case- and space-insensitive): Epoch has renamed columns
# between downloads, e.g. "Training compute (FLOP)" vs "Training compute (FLOPs)".
NOTABLE_COLUMNS = {
    "model": ["Model", "System"],
    "organization": ["Organization"],
    "date": ["Publication date", "Publication date (YYYY-MM-DD)", "Release date"],
    "domain": ["Domain"],
    "params": ["Parameters"],
    "compute": ["Training compute (FLOP)", "Training compute (FLOPs)", "Training compute"],
    "dataset_size": ["Training dataset size (datapoints)", "Training dataset size (total)"],
    "frontier": ["Frontier model"],
    "compute_rank": ["Compute rank when published"],
    "notability": ["Notability criteria"],
    "is_notable": ["is_notable"],
    "confidence": ["Confidence"],
}
HARDWARE_COLUMNS = {
    "name": ["Hardware name", "Name of the hardware"],
    "manufacturer": ["Manufacturer"],
    "type": ["Type"],
    "date": ["Release date"],
    "price_usd": ["Release price (USD)"],
    "fp32": ["FP32 (single precision) performance (FLOP/s)"],
    "tf32": ["TF32 (TensorFloat-32) performance (FLOP/s)"],
    "fp16": ["FP16 (half precision) performance (FLOP/s)"],
    "tensor_fp16": ["Tensor-FP16/BF16 performance (FLOP/s)"],
    "fp8": ["FP8 performance (FLOP/s)"],
}
HARDWARE_FORMATS = ("fp32", "tf32", "fp16", "tensor_fp16", "fp8")  # peak dense FLOP/s, one column per format
REQUIRED_NOTABLE = ("model", "date", "compute")
REQUIRED_HARDWARE = ("name", "date", "fp32")
FRONTIER_RANK = 10  # Epoch: a frontier model is in the top 10 by training compute when published


def decimal_year(dates: pd.Series) -> pd.Series:
    """Datetime -> fractional calendar year at the middle of the day (2020-01-01 -> 2020.0014)."""
    year = dates.dt.year
    days_in_year = np.where(dates.dt.is_leap_year, 366.0, 365.0)
    return year + (dates.dt.day_of_year - 0.5) / days_in_year


def parse_dates(values: pd.Series) -> pd.Series:
    """Lenient date parsing: ISO dates with or without time, "YYYY-MM", "YYYY"; anything else -> NaT."""
    text = values.astype("string").str.strip()
    text = text.where(~text.str.fullmatch(r"\d{4}"), text + "-07-01")  # a bare year: its middle
    text = text.where(~text.str.fullmatch(r"\d{4}-\d{1,2}"), text + "-15")  # a bare month: its middle
    return pd.to_datetime(text, errors="coerce", format="mixed", utc=True).dt.tz_localize(None)


def _read_csv(path: str | Path, what: str) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} file not found: {path}; pass the path to the downloaded CSV")
    try:
        return pd.read_csv(path, low_memory=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise DataError(f"cannot read {what} CSV {path}: {str(err).splitlines()[0]}; "
                        f"pass the CSV exactly as downloaded") from err


def _resolve(frame: pd.DataFrame, wanted: dict[str, list[str]], required: tuple[str, ...], path, what):
    """Rename the first matching candidate column to our short name; complain about required ones."""
    def key(name):
        return "".join(str(name).lower().split())
    present = {key(c): c for c in frame.columns}
    renames, missing = {}, []
    for short, candidates in wanted.items():
        found = next((present[key(c)] for c in candidates if key(c) in present), None)
        if found is not None:
            renames[found] = short
        elif short in required:
            missing.append(f"{short} (looked for {' / '.join(repr(c) for c in candidates)})")
    if missing:
        raise DataError(f"{what} CSV {path} lacks column(s): {'; '.join(missing)}; "
                        f"pass an unmodified Epoch AI download")
    return frame.rename(columns=renames)[list(renames.values())].copy()


def _positive(values: pd.Series) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce")
    return numbers.where(numbers > 0)


def _truthy(values: pd.Series) -> pd.Series:
    return values.astype("string").str.strip().str.lower().isin(["true", "1", "yes", "y", "t"])


def load_notable_models(path: str | Path) -> pd.DataFrame:
    """Epoch's notable-models CSV, or its full "AI Models" database -> one row per model with a date and a
    training compute.

    Columns: model, organization, date, year, domain, params, compute, dataset_size, frontier (bool),
    compute_rank (rank by training compute when published; NaN unless the file gives it), notable (bool),
    language (bool: the domain list names Language), confidence.
    """
    frame = _resolve(_read_csv(path, "notable-models"), NOTABLE_COLUMNS, REQUIRED_NOTABLE, path, "notable-models")
    frame["date"] = parse_dates(frame["date"])
    frame["compute"] = _positive(frame["compute"])
    frame["frontier"] = _frontier_flags(frame, path)
    frame["notable"] = _notable_flags(frame, path)
    for column in ("params", "dataset_size", "compute_rank"):
        frame[column] = _positive(frame[column]) if column in frame else np.nan
    for column in ("organization", "domain", "confidence"):
        if column not in frame:
            frame[column] = ""
    frame = frame.drop(columns=[c for c in ("notability", "is_notable") if c in frame])
    frame["language"] = frame["domain"].astype("string").str.contains("language", case=False, na=False)
    frame = frame.dropna(subset=["date", "compute"]).drop_duplicates()
    frame = frame.sort_values("date", ascending=False).drop_duplicates(subset=["model"], keep="first")
    if frame.empty:
        raise DataError(f"notable-models CSV {path} has no row with both a publication date and a training "
                        f"compute; pass Epoch's notable_ai_models.csv")
    frame["year"] = decimal_year(frame["date"])
    return frame.sort_values("date").reset_index(drop=True)


def _frontier_flags(frame: pd.DataFrame, path) -> pd.Series:
    """Epoch's definition, from the rank where the file has it (the full database), else its flag."""
    if "compute_rank" in frame:
        return _positive(frame["compute_rank"]) <= FRONTIER_RANK  # no rank (NaN): not frontier
    if "frontier" in frame:
        return _truthy(frame["frontier"])
    raise DataError(f"notable-models CSV {path} lacks column 'Compute rank when published' (full AI Models "
                    f"database) or 'Frontier model' (notable-models download), so frontier models cannot be "
                    f"told apart; pass an unmodified Epoch AI download")


def _notable_flags(frame: pd.DataFrame, path) -> pd.Series:
    if "notability" in frame:
        return frame["notability"].astype("string").str.strip().fillna("") != ""
    if "is_notable" in frame:
        return _truthy(frame["is_notable"])
    raise DataError(f"notable-models CSV {path} lacks column 'Notability criteria' (or 'is_notable'), so "
                    f"notable models cannot be told apart; pass an unmodified Epoch AI download")


def load_hardware(path: str | Path) -> pd.DataFrame:
    """Epoch's ML-hardware CSV -> one row per accelerator with a release date and at least one FLOP/s figure.

    Peak dense FLOP/s (no sparsity), one column per number format (HARDWARE_FORMATS): fp32, tf32, fp16
    (non-tensor), tensor_fp16 (tensor FP16/BF16), fp8. Formats are never merged: a chip's FP8 figure is not
    its FP32 figure, and a trend that took the fastest format per chip would mix them. price_usd is the
    launch price. Missing or zero values are NaN.
    """
    frame = _resolve(_read_csv(path, "ML-hardware"), HARDWARE_COLUMNS, REQUIRED_HARDWARE, path, "ML-hardware")
    frame["date"] = parse_dates(frame["date"])
    for column in HARDWARE_FORMATS + ("price_usd",):
        frame[column] = _positive(frame[column]) if column in frame else np.nan
    for column in ("manufacturer", "type"):
        if column not in frame:
            frame[column] = ""
    frame = frame.dropna(subset=["date"]).dropna(subset=list(HARDWARE_FORMATS), how="all").drop_duplicates()
    frame = frame.drop_duplicates(subset=["name", "date"], keep="first")
    if frame.empty:
        raise DataError(f"ML-hardware CSV {path} has no row with both a release date and a FLOP/s figure; "
                        f"pass Epoch's ml_hardware.csv")
    frame["year"] = decimal_year(frame["date"])
    return frame.sort_values("date").reset_index(drop=True)


def load_transistors(path: str | Path) -> pd.DataFrame:
    """Rupp's microprocessor data -> columns year (decimal), transistors (count, not thousands).

    Accepts the long CSV (`metric, unit_description, year, value`, metric `transistors_thousands`) or the
    raw `transistors.dat` from Rupp's repository (whitespace-separated `year value`, value in thousands,
    `#` comments).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"transistor data file not found: {path}; pass Rupp's CSV or transistors.dat")
    if path.suffix.lower() == ".dat":
        try:
            raw = pd.read_csv(path, sep=r"\s+", comment="#", header=None, usecols=[0, 1], names=["year", "value"])
        except (pd.errors.ParserError, ValueError, pd.errors.EmptyDataError) as err:
            raise DataError(f"cannot read {path} as two columns `year value`: {err}; "
                            f"pass Rupp's 50yrs/transistors.dat unchanged") from err
    else:
        raw = _read_csv(path, "transistor")
        columns = {c.lower().strip(): c for c in raw.columns}
        if not {"metric", "year", "value"} <= set(columns):
            raise DataError(f"transistor CSV {path} needs columns metric, year, value (Rupp's data in long "
                            f"format); found {', '.join(map(str, raw.columns))}")
        raw = raw.rename(columns={columns[k]: k for k in ("metric", "year", "value")})
        raw = raw[raw["metric"].astype("string").str.strip().str.lower() == "transistors_thousands"]
        if raw.empty:
            raise DataError(f"transistor CSV {path} has no rows with metric 'transistors_thousands'; "
                            f"pass Rupp's merged microprocessor trend data")
    frame = pd.DataFrame({"year": pd.to_numeric(raw["year"], errors="coerce"),
                          "transistors": _positive(raw["value"]) * 1e3})
    frame = frame.dropna().drop_duplicates().sort_values("year").reset_index(drop=True)
    if frame.empty:
        raise DataError(f"transistor data {path} has no row with a year and a positive count")
    return frame
