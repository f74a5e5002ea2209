"""Scaling-law analysis: load run tables, fit scaling laws, quantify uncertainty.

The Python API mirrors the command line, one function per command, with the same names, defaults and
errors (keyword names are the flags): `load`, `fit`, `bootstrap`, `predict`, `allocate`, `report`, `moore`.
`scaling fit/predict/allocate/report/moore` parse their flags, call these and print. Every heavy import
(numpy, pandas, JAX) is inside the function that needs it, so `import analysis` stays light (`scaling --help`
imports this package).
"""

from __future__ import annotations

from scaling.errors import ConfigError, DataError, ScalingError

# Keyword of `fit` (the CLI flag without dashes) -> the option of analysis.fitting.fit it sets. A keyword that
# none of the chosen methods takes is an error, as the flag is.
FIT_OPTIONS = {"delta": "delta", "budgets": "budgets", "parabola": "parabola", "window": "window",
               "keep_extrapolated": "keep_extrapolated", "budget_tolerance": "budget_tolerance",
               "kaplan_form": "form", "irreducible": "irreducible", "loss": "loss", "tie": "tie"}


# `load`'s keywords and their defaults (the table flags of `scaling fit`).
LOAD_DEFAULTS = {"columns": None, "n_convention": "total", "flops": None, "drop_invalid": False,
                 "final_only": False, "loss_label": None, "best_of": None}


def load(source, *, columns: dict[str, str] | None = None, n_convention: str = "total", flops: str | None = None,
         drop_invalid: bool = False, final_only: bool = False, loss_label: str | None = None,
         best_of: str | None = None):
    """The runs in `source` (a sweep's results.parquet, a CSV, or a DataFrame) as a RunTable, read as the
    table flags of `scaling fit` say (`columns={"N": "Model Size"}` is `--columns N="Model Size"`)."""
    from analysis.loading import load_runs

    return load_runs(source, columns=columns, n_convention=n_convention, flops=flops, final_only=final_only,
                     drop_invalid=drop_invalid, loss_label=loss_label, best_of=best_of)


def fit(table, method="parametric", *, columns=None, n_convention="total", flops=None, drop_invalid=False,
        final_only=False, loss_label=None, best_of=None, drop_highest: int = 0, delta=None, loss=None, tie=None,
        budgets=None, budget_tolerance=None, parabola=None, window=None, keep_extrapolated=None, kaplan_form=None,
        irreducible=None, bootstrap: int = 0, seed: int = 0, predict_at=None, out=None):
    """`scaling fit`: fit one method (`method="isoflop"`: a FitResult) or several (a list, or names joined
    by commas: a FitComparison, one the data cannot support listed with its reason). `table` is a RunTable,
    or anything `load` reads, read with the table keywords. `out` writes the fit as JSON (one method)."""
    from analysis import diagnostics
    from analysis.fitting import quiet_numerics
    from analysis.result import FitComparison
    from scaling import hardware, io

    names = _method_names(method)
    options = {"delta": delta, "loss": loss, "tie": tie, "budgets": budgets, "budget_tolerance": budget_tolerance,
               "parabola": parabola, "window": window, "keep_extrapolated": keep_extrapolated,
               "kaplan_form": kaplan_form, "irreducible": irreducible}
    _check_out(out, names)
    _check_options(options, names)
    _check_bootstrap(bootstrap)
    hardware.enable_compilation_cache(io.cache_dir())  # a repeated fit skips XLA compilation
    reading = {"columns": columns, "n_convention": n_convention, "flops": flops, "drop_invalid": drop_invalid,
               "final_only": final_only, "loss_label": loss_label, "best_of": best_of}
    table = _as_table(table, reading)
    _check_best_of(table, names, best_of)
    with quiet_numerics():  # overflow in a wild replicate is handled; the diagnostics say what matters
        results, failed = _fit_all(table, names, options, drop_highest, bootstrap, seed, predict_at)
    if out:
        io.atomic_write(out, results[0].to_json())
    if isinstance(method, str) and len(names) == 1:
        return results[0]
    compared = diagnostics.compare_methods(results, table) if len(results) > 1 else ()
    return FitComparison(tuple(results), failed, tuple(compared))


