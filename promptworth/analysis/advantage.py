"""How many labeled data points a method is worth over a baseline (Le Scao & Rush, 2021).

Both learning curves are made monotone, compared over the band of scores both reach, and at
``N_LEVELS`` equally spaced scores strictly inside that band we read off, by linear interpolation,
how many labeled examples each curve needs. Three estimators share this machinery:

``accumulated-max`` (default, the paper's)
    Per method: max over seeds at each n_train, then a running max over increasing n_train.
    Window = [max of the curves' lowest scores, min of their highest scores]. For a level ``y`` the
    labels needed are those where the curve *first* reaches ``y``: with ``i`` the first point whose
    score is >= ``y``, interpolate linearly in raw n_train between points ``i - 1`` and ``i`` (whose
    scores differ, so plateaus never divide by zero; a level at or below the first point needs the
    first size). Advantage = mean over levels of n_baseline - n_method, computed on all runs.
    ± = population std (ddof=0) over the leave-one-seed-out combinations (one seed's whole curve
    left out of each method: 4 x 4 = 16 with 4 seeds). This reproduces the published CB 90 ± 2 and
    RTE 282 ± 34 exactly; the sample std (ddof=1) would give RTE ± 35.
``seed-mean``
    The same on the mean over seeds at each n_train (made monotone by a running max) with the same
    leave-one-seed-out ± : the statistic the report's tables show, so a report quotes one number
    per method and size throughout (its advantage matrix uses it).
``mean-bootstrap``
    Mean over seeds at each n_train, made monotone by a running max; same window, levels and
    interpolation. Error bar: bootstrap that resamples each method's seeds (whole curves) with
    replacement, ``N_RESAMPLES`` times with a fixed rng seed; std (ddof=1) and percentile CI.
``log-ratio``
    Same mean curves, interpolated in log n_train; reports the geometric-mean ratio of labels
    needed, exp(mean(log n_baseline - log n_method)), with the same seed bootstrap.

A curve measured at n_train = 0 (e.g. zero-shot) reaches every score up to its score there with
0 labels, so it places no lower limit on the window; a zero-shot method is a flat curve.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import OptimizeWarning, curve_fit

from promptworth.analysis.curves import AnalysisError, check_single_group

ESTIMATORS = ("accumulated-max", "seed-mean", "mean-bootstrap", "log-ratio")
DEFAULT_ESTIMATOR = "accumulated-max"
N_LEVELS = 1000
N_RESAMPLES = 1000
RNG_SEED = 0
CI_PERCENT = 95
FIT_FORM = "score(n) = a - b·n^(-c)"
FIT_DATA = "mean score over seeds at each n_train > 0"


@dataclass(frozen=True)
class Runs:
    """One method's scores for one metric: a sizes x seeds table, NaN where a run is missing."""

    name: str
    sizes: np.ndarray
    seeds: tuple
    scores: np.ndarray

    @property
    def zero_shot(self) -> bool:
        """Measured only without training data: its curve is flat."""
        return bool(np.all(self.sizes == 0))


@dataclass(frozen=True)
class Curve:
    """A non-decreasing learning curve: ``scores[i]`` is reached with ``sizes[i]`` examples."""

    sizes: np.ndarray
    scores: np.ndarray


@dataclass(frozen=True)
class _Spec:
    """What distinguishes the estimators: which curve, which x-axis, which error bar."""

    curve: Callable[..., Curve]
    curve_name: str
    log: bool
    bootstrap: bool


@dataclass
class Advantage:
    """One estimate; ``advantage`` is in data points, or a ratio for log-ratio (see ``unit``)."""

    estimator: str
    method: str
    baseline: str
    metric: str
    advantage: float
    unit: str
    std: float | None
    window: tuple[float, float]
    n_seeds: dict[str, int]
    error_bar: str | None
    n_levels: int = N_LEVELS
    ci_low: float | None = None
    ci_high: float | None = None
    notes: list[str] = field(default_factory=list)
    targets: dict[str, dict] | None = None

    def to_dict(self) -> dict:
        """JSON-ready dict (the ``--json`` output)."""
        out = {k: v for k, v in vars(self).items() if k != "targets" or v is not None}
        out["window"] = list(self.window)
        return out


