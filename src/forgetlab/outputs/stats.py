"""Statistics over seeds, in one home: every spread, interval and test the report, compare, summarize and
the findings state.

A number forgetlab prints is a sample of n seeds. Non-finite values (a seed that diverged to NaN or inf)
are left out and n counts the rest; the caller names what was left out (``Sample.left_out``). sd is the
sample standard deviation (n - 1). Intervals are two-sided at ``level`` (95%) under Student's t:

    mean            mean ± t(1 - a/2, n-1) · s / √n                  where the mean of our runs lies
    prediction      mean ± t(1 - a/2, n-1) · s · √(1 + 1/n)          where one new run of ours lies
    Welch           (m1 - m2) ± t(1 - a/2, ν) · √(s1²/n1 + s2²/n2)   a difference of two means, ν by
                                                                     Welch-Satterthwaite
    paired          mean(a_i - b_i) ± t(1 - a/2, n-1) · s_d / √n     two quantities of the same seeds

``reference_test`` is the flag of a number against a reference (a single run, or a published mean),
``against`` an interval's verdict on a threshold (inconclusive when the interval spans it), and
``window_test`` / ``pooled`` the test of a window of a series against its smooth trend, per seed and
pooled over seeds. Pure functions of plain numbers; scipy supplies Student's t and the normal
distribution (imported when first needed: a run that only prints means never loads it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

LEVEL = 0.95


def is_finite(v) -> bool:
    """A number (not None, not NaN, not ±inf)."""
    return v is not None and math.isfinite(v)


def finite(values: Iterable) -> list[float]:
    """The finite values, in order."""
    return [float(v) for v in values if is_finite(v)]


@dataclass(frozen=True)
class Sample:
    """n finite values of seeds: their mean and sample sd (NaN below 2 values), and the positions of the
    values left out (not finite)."""

    n: int
    mean: float
    sd: float
    dropped: tuple[int, ...] = ()

    @property
    def left_out(self) -> tuple[int, ...]:
        """The positions dropped among finite values: seeds that diverged while others did not. Where no
        value is finite the quantity is undefined (BWT of one task), and nothing is said to be left out."""
        return self.dropped if self.n else ()


def sample(values: Iterable) -> Sample:
    vals = list(values)
    kept = finite(vals)
    dropped = tuple(i for i, v in enumerate(vals) if not is_finite(v))
    n = len(kept)
    mean = math.fsum(kept) / n if n else math.nan
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in kept) / (n - 1)) if n > 1 else math.nan
    return Sample(n, mean, sd, dropped)


def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t with ``df`` degrees of freedom (NaN for df <= 0): scipy's ``stdtrit``,
    the function behind ``scipy.stats.t.ppf``."""
    if not df > 0:
        return math.nan
    from scipy.special import stdtrit

    return float(stdtrit(df, p))


def normal_quantile(p: float) -> float:
    """The p-quantile of the standard normal distribution (scipy's ``ndtri``)."""
    from scipy.special import ndtri

    return float(ndtri(p))


def _two_sided(level: float) -> float:
    if not 0 < level < 1:
        raise ValueError(f"level {level} must lie in (0, 1)")
    return (1 + level) / 2


@dataclass(frozen=True)
class Interval:
    """A two-sided interval around ``estimate``; NaN bounds where it cannot be measured (n < 2)."""

    estimate: float
    low: float
    high: float
    n: int
    level: float = LEVEL

    @property
    def measured(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    def excludes(self, x: float) -> bool:
        """``x`` lies outside the interval (False where the interval is not measured)."""
        return self.measured and (x < self.low or x > self.high)


def _around(estimate: float, half: float, n: int, level: float) -> Interval:
    return Interval(estimate, estimate - half, estimate + half, n, level)


def mean_interval(values: Iterable, level: float = LEVEL) -> Interval:
    """The t-interval of the mean of the finite values."""
    s = sample(values)
    return _around(s.mean, t_quantile(_two_sided(level), s.n - 1) * s.sd / math.sqrt(max(s.n, 1)), s.n, level)


def prediction_interval(values: Iterable, level: float = LEVEL) -> Interval:
    """Where one new run from the distribution of these finite values lies with probability ``level``."""
    s = sample(values)
    half = t_quantile(_two_sided(level), s.n - 1) * s.sd * math.sqrt(1 + 1 / max(s.n, 1))
    return _around(s.mean, half, s.n, level)


def welch(mean_a: float, sd_a: float, n_a: int, mean_b: float, sd_b: float, n_b: int, level: float = LEVEL) -> Interval:
    """Welch's interval of mean_a - mean_b from two samples' means, sds and sizes (degrees of freedom by
    Welch-Satterthwaite); ``n`` of the result: n_a + n_b."""
    if n_a < 2 or n_b < 2:
        return Interval(mean_a - mean_b, math.nan, math.nan, n_a + n_b, level)
    va, vb = sd_a**2 / n_a, sd_b**2 / n_b
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1)) if se > 0 else n_a + n_b - 2
    return _around(mean_a - mean_b, t_quantile(_two_sided(level), df) * se, n_a + n_b, level)