def bootstrap(table, result, n: int = 200, *, seed: int = 0, level: float = 0.95, predict_at=None):
    """Bootstrap intervals for `result` (a FitResult or a FIT.json) fitted to `table` (`scaling fit --bootstrap
    N`): `n` resamples of the runs, refitted; the intervals, replicates and predictions land in the result."""
    from analysis.fitting import quiet_numerics
    from analysis.resampling import bootstrap as resample

    _check_bootstrap(n)
    if n == 0:
        return _as_fit(result)
    with quiet_numerics():
        return resample(_as_table(table, {}), _as_fit(result), n=n, seed=seed, level=level, predict_at=predict_at)


def predict(fit, N=None, D=None, *, points=None, columns: dict[str, str] | None = None, level: float = 0.95,
            max_extrapolation: float = 100.0, seed: int = 0):
    """`scaling predict`: the loss of new runs at paired (N, D) (one value pairs with every value of the
    other), or at the rows of `points` (a CSV path or a DataFrame with columns N and D, renamed by
    `columns`), with bootstrap prediction intervals and how far each point extrapolates."""
    from analysis.prediction import predict as predict_points

    N, D = _prediction_points(N, D, points, columns)
    return predict_points(_as_fit(fit), N, D, level=level, max_extrapolation=max_extrapolation, seed=seed)


def allocate(fit, budget: float, *, vocab_size: int | None = None, max_extrapolation: float = 100.0):
    """`scaling allocate`: compute-optimal N, D, the loss they buy and a model shape at `budget` FLOPs."""
    from analysis.allocation import allocate as allocate_budget

    return allocate_budget(_as_fit(fit), budget, vocab_size=vocab_size, max_extrapolation=max_extrapolation)


def report(source, out, *, fit=None, columns: dict[str, str] | None = None, n_convention: str | None = None,
           flops: str | None = None, budgets=None, drop_highest: int = 0, bootstrap: int = 200, seed: int = 0,
           title: str | None = None, loss_label: str | None = None, command: str | None = None,
           format="png,svg", style: str = "screen"):
    """`scaling report`: the HTML report of a sweep directory or results table in `out` (new, empty, or an
    earlier report). A sweep whose results.parquet is missing or stale is collected first. `command` is the
    line the page says made it (default: this call). Figures in `style` (screen, paper), saved in each of
    `format` (png, svg, pdf; PNG and SVG always, for the page)."""
    from analysis import figure_style
    from analysis.reporting.build import build_report
    from scaling.io import check_output_dir

    _check_bootstrap(bootstrap, " (default 200)")
    formats, style = figure_style.parse_formats(format), figure_style.get_style(style)
    check_output_dir(out, "scaling report")  # refused before anything is collected into the sweep
    if command is None:
        command = f"analysis.report({str(source)!r}, {str(out)!r})"
    return build_report(source, out, fit_path=fit, columns=columns, n_convention=n_convention, flops=flops,
                        n_boot=bootstrap, seed=seed, drop_highest=drop_highest, budgets=budgets, title=title,
                        command=command, loss_label=loss_label, notes=collect_if_needed(source), formats=formats,
                        style=style)