@dataclass(frozen=True)
class Fit:
    """Inverse power law ``score(n) = a - b·n^(-c)``: ``a`` is the asymptote."""

    a: float
    b: float
    c: float
    r2: float | None
    rmse: float
    n_points: int
    ceiling: float

    @property
    def at_ceiling(self) -> bool:
        """The asymptote hit its upper bound: the fit wanted an unbounded rise."""
        return self.a >= self.ceiling * (1 - 1e-6)

    def n_for(self, score: float) -> float | None:
        """Labels the fit needs to reach ``score``; None when it is at or above the asymptote."""
        return None if score >= self.a else float((self.b / (self.a - score)) ** (1 / self.c))

    def to_dict(self) -> dict:
        """JSON-ready description, including the functional form and what was fitted."""
        return {"form": FIT_FORM, "fitted_on": FIT_DATA, **vars(self)}


# ---- curves and interpolation ----------------------------------------------------------------


def accumulated_max_curve(runs: Runs, columns: np.ndarray | None = None) -> Curve:
    """Best run at each size, then running max over sizes: the paper's monotone curve."""
    return _monotone(runs, np.nanmax, columns)


def mean_curve(runs: Runs, columns: np.ndarray | None = None) -> Curve:
    """Mean over seeds at each size, made monotone by a running max (needed to invert it)."""
    return _monotone(runs, np.nanmean, columns)


def _monotone(runs: Runs, reduce: Callable, columns: np.ndarray | None) -> Curve:
    """Reduce the chosen seed columns (repeats allowed, for the bootstrap) and accumulate."""
    scores = runs.scores if columns is None else runs.scores[:, columns]
    present = ~np.all(np.isnan(scores), axis=1)
    return Curve(runs.sizes[present], np.maximum.accumulate(reduce(scores[present], axis=1)))


def score_window(a: Curve, b: Curve) -> tuple[float, float]:
    """Scores both curves reach; a curve starting at n_train = 0 sets no lower limit."""
    lows = [c.scores[0] for c in (a, b) if c.sizes[0] > 0]
    lo = max(lows) if lows else min(a.scores[0], b.scores[0])
    return float(lo), float(min(a.scores[-1], b.scores[-1]))


def score_levels(lo: float, hi: float, n_levels: int = N_LEVELS) -> np.ndarray:
    """``n_levels`` equally spaced scores strictly inside the window (the paper's 1,000)."""
    return np.linspace(lo, hi, n_levels + 2)[1:-1]


def labels_needed(curve: Curve, levels: np.ndarray, log: bool = False) -> np.ndarray:
    """Labels at which the curve first reaches each level (linear in n_train, or in log n_train).

    Levels must not exceed the curve's best score. Interpolating between the last point below the
    level and the first point at or above it never divides by zero, even on plateaus.
    """
    x = np.log(curve.sizes) if log else curve.sizes.astype(float)
    i = np.searchsorted(curve.scores, levels, side="left")
    j = np.maximum(i - 1, 0)
    rise = np.where(i > 0, curve.scores[i] - curve.scores[j], 1.0)
    frac = np.where(i > 0, (levels - curve.scores[j]) / rise, 0.0)
    needed = x[j] + frac * (x[i] - x[j])
    return np.exp(needed) if log else needed


def _gap(base: Curve, meth: Curve, log: bool) -> float | None:
    """Mean over levels of n_baseline - n_method (or of their log ratio); None without overlap."""
    lo, hi = score_window(base, meth)
    if not lo < hi:
        return None
    levels = score_levels(lo, hi)
    nb, nm = labels_needed(base, levels, log), labels_needed(meth, levels, log)
    return float(np.mean(np.log(nb / nm) if log else nb - nm))


SPECS = {
    "accumulated-max": _Spec(accumulated_max_curve, "accumulated-max", log=False, bootstrap=False),
    "seed-mean": _Spec(mean_curve, "mean (running max)", log=False, bootstrap=False),
    "mean-bootstrap": _Spec(mean_curve, "mean (running max)", log=False, bootstrap=True),
    "log-ratio": _Spec(mean_curve, "mean (running max)", log=True, bootstrap=True),
}