def difference_interval(a: Iterable, b: Iterable, level: float = LEVEL) -> Interval:
    """Welch's interval of mean(a) - mean(b) for two independent sets of runs (finite values)."""
    sa, sb = sample(a), sample(b)
    return welch(sa.mean, sa.sd, sa.n, sb.mean, sb.sd, sb.n, level)


def paired_interval(a: Sequence, b: Sequence, level: float = LEVEL) -> Interval:
    """The interval of the mean of a_i - b_i over seeds i (two quantities measured on the same seeds,
    e.g. two layers of one network); pairs where either value is not finite are left out."""
    if len(a) != len(b):
        raise ValueError(f"paired values need one of each per seed: {len(a)} against {len(b)}")
    return mean_interval([x - y for x, y in zip(a, b, strict=True) if is_finite(x) and is_finite(y)], level)


# ---------------------------------------------------------------------------------------------
# Verdicts: an interval against a threshold, a reference against our runs
# ---------------------------------------------------------------------------------------------

ABOVE, BELOW, INCONCLUSIVE = "above", "below", "inconclusive"


def side(interval: Interval, threshold: float) -> str:
    """ABOVE or BELOW when the whole interval lies on one side of ``threshold``, else INCONCLUSIVE
    (also when the interval is not measured: fewer than 2 seeds)."""
    if interval.measured and interval.low > threshold:
        return ABOVE
    if interval.measured and interval.high < threshold:
        return BELOW
    return INCONCLUSIVE


def against(values: Iterable, threshold: float, level: float = LEVEL) -> tuple[str, Interval]:
    """The verdict of the t-interval of the mean of ``values`` on ``threshold``, and the interval. A finding
    states it as "above/below <threshold>" or "inconclusive with n seeds" (``inconclusive``)."""
    ci = mean_interval(values, level)
    return side(ci, threshold), ci


def inconclusive(interval: Interval) -> str:
    """'inconclusive with 3 seeds' (or 'with 1 seed: no spread')."""
    n = interval.n
    return f"inconclusive with {n} seed{'s' * (n != 1)}" + (": no spread" if n < 2 else "")


@dataclass(frozen=True)
class RefTest:
    """A reference number tested against our runs. ``flagged``: True / False, or None where no test
    applies (fewer than 2 finite runs; a published mean without its number of runs and spread).
    ``test``: "prediction", "welch", "mean only" or "n < 2". ``interval``: the prediction interval of
    one of our runs (single-run reference) or Welch's interval of ours minus the reference (published
    mean); None where no test applies."""

    flagged: bool | None
    test: str
    interval: Interval | None
    n: int


def reference_test(
    ours: Iterable,
    reference: float,
    *,
    runs: int | None = 1,
    reference_sd: float | None = None,
    floor: float = 0.0,
    level: float = LEVEL,
) -> RefTest:
    """Does ``reference`` differ from our runs by more than seed noise and more than ``floor``?

    - ``runs=1``: the reference is one run (the study's numbers). Flagged when it lies outside the
      ``level`` prediction interval of one new run of ours, mean ± t(1 - a/2, n-1)·s·√(1 + 1/n), and
      differs from our mean by more than ``floor`` (the rounding or measurement floor). A run from our
      own distribution is flagged with probability 1 - level (less the floor's share).
    - ``runs=m`` and ``reference_sd`` given: the reference is a mean of m runs with that sd. Flagged when
      Welch's interval of (our mean - reference) excludes 0 and the difference exceeds ``floor``.
    - otherwise (a mean whose number of runs or spread is not known): not tested, "mean only": only the
      means are comparable.
    """
    ours, reference = list(ours), float(reference)
    s = sample(ours)
    if runs == 1:
        if s.n < 2:
            return RefTest(None, "n < 2", None, s.n)
        pi = prediction_interval(ours, level)
        return RefTest(bool(pi.excludes(reference) and abs(s.mean - reference) > floor), "prediction", pi, s.n)
    if runs is None or reference_sd is None or not is_finite(reference_sd):
        return RefTest(None, "mean only", None, s.n)
    if s.n < 2 or runs < 2:
        return RefTest(None, "n < 2", None, s.n)
    diff = welch(s.mean, s.sd, s.n, reference, reference_sd, runs, level)
    return RefTest(bool(diff.excludes(0.0) and abs(diff.estimate) > floor), "welch", diff, s.n)


# ---------------------------------------------------------------------------------------------
# A window of a series against its smooth trend, per seed and pooled over seeds
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shift:
    """The shift of a window of a series from its trend: the estimate, its standard error and the degrees
    of freedom of shift / se (a t statistic)."""

    shift: float
    se: float
    df: int

    @property
    def t(self) -> float:
        return self.shift / self.se if self.se > 0 else math.nan