def moore(*, out=None, models=None, hardware=None, transistors=None, fit=None, bootstrap: int = 2000,
          seed: int = 0, anchor_year: int = 2025, until: int = 2035, max_extrapolation: float = 100.0,
          allow_extrapolation: bool = False, algorithmic=None, algorithmic_halving_months: float | None = None,
          algorithmic_columns=None, data_stock_tokens: float = 3e14, max_feasible_compute: float = 2e29,
          format="png,svg", style: str = "screen"):
    """`scaling moore`: doubling times of compute, hardware and transistors, compute scenarios through a
    compute-optimal frontier, and the loss each buys per year. With `out`, writes moore.json, summary.md,
    summary.html and the figures there (as the CLI does), drawn in `style` (screen, paper) and saved in each
    of `format` (png, svg, pdf; PNG always, which the summary shows); without, writes nothing."""
    from analysis import figure_style
    from analysis.result import Moore
    from analysis.trends.figures import SUMMARY_FORMATS
    from analysis.trends import limits, summary
    from scaling.io import check_output_dir

    _check_moore_numbers(bootstrap, anchor_year, until, max_extrapolation, data_stock_tokens, max_feasible_compute)
    drawing = figure_style.parse_formats(format, also=SUMMARY_FORMATS), figure_style.get_style(style)
    if algorithmic is not None and algorithmic_halving_months is not None:
        raise ConfigError("give algorithmic progress either as --algorithmic CSV or as --algorithmic-halving-months, "
                          "not both")
    if algorithmic_columns and not algorithmic:
        raise ConfigError("--algorithmic-columns names columns of --algorithmic CSV; pass --algorithmic too")
    if out is not None:
        check_output_dir(out, "scaling moore")  # before the bootstrap: a directory of the user's is refused at once
    series = _moore_series(models, hardware, transistors)
    frontier = _moore_frontier(fit)
    options = summary.Options(
        n_boot=bootstrap, seed=seed, anchor_year=anchor_year, until=until,
        history_from=min(2020, anchor_year - 5),
        algorithms=_algorithmic_progress(algorithmic, algorithmic_halving_months, algorithmic_columns, bootstrap, seed),
        limits=limits.Limits(data_stock_tokens, max_feasible_compute),
        max_extrapolation=max_extrapolation, allow_extrapolation=allow_extrapolation)
    inputs = {"models": _text(models), "hardware": _text(hardware), "transistors": _text(transistors),
              "fit": _text(fit), "algorithmic": _text(algorithmic), "bootstrap": bootstrap, "seed": seed,
              "allow_extrapolation": allow_extrapolation, "max_extrapolation": max_extrapolation}
    result, trends, projection, placed = summary.analyze(*series, frontier, options, inputs)
    figures = (_write_moore(out, result, trends, projection, placed, frontier, anchor_year, *drawing)
               if out is not None else ())
    warnings = tuple(f"--hardware {hardware} gives no trend for {key} (it needs 3 or more accelerators with the "
                     "figures at different dates); the published rate stands in"
                     for key in HARDWARE_KEYS if hardware is not None and result["series"][key]["source"] == "published")
    return Moore(result, trends, projection, placed, frontier, anchor_year, out=out, figures=figures, warnings=warnings)


# ---- helpers: the checks and steps each command shares with its flags -------------------------------------

HARDWARE_KEYS = ("hardware_flops", "hardware_flops_per_dollar")


def _text(path) -> str | None:
    return None if path is None else str(path)


def _method_names(method) -> list[str]:
    """One name, names joined by commas (as --method takes them), or a list of names."""
    from analysis.fitting import METHODS

    text = method if isinstance(method, str) else ",".join(map(str, method))
    names = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in METHODS]
    if not names or unknown:
        raise ScalingError(f"--method {text!r}: use one or more of {', '.join(METHODS)}, comma-separated")
    return list(dict.fromkeys(names))


def _check_out(out, names: list[str]) -> None:
    from pathlib import Path

    if out is None:
        return
    out = str(out)
    if len(names) > 1:
        raise ScalingError("--out writes one fit: pass a single --method with it")
    path = Path(out)
    if not out or path.is_dir() or out.endswith(("/", "\\")):
        raise ScalingError(f"--out {out!r} is a directory (or empty); pass a file path such as fit.json")
    if path.exists() and not _is_fit_file(path):
        raise ScalingError(f"--out {out} exists and is not a fit written by `scaling fit`; pass a new path "
                           "(scaling fit only replaces its own fit files)")


def _is_fit_file(path) -> bool:
    import json

    from analysis.result import SCHEMA

    try:
        return json.loads(path.read_text()).get("schema") == SCHEMA
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return False


def _check_options(options: dict, names: list[str]) -> None:
    """An option that none of the chosen methods takes is a mistake worth stopping for."""
    from analysis.fitting import method

    accepted = set().union(*(method(n).options() for n in names))
    for name, option in FIT_OPTIONS.items():
        if options[name] is not None and option not in accepted:
            raise ScalingError(f"--{name.replace('_', '-')} does not apply to --method {','.join(names)}; "
                               f"see `scaling fit --help` for which method takes it")


def _check_bootstrap(n: int, hint: str = "") -> None:
    """One resample gives no interval, and a negative count means nothing."""
    if n < 0 or n == 1:
        raise ConfigError(f"--bootstrap {n}: use 0 (no intervals) or at least 2 resamples{hint}")


def _as_table(table, reading: dict):
    """A RunTable as it is (the table keywords then have nothing to read), else `load` with them."""
    from analysis.loading import RunTable

    if not isinstance(table, RunTable):
        return load(table, **reading)
    given = sorted(k for k, v in reading.items() if v and v != LOAD_DEFAULTS[k])
    if given:
        raise ConfigError(f"{', '.join(given)} say how to read a table, and this one is already read: pass them "
                          "to analysis.load, or pass the file itself")
    return table