# ---- data selection and checks ---------------------------------------------------------------


def resolve_metric(long_df: pd.DataFrame, metric: str | None) -> str:
    """The requested metric, else the only one, else accuracy; otherwise ask the user."""
    known = sorted(long_df["metric"].unique())
    if metric is not None:
        _check_known(known, "metric", metric)
        return metric
    if len(known) == 1:
        return known[0]
    if "accuracy" in known:
        return "accuracy"
    raise AnalysisError(f"several metrics ({', '.join(known)}); choose one with --metric")


def runs_for(long_df: pd.DataFrame, method: str, metric: str) -> Runs:
    """The sizes x seeds table of one method; duplicate (seed, n_train) runs are averaged."""
    _check_known(sorted(long_df["method"].unique()), "method", method)
    _check_known(sorted(long_df["metric"].unique()), "metric", metric)
    rows = long_df[(long_df["method"] == method) & (long_df["metric"] == metric)]
    if rows.empty:
        raise AnalysisError(f"method '{method}' has no '{metric}' scores")
    table = rows.pivot_table(index="n_train", columns="seed", values="value", aggfunc="mean")
    runs = Runs(method, table.index.to_numpy(float), tuple(table.columns), table.to_numpy(float))
    if not runs.zero_shot and len(runs.sizes) < 2:
        raise AnalysisError(
            f"method '{method}' is measured at a single training size (n_train = "
            f"{runs.sizes[0]:g}); a learning curve needs at least 2 sizes"
        )
    return runs


def _check_known(known: list[str], what: str, name: str) -> None:
    """Unknown names are reported with the list of known ones."""
    if name not in known:
        raise AnalysisError(f"unknown {what} '{name}'; known {what}s: {', '.join(known)}")


def _positive_part(runs: Runs) -> tuple[Runs, str | None]:
    """log n_train cannot use n_train = 0: drop that point, or refuse a zero-shot method."""
    if runs.sizes[0] > 0:
        return runs, None
    if runs.zero_shot:
        raise AnalysisError(
            f"log-ratio cannot compare '{runs.name}': it has no training data (n_train = 0), "
            "so the ratio of labels needed is infinite; use accumulated-max or mean-bootstrap"
        )
    keep = runs.sizes > 0
    scores = runs.scores[keep]
    seeds = ~np.all(np.isnan(scores), axis=0)
    trimmed = Runs(
        runs.name, runs.sizes[keep], tuple(np.array(runs.seeds)[seeds]), scores[:, seeds]
    )
    if len(trimmed.sizes) < 2:
        raise AnalysisError(f"log-ratio needs at least 2 sizes > 0 for '{runs.name}'")
    note = (
        f"log-ratio leaves out the n_train = 0 point of {runs.name} (log 0 is undefined); "
        f"its curve starts at n_train = {trimmed.sizes[0]:g}"
    )
    return trimmed, note


# ---- estimators ------------------------------------------------------------------------------


def estimate(
    long_df: pd.DataFrame,
    baseline: str,
    method: str,
    metric: str,
    estimator: str = DEFAULT_ESTIMATOR,
    target: float | None = None,
    n_resamples: int = N_RESAMPLES,
) -> Advantage:
    """Advantage of ``method`` over ``baseline``; positive means ``method`` needs fewer labels."""
    if method == baseline:
        raise AnalysisError(f"method and baseline are the same ('{method}')")
    check_single_group(long_df)
    measured = runs_for(long_df, method, metric), runs_for(long_df, baseline, metric)
    return estimate_runs(*measured, metric, estimator, target, n_resamples)