def _design(x, window, degree: int) -> np.ndarray:
    """Columns 1, u, .., u^degree of x scaled to [-1/2, 1/2] (well conditioned), and the window's indicator."""
    x = np.asarray(x, float)
    u = (x - x.mean()) / (np.ptp(x) or 1.0)
    X = np.empty((len(x), degree + 2))
    X[:, : degree + 1] = u[:, None] ** np.arange(degree + 1)
    X[:, -1] = window
    return X


def ar1(x, y, window, degree: int = 2) -> float:
    """rho of AR(1) errors e_i = rho·e_(i-1) + noise around a polynomial trend of ``degree`` in x: the lag-1
    autocorrelation r of the residuals of the trend fitted without the points ``window``, over the m
    neighbour pairs outside it, corrected for its bias and clipped to [-0.9, 0.95] (NaN with too few
    points).

    r is biased low by about (1 + 3 rho + (p - 1)(1 + rho)) / m for p = degree + 1 trend coefficients
    (Marriott & Pope's (1 + 3 rho) / m for a fitted mean, (1 + rho) / m more per further coefficient; a
    simulation confirms it for p = 3, m = 46 up to rho = 0.7); the estimate solves r = rho - that bias."""
    window = np.asarray(window, bool)
    X, y, out = _design(x, window, degree)[:, :-1], np.asarray(y, float), ~window
    pair = out[1:] & out[:-1]
    m, p = int(pair.sum()), X.shape[1]
    if m <= p + 2:
        return math.nan
    Xo = X[out]
    r = y - X @ np.linalg.solve(Xo.T @ Xo, Xo.T @ y[out])
    den = float((r[:-1][pair] ** 2).sum())
    if den <= 0:
        return 0.0
    raw = float((r[1:] * r[:-1])[pair].sum()) / den
    return min(max((raw + p / m) / (1 - (p + 2) / m), -0.9), 0.95)


def window_test(x, y, window, degree: int = 2, rho: float | None = None) -> Shift:
    """How far ``y`` over the points ``window`` (a boolean mask) lies from a polynomial trend in ``x``
    through all points: least squares y = poly(x, degree) + shift·[in window] + e.

    The shift is the window's mean departure from the trend; its standard error accounts for the
    window's length (a mean of k points) and for the trend's own uncertainty. The errors e are AR(1),
    e_i = rho·e_(i-1) + noise (a momentum optimiser's consecutive updates are correlated): both sides are
    transformed by (1 - rho·L) before the fit (Cochrane-Orcutt; the first point is lost), with ``rho``
    given (estimated from several series together: ``ar1``), or estimated from this series when None;
    rho = 0 is ordinary least squares, whose shift / se has Student's t distribution with n - degree - 2
    degrees of freedom for independent normal errors (one fewer per point lost and rho estimated).
    ``x`` must be sorted and evenly spaced.
    """
    window = np.asarray(window, bool)
    X, y = _design(x, window, degree), np.asarray(y, float)
    df = len(y) - X.shape[1]
    if rho is None:
        rho, df = ar1(x, y, window, degree), df - 1
    if df < 2 or not window.any() or window.all() or not math.isfinite(rho):
        return Shift(math.nan, math.nan, 0)
    if rho != 0:
        X, y, df = X[1:] - rho * X[:-1], y[1:] - rho * y[:-1], df - 1
    inv = np.linalg.inv(X.T @ X)
    coef = inv @ (X.T @ y)
    resid = y - X @ coef
    return Shift(float(coef[-1]), math.sqrt(float(resid @ resid) / df * float(inv[-1, -1])), df)


def pooled(shifts: Sequence[Shift], level: float = LEVEL) -> tuple[Interval, float]:
    """The shifts of several seeds pooled: their inverse-variance weighted mean with its ``level``
    interval, and t = that mean / its standard error. The interval uses Student's t with the
    Welch-Satterthwaite degrees of freedom of the weighted mean, (sum w)² / sum(w²/df) (for one seed:
    that seed's own t test), so it excludes 0 exactly when |t| exceeds that quantile. Seeds without a
    measured shift are left out; ``n`` of the interval counts the rest."""
    ok = [s for s in shifts if math.isfinite(s.shift) and s.se > 0 and s.df > 0]
    if not ok:
        return Interval(math.nan, math.nan, math.nan, 0, level), math.nan
    w = np.array([1 / s.se**2 for s in ok])
    est = float(np.sum(w * np.array([s.shift for s in ok])) / w.sum())
    se = 1 / math.sqrt(float(w.sum()))
    df = float(w.sum() ** 2 / np.sum(w**2 / np.array([s.df for s in ok])))
    return _around(est, t_quantile(_two_sided(level), df) * se, len(ok), level), est / se


def detectable(interval: Interval, power: float = 0.8) -> float:
    """The smallest true shift that an interval this wide excludes from 0 with probability ``power``, to
    the normal approximation: (z(1 - a/2) + z(power)) standard errors, the standard error read from the
    interval's half-width as if it were normal (2.80 standard errors at 95% and 80%); NaN where not
    measured."""
    if not interval.measured:
        return math.nan
    z = normal_quantile(_two_sided(interval.level))
    return (z + normal_quantile(power)) * (interval.high - interval.low) / (2 * z)