def _as_fit(fit):
    """A FitResult as it is; a path is a FIT.json written by `scaling fit --out` (or `analysis.fit(out=...)`)."""
    from analysis.result import FitResult, load_fit

    return fit if isinstance(fit, FitResult) else load_fit(fit)


def _check_best_of(table, names: list[str], best_of: str | None) -> None:
    """Approach 1 interpolates each size's loss along C through one loss per point, so the repeated
    points that --best-of none keeps have no meaning there."""
    import numpy as np

    if best_of != "none" or "envelope" not in names:
        return
    points = len(np.unique(np.stack([table.N, table.D]), axis=1).T)
    if points < len(table):
        raise ScalingError(f"--best-of none keeps {len(table)} rows at {points} (N, D) points, and approach 1 "
                           "(envelope) needs one loss per point: use --best-of lr, or leave envelope out of --method")


def _fit_all(table, names: list[str], options: dict, drop_highest: int, n_boot: int, seed: int, predict_at):
    """Fit each method; with several, one the data cannot support is reported (not fatal) unless all fail."""
    if len(names) == 1:
        return [_fit_one(table, names[0], options, drop_highest, n_boot, seed, predict_at)], {}
    results, failed = [], {}
    for name in names:
        try:
            results.append(_fit_one(table, name, options, drop_highest, n_boot, seed, predict_at))
        except DataError as err:
            failed[name] = str(err)
    if not results:
        raise DataError("no method could be fitted: " + "; ".join(f"{k}: {v}" for k, v in failed.items()))
    return results, failed


def _fit_one(table, name: str, options: dict, drop_highest: int, n_boot: int, seed: int, predict_at):
    import dataclasses

    from analysis import frontier
    from analysis.fitting import fit as fit_method, method
    from analysis.resampling import bootstrap as resample

    accepted = method(name).options()
    chosen = {FIT_OPTIONS[k]: (list(v) if k == "budgets" else v) for k, v in options.items()
              if v is not None and FIT_OPTIONS[k] in accepted}
    result = fit_method(table, name, drop_highest=drop_highest, **chosen)
    predict_at = None if predict_at is None else [float(c) for c in predict_at]
    if n_boot:
        return resample(table, result, n=n_boot, seed=seed, predict_at=predict_at)
    if frontier.has_frontier(result.spec.form):
        budgets = predict_at or frontier.default_budgets(float(table.C.max()))
        result = dataclasses.replace(result, predictions=frontier.predictions(result, budgets))
    return result


def _prediction_points(N, D, points, columns):
    """(N, D) from the keywords, or from the points table."""
    if points is not None:
        if N is not None or D is not None:
            raise ConfigError("give the points either as --N/--D or as --points CSV, not both")
        return _read_points(points, columns or {})
    if columns:
        raise ConfigError("--columns maps the columns of --points CSV; pass --points too")
    if N is None or D is None:
        raise ConfigError("give the points to predict at: --N 1e9 --D 2e10 (several of each, paired), "
                          "or --points CSV with columns N and D")
    return N, D


def _read_points(points, mapping: dict[str, str]):
    import pandas as pd

    if isinstance(points, pd.DataFrame):
        frame, where = points, "--points <DataFrame>"
    else:
        where = f"--points {points}"
        try:
            frame = pd.read_csv(points)
        except FileNotFoundError:
            raise DataError(f"{where}: no such file; pass a CSV with columns N and D") from None
        except Exception as err:  # pandas raises many types; all mean the same thing to the user
            raise DataError(f"{where}: could not read the CSV ({type(err).__name__}: {err})") from None
    frame = frame.rename(columns={src: dst for dst, src in mapping.items()})
    missing = [c for c in ("N", "D") if c not in frame.columns]
    if missing:
        raise DataError(f"{where}: no column(s) {missing}; the CSV has {list(frame.columns)}; map them "
                        "with --columns, e.g. --columns N=params,D=tokens")
    try:
        return frame["N"].astype(float).to_numpy(), frame["D"].astype(float).to_numpy()
    except ValueError:
        raise DataError(f"{where}: columns N and D must hold numbers") from None