def estimate_runs(
    meth: Runs,
    base: Runs,
    metric: str,
    estimator: str = DEFAULT_ESTIMATOR,
    target: float | None = None,
    n_resamples: int = N_RESAMPLES,
) -> Advantage:
    """`estimate` on the methods' sizes x seeds tables (runs_for), read once by the caller."""
    if estimator not in SPECS:
        raise AnalysisError(f"unknown estimator '{estimator}'; known: {', '.join(ESTIMATORS)}")
    spec = SPECS[estimator]
    measured = meth, base
    notes = _size_notes(base, meth, spec)
    if spec.log:
        (base, note_b), (meth, note_m) = _positive_part(base), _positive_part(meth)
        notes += [n for n in (note_b, note_m) if n]
    value = _gap(spec.curve(base), spec.curve(meth), spec.log)
    if value is None:
        raise AnalysisError(_no_overlap_message(spec, base, meth))
    samples = (
        _bootstrap(spec, base, meth, n_resamples)
        if spec.bootstrap
        else _leave_one_out(spec, base, meth)
    )
    result = _summarise(estimator, spec, base, meth, metric, value, samples, notes)
    if target is not None:
        result.targets = {r.name: _labels_to_target(r, spec, target) for r in measured}
    return result


def _leave_one_out(spec: _Spec, base: Runs, meth: Runs) -> list[float | None]:
    """Every way of leaving out one seed's whole curve of each method (16 with 4 seeds each)."""
    combos = itertools.product(_drop_one(base), _drop_one(meth))
    return [_gap(spec.curve(base, cb), spec.curve(meth, cm), spec.log) for cb, cm in combos]


def _drop_one(runs: Runs) -> list[np.ndarray]:
    """Seed columns left after dropping each seed in turn; a single seed is kept as is."""
    k = len(runs.seeds)
    return [np.delete(np.arange(k), i) for i in range(k)] if k > 1 else [np.arange(k)]


def _bootstrap(spec: _Spec, base: Runs, meth: Runs, n_resamples: int) -> list[float | None]:
    """Resample each method's seeds with replacement (whole curves) and re-estimate."""
    rng = np.random.default_rng(RNG_SEED)
    samples = []
    for _ in range(n_resamples):
        cb = rng.integers(0, len(base.seeds), len(base.seeds))
        cm = rng.integers(0, len(meth.seeds), len(meth.seeds))
        samples.append(_gap(spec.curve(base, cb), spec.curve(meth, cm), spec.log))
    return samples


def _summarise(
    estimator: str,
    spec: _Spec,
    base: Runs,
    meth: Runs,
    metric: str,
    value: float,
    samples: list[float | None],
    notes: list[str],
) -> Advantage:
    """Turn the point estimate and its resamples into an :class:`Advantage`."""
    kept = np.array([s for s in samples if s is not None])
    if spec.log:
        value, kept = float(np.exp(value)), np.exp(kept)
    result = Advantage(
        estimator=estimator,
        method=meth.name,
        baseline=base.name,
        metric=metric,
        advantage=value,
        unit="ratio" if spec.log else "data points",
        std=None,
        window=score_window(spec.curve(base), spec.curve(meth)),
        n_seeds={meth.name: len(meth.seeds), base.name: len(base.seeds)},
        error_bar=None,
        notes=notes,
    )
    if max(len(base.seeds), len(meth.seeds)) < 2:
        notes.append("a single seed per method: no error bar can be given (std is null)")
        return result
    notes += _spread_notes(spec, base, meth, len(samples) - len(kept), len(samples))
    if len(kept) < 2:
        return result
    if spec.bootstrap:
        result.std = float(np.std(kept, ddof=1))
        result.ci_low, result.ci_high = (float(q) for q in np.percentile(kept, _ci_percentiles()))
        result.error_bar = (
            f"{len(samples)} bootstrap resamples of seeds with replacement (rng seed "
            f"{RNG_SEED}); std and {CI_PERCENT}% percentile CI"
        )
    else:
        result.std = float(np.std(kept))
        result.error_bar = f"population std over {len(kept)} leave-one-seed-out combinations"
    return result


def _ci_percentiles() -> list[float]:
    """Two-sided percentile interval bounds."""
    tail = (100 - CI_PERCENT) / 2
    return [tail, 100 - tail]