def collect_if_needed(source) -> tuple[str, ...]:
    """Collect a sweep directory's results.parquet when it is missing or older than a run's summary.json
    (the report reads result files only; collecting is the sweep layer's job). Returns the note for the
    page (none when nothing was collected)."""
    from pathlib import Path

    from sweeps import store
    from sweeps.collector import collect

    source = Path(source)
    results = source / "results.parquet"
    if not source.is_dir() or not (source / "sweep.json").exists():
        return ()  # a results table, or not a sweep: the analysis says what is wrong with it
    if results.exists():
        newest = max((p.stat().st_mtime for p in store.runs_dir(source).glob("*/summary.json")), default=0.0)
        if newest <= results.stat().st_mtime:
            return ()
        why = "older than a run's summary.json"
    else:
        why = "missing"
    try:
        _, n_rows = collect(source)
    except OSError as err:
        if why == "missing":
            raise
        return (f"results.parquet is {why} and could not be collected again ({err.strerror or err}): "
                "the report shows it as it is",)
    return (f"results.parquet was {why}: collected {n_rows} row(s) from {source}",)


def _check_moore_numbers(bootstrap, anchor_year, until, max_extrapolation, data_stock_tokens,
                         max_feasible_compute) -> None:
    if bootstrap < 10:
        raise ConfigError(f"--bootstrap {bootstrap} is too few for a 95% interval; use at least 10 (default 2000)")
    if not anchor_year < until <= anchor_year + 100:
        raise ConfigError(f"--until {until} must be after --anchor-year {anchor_year} and within 100 years of it")
    for flag, value in (("--max-extrapolation", max_extrapolation), ("--data-stock-tokens", data_stock_tokens),
                        ("--max-feasible-compute", max_feasible_compute)):
        if not value > 0 or value == float("inf"):
            raise ConfigError(f"{flag} {float(value)} must be a positive finite number")
    if max_extrapolation < 1:
        raise ConfigError(f"--max-extrapolation {max_extrapolation} must be at least 1 (1 = no extrapolation)")


def _moore_series(models, hardware, transistors) -> tuple:
    """The data files read (None where not given: the series then stands in at its published rate)."""
    from analysis.trends import loaders

    hardware_rows = loaders.load_hardware(hardware) if hardware is not None else None
    if hardware_rows is not None and hardware_rows["year"].nunique() < 3:
        # too short for any trend: an error, not a silent fall-back to the published rate
        raise DataError(f"--hardware {hardware} has {len(hardware_rows)} accelerator(s) at "
                        f"{hardware_rows['year'].nunique()} release date(s); a doubling time needs at least 3 at "
                        "different dates: pass Epoch's ml_hardware.csv, or leave --hardware out to use the "
                        "published rate")
    return (loaders.load_notable_models(models) if models is not None else None, hardware_rows,
            loaders.load_transistors(transistors) if transistors is not None else None)


def _moore_frontier(fit):
    """The frontier L(N, D): a fit file, a LossFrontier as it is, or Epoch's Chinchilla refit."""
    from analysis.trends import loss_frontier

    if fit is None:
        return loss_frontier.EPOCH_CHINCHILLA
    return fit if isinstance(fit, loss_frontier.LossFrontier) else loss_frontier.load_frontier(fit)


def _algorithmic_progress(path, halving_months, columns, n_boot: int, seed: int):
    from analysis.trends import algorithmic

    if path is not None:
        rows = algorithmic.load_table(path, algorithmic.parse_columns(columns))
        return algorithmic.from_table(rows, n_boot, seed + 6, where=str(path))
    if halving_months is not None:
        return algorithmic.by_hand(halving_months, n_boot)
    return None


def _write_moore(out, result, trends, projection, placed, frontier, anchor_year, formats=("png", "svg"),
                 style="screen") -> tuple[str, ...]:
    """Built beside `out` and moved in only when complete: a failure leaves `out` untouched. A re-run
    replaces only the files listed in out/.scaling-manifest.json; files the user added stay."""
    from analysis.trends import figures, summary
    from scaling.io import atomic_write, staged_directory, to_json

    with staged_directory(out, "scaling moore") as staging:
        names = figures.write_all(staging, result, trends, projection, placed, frontier, anchor_year, formats, style)
        result["figures"] = [f"{name}.{ext}" for name in names for ext in formats]
        text = summary.markdown(result, names)
        atomic_write(staging / "summary.md", text)
        atomic_write(staging / "summary.html", summary.html_page(text))
        atomic_write(staging / "moore.json", to_json(result) + "\n")
    return tuple(names)