def _spread_notes(spec: _Spec, base: Runs, meth: Runs, failed: int, total: int) -> list[str]:
    """Explain error bars that cover only one method, or that lost some resamples."""
    notes = []
    for one, other in ((base, meth), (meth, base)):
        if len(one.seeds) == 1:
            notes.append(
                f"{one.name} has a single seed: the error bar only reflects {other.name}'s runs"
            )
    if failed:
        kind = "bootstrap resamples" if spec.bootstrap else "leave-one-seed-out combinations"
        notes.append(
            f"{failed} of {total} {kind} had no overlapping score window and are left out "
            "of the error bar"
        )
    return notes


def _size_notes(base: Runs, meth: Runs, spec: _Spec) -> list[str]:
    """Notes on sizes that differ between methods and on curves that start without data."""
    notes = []
    if not (base.zero_shot or meth.zero_shot or np.array_equal(base.sizes, meth.sizes)):
        notes.append(
            f"{base.name} and {meth.name} were measured at different n_train "
            f"({base.name}: {_sizes(base)}; {meth.name}: {_sizes(meth)}); each curve is "
            "interpolated on its own sizes"
        )
    for one, other in ((base, meth), (meth, base)):
        if one.sizes[0] > 0 or spec.log:
            continue
        s0, best = spec.curve(one).scores[0], spec.curve(other).scores[-1]
        if one.zero_shot:
            note = (
                f"{one.name} has no training data (n_train = 0): treated as a flat curve: it "
                f"reaches its score ({s0:.3g}) with 0 labels, so it is ahead wherever the other "
                "curve is below that score"
            )
        else:
            note = f"{one.name} is measured at n_train = 0: scores up to {s0:.3g} need 0 labels"
        if s0 >= best:
            note += f"; {other.name} never reaches that score, so the advantage is a lower bound"
        notes.append(note)
    return notes


def _sizes(runs: Runs) -> str:
    """Compact list of sizes for messages."""
    return ", ".join(f"{n:g}" for n in runs.sizes)


def _no_overlap_message(spec: _Spec, base: Runs, meth: Runs) -> str:
    """Why no advantage is measurable, naming the dominating method when there is one."""
    cb, cm = spec.curve(base), spec.curve(meth)
    lo, _ = score_window(cb, cm)
    ranges = f"{base.name}: {_range(cb)}; {meth.name}: {_range(cm)}"
    for (win, cw), (lose, cl) in (
        ((meth.name, cm), (base.name, cb)),
        ((base.name, cb), (meth.name, cm)),
    ):
        if cw.scores[0] >= cl.scores[-1]:
            return (
                f"no advantage measurable: the score ranges do not overlap ({ranges}); {win} "
                f"dominates: it is better everywhere (its lowest score is at or above "
                f"{lose}'s best)"
            )
    return f"no advantage measurable: the score ranges only meet at {lo:.3g} ({ranges})"


def _range(curve: Curve) -> str:
    """Score range of a curve for messages."""
    lo, hi = curve.scores[0], curve.scores[-1]
    return f"{lo:.3g}" if lo == hi else f"{lo:.3g}-{hi:.3g}"


# ---- labels needed to reach a target ---------------------------------------------------------


def labels_to_target(
    long_df: pd.DataFrame,
    method: str,
    metric: str,
    target: float,
    estimator: str = DEFAULT_ESTIMATOR,
) -> dict:
    """Labels ``method`` needs to reach ``target``: interpolated inside the data, else fitted."""
    if estimator not in SPECS:
        raise AnalysisError(f"unknown estimator '{estimator}'; known: {', '.join(ESTIMATORS)}")
    check_single_group(long_df)
    return _labels_to_target(runs_for(long_df, method, metric), SPECS[estimator], target)


def _labels_to_target(runs: Runs, spec: _Spec, target: float) -> dict:
    """Interpolate on the estimator's curve; outside it, use the inverse-power-law fit."""
    curve = spec.curve(runs)
    out = {"target": target, "curve": spec.curve_name, "n_train": None, "how": "interpolated"}
    out |= {"extrapolated": False, "reachable": True, "fit": None, "note": None}
    if curve.sizes[0] == 0 and target <= curve.scores[0]:
        return out | {"n_train": 0.0, "note": "reached with no training data (n_train = 0)"}
    if runs.zero_shot:
        note = f"no training data: its score is fixed at {curve.scores[0]:.3g}, below the target"
        return out | {"how": "zero-shot", "reachable": False, "note": note}
    if curve.scores[0] < target <= curve.scores[-1]:
        return out | {"n_train": float(labels_needed(curve, np.array([target]))[0])}
    return out | _extrapolate(runs, curve, target)


def _extrapolate(runs: Runs, curve: Curve, target: float) -> dict:
    """Outside the measured scores: read the fitted curve, flagged as an extrapolation."""
    out: dict = {"how": "extrapolated", "extrapolated": True}
    try:
        fit = fit_learning_curve(runs)
    except AnalysisError as exc:
        return out | {"reachable": None, "note": f"outside the measured range and {exc}"}
    out["fit"] = fit.to_dict()
    n = fit.n_for(target)
    if n is None:
        note = f"unreachable under the fit: the target is at or above its asymptote a = {fit.a:.3g}"
        return out | {"reachable": False, "note": note}
    if target > curve.scores[-1] and n <= curve.sizes[-1]:
        note = (
            f"the fit puts the target at n_train ≈ {n:.0f}, inside the measured range where the "
            "curve never reached it; no extrapolation is given"
        )
        return out | {"reachable": None, "note": note}
    if target <= curve.scores[0]:
        smallest = float(curve.sizes[0])
        note = (
            f"already reached at the smallest measured size ({smallest:g}); the fit's estimate "
            "is capped there"
        )
        return out | {"n_train": min(n, smallest), "note": note}
    if fit.at_ceiling:
        note = "the asymptote sits at the metric's maximum: the data do not pin it down"
        return out | {"n_train": n, "note": note}
    return out | {"n_train": n}


def fit_learning_curve(runs: Runs) -> Fit:
    """Fit score(n) = a - b·n^(-c) to mean scores (bounded; a capped at the metric's maximum)."""
    keep = runs.sizes > 0
    n, y = runs.sizes[keep], np.nanmean(runs.scores[keep], axis=1)
    if len(n) < 3:
        raise AnalysisError(f"no fit: {FIT_FORM} needs at least 3 training sizes, got {len(n)}")
    ceiling = 1.0 if y.max() <= 1 else 100.0
    a0 = (y.max() + ceiling) / 2
    p0 = [a0, max((a0 - y[0]) * n[0] ** 0.5, 1e-6), 0.5]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            params, _ = curve_fit(
                _power_law, n, y, p0=p0, bounds=([0, 0, 0.01], [ceiling, np.inf, 3])
            )
    except (RuntimeError, ValueError) as exc:
        raise AnalysisError(f"the fit of {FIT_FORM} failed: {exc}") from None
    residuals = y - _power_law(n, *params)
    total = float(np.sum((y - y.mean()) ** 2))
    r2 = 1 - float(np.sum(residuals**2)) / total if total > 0 else None
    rmse = float(np.sqrt(np.mean(residuals**2)))
    return Fit(*(float(p) for p in params), r2=r2, rmse=rmse, n_points=len(n), ceiling=ceiling)


def _power_law(n: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    """Inverse power-law learning curve rising to the asymptote ``a``."""
    return a - b * n ** (-c)


# ---- all pairs -------------------------------------------------------------------------------


def advantage_matrix(
    long_df: pd.DataFrame, metric: str, estimator: str = DEFAULT_ESTIMATOR
) -> dict[tuple[str, str], dict]:
    """Advantage for every ordered (method, baseline) pair; a failing pair records ``error``."""
    methods = sorted(long_df["method"].unique())
    runs = {}
    for method in methods:  # each method's table read once, not once per pair
        try:
            check_single_group(long_df)
            runs[method] = runs_for(long_df, method, metric)
        except AnalysisError as exc:
            runs[method] = exc
    matrix = {}
    for method, baseline in itertools.permutations(methods, 2):
        try:
            unreadable = [r for r in (runs[method], runs[baseline]) if isinstance(r, Exception)]
            if unreadable:
                raise unreadable[0]
            r = estimate_runs(runs[method], runs[baseline], metric, estimator)
            cell = {"advantage": r.advantage, "std": r.std, "window": list(r.window)}
            matrix[method, baseline] = cell | {"note": "; ".join(r.notes) or None, "error": None}
        except Exception as exc:  # the report must go on: record why this pair has no number
            error = str(exc) if isinstance(exc, AnalysisError) else f"{type(exc).__name__}: {exc}"
            empty = {"advantage": None, "std": None, "window": None, "note": None}
            matrix[method, baseline] = empty | {"error": error}
    return matrix


# ---- human-readable text ---------------------------------------------------------------------


def describe(result: Advantage) -> str:
    """One paragraph: the verdict, how it was computed, then notes and targets."""
    lines = [f"{verdict(result)} ({'; '.join(_details(result))})."]
    lines += [f"  note: {note}" for note in result.notes]
    if result.targets:
        lines.append(f"labels needed to reach {result.metric} = {_first_target(result):g}:")
        lines += [f"  {name}: {_target_text(t)}" for name, t in result.targets.items()]
    return "\n".join(lines)


def verdict(r: Advantage) -> str:
    """'prompt is worth 90 ± 2 data points over head', or the ratio wording for log-ratio."""
    if r.unit == "ratio":
        more = r.advantage < 1
        factor = 1 / r.advantage if more else r.advantage
        word = "more" if more else "fewer"
        return f"{r.method} needs {factor:.1f}× {word} labels than {r.baseline} over this range"
    spread = f" ± {r.std:.0f}" if r.std is not None else ""
    text = f"{r.method} is worth {r.advantage:.0f}{spread} data points over {r.baseline}"
    return text + (f" (negative: {r.baseline} needs fewer)" if r.advantage < 0 else "")


ESTIMATOR_LABELS = {
    "accumulated-max": "accumulated-max, the paper's estimator",
    "seed-mean": "seed-mean: mean over seeds, made monotone by a running max",
    "mean-bootstrap": "mean-bootstrap: mean over seeds, made monotone by a running max",
    "log-ratio": "log-ratio: geometric mean of the ratio of labels needed, interpolated in "
    "log n_train on mean curves made monotone by a running max",
}


def _details(r: Advantage) -> list[str]:
    """How the number was obtained: estimator, metric, window, levels, error bar, seeds."""
    parts = [ESTIMATOR_LABELS[r.estimator], f"metric {r.metric}"]
    parts += [f"window {r.window[0]:.3g}–{r.window[1]:.3g}", f"{r.n_levels} levels"]
    if r.ci_low is not None:
        low, high = (
            f"{v:.1f}×" if r.unit == "ratio" else f"{v:.0f}" for v in (r.ci_low, r.ci_high)
        )
        parts.append(f"{CI_PERCENT}% CI {low}–{high}")
    parts.append(f"error bar: {r.error_bar}" if r.error_bar else "no error bar")
    parts.append("seeds: " + ", ".join(f"{k} {v}" for k, v in r.n_seeds.items()))
    return parts


def _first_target(r: Advantage) -> float:
    """The target score shared by all entries of ``r.targets``."""
    return next(iter(r.targets.values()))["target"]


def _target_text(t: dict) -> str:
    """'19 (interpolated on the accumulated-max curve)' or the extrapolation details."""
    if t["n_train"] is None:
        head = "unreachable" if t["reachable"] is False else "unknown"
    else:
        head = f"{t['n_train']:.0f}"
    if t["how"] == "interpolated":
        how = f"interpolated on the {t['curve']} curve"
    elif t["how"] == "zero-shot":
        how = "zero-shot"
    else:
        how = "extrapolated"
        if t["fit"]:
            f = t["fit"]
            r2 = "n/a" if f["r2"] is None else f"{f['r2']:.2f}"
            how += (
                f" from {FIT_FORM}, a={f['a']:.3g} b={f['b']:.3g} c={f['c']:.3g}, "
                f"R² {r2}, RMSE {f['rmse']:.3g} on {f['n_points']} sizes"
            )
    note = f"; {t['note']}" if t["note"] else ""
    return f"{head} ({how}{note})"
