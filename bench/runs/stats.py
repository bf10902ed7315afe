"""The study's statistics: small-sample intervals and tests, a multiplicity correction, the
smallest effect a design can detect, and the difference of two frameworks' effects.

Every comparison is an `Estimate`: an effect (signed so that a positive value supports the
claim), its 95 % interval, and one-sided p-values against any value of the effect. From those:

- p0   = 2 min(P(effect <= 0), P(effect >= 0)): the two-sided test of "no effect"; p0 < 0.05
  exactly when the 95 % interval excludes 0;
- p_eq = 2 max(P(effect <= -m), P(effect >= m)) (two one-sided tests, TOST, on the same
  two-sided scale): p_eq < 0.05 exactly when the 95 % interval lies inside +-m;
- p_out = 2 min(P(effect <= m), P(effect >= -m)): p_out < 0.05 exactly when the 95 % interval
  lies wholly outside +-m.

Methods suit three to ten seeds (no bootstrap): Welch's t for a difference of means (unequal
variances, Welch-Satterthwaite degrees of freedom), Student's t for one group, the F
distribution for a ratio of two variances (exact for normal data), and for a difference of two
failure rates Newcombe's hybrid score interval (Wilson intervals of each rate) with Fisher's
exact test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, stats

LEVEL = 0.95
NAN = float("nan")
CORRECTIONS = {
    "holm": "Holm (step-down, family-wise error rate)",
    "bh": "Benjamini-Hochberg (false discovery rate)",
    "none": "none",
}


@dataclass
class Estimate:
    effect: float
    lo: float
    hi: float
    kind: str = "t"  # "t" (effect / se ~ t(df)), "logvar" (F), "rates" (Fisher), "none"
    se: float = NAN
    df: float = NAN
    extra: dict = field(default_factory=dict)

    def p_greater(self, v: float) -> float:
        """One-sided p-value of H0: effect <= v (small when the effect is above v)."""
        if self.kind == "t" and self.se > 0 and math.isfinite(self.df):
            return float(stats.t.sf((self.effect - v) / self.se, self.df))
        if self.kind == "t" and self.se == 0 and math.isfinite(self.effect):
            return 0.0 if self.effect > v else 1.0
        if self.kind == "logvar":  # effect = log(sd_c / sd_t); R = s_c^2 / s_t^2 ~ e^{2 theta} F(dc, dt)
            r, dc, dt = self.extra["ratio"], self.extra["df_control"], self.extra["df_treatment"]
            return float(stats.f.sf(r * math.exp(-2 * v), dc, dt))
        if self.kind == "rates" and v == 0:
            return self.extra["p_greater"]
        return NAN

    def p_less(self, v: float) -> float:
        """One-sided p-value of H0: effect >= v."""
        if self.kind == "t" and self.se > 0 and math.isfinite(self.df):
            return float(stats.t.cdf((self.effect - v) / self.se, self.df))
        if self.kind == "t" and self.se == 0 and math.isfinite(self.effect):
            return 0.0 if self.effect < v else 1.0
        if self.kind == "logvar":
            r, dc, dt = self.extra["ratio"], self.extra["df_control"], self.extra["df_treatment"]
            return float(stats.f.cdf(r * math.exp(-2 * v), dc, dt))
        if self.kind == "rates" and v == 0:
            return self.extra["p_less"]
        return NAN

    def p0(self) -> float:
        return _two_sided(min, self.p_greater(0.0), self.p_less(0.0))

    def p_eq(self, margin: float) -> float:
        if not margin > 0:
            return NAN
        return _two_sided(max, self.p_greater(-margin), self.p_less(margin))

    def p_out(self, margin: float) -> float:
        return _two_sided(min, self.p_greater(margin), self.p_less(-margin))

    def signed(self, sign: float) -> Estimate:
        """The same estimate with its effect multiplied by sign (+1 or -1)."""
        if sign > 0:
            return self
        if self.kind in ("t", "none"):
            return Estimate(-self.effect, -self.hi, -self.lo, self.kind, self.se, self.df)
        raise ValueError(f"a {self.kind} estimate is signed when it is made")


def _two_sided(pick, a: float, b: float) -> float:
    """min(1, 2 pick(a, b)) of two one-sided p-values; NaN (no test) when either is NaN."""
    if not (math.isfinite(a) and math.isfinite(b)):
        return NAN
    return min(1.0, 2 * pick(a, b))


def _nan_estimate() -> Estimate:
    return Estimate(NAN, NAN, NAN, "none")


def welch(a, b, level: float = LEVEL) -> Estimate:
    """mean(a) - mean(b), Welch's t interval (Welch-Satterthwaite df)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 1 or len(b) < 1:
        return _nan_estimate()
    diff = float(np.mean(a) - np.mean(b))
    if len(a) < 2 or len(b) < 2:
        return Estimate(diff, NAN, NAN, "none")
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:  # no spread at all: the difference is exact
        return Estimate(diff, diff, diff, "t", 0.0, float(len(a) + len(b) - 2))
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    return Estimate(diff, diff - half, diff + half, "t", se, float(df))


def one_sample(x, mu0: float = 0.0, level: float = LEVEL) -> Estimate:
    """mean(x) - mu0 with Student's t interval."""
    x = np.asarray(x, np.float64)
    if len(x) < 1:
        return _nan_estimate()
    m = float(np.mean(x)) - mu0
    if len(x) < 2:
        return Estimate(m, NAN, NAN, "none")
    se = float(np.std(x, ddof=1)) / math.sqrt(len(x))
    if se == 0:
        return Estimate(m, m, m, "t", 0.0, float(len(x) - 1))
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1)) * se
    return Estimate(m, m - half, m + half, "t", se, float(len(x) - 1))


def spread_ratio(control, treatment, level: float = LEVEL) -> Estimate:
    """log(sd(control) / sd(treatment)) of log values (positive when the treatment varies less
    from seed to seed; the sd of log values is close to the coefficient of variation), with the
    F interval: s_c^2 / s_t^2 ~ (sigma_c^2 / sigma_t^2) F(n_c - 1, n_t - 1) for normal data."""
    c, t = (np.log(np.asarray(v, np.float64)) for v in (control, treatment))
    if len(c) < 2 or len(t) < 2 or not (np.all(np.isfinite(c)) and np.all(np.isfinite(t))):
        return _nan_estimate()
    vc, vt = float(np.var(c, ddof=1)), float(np.var(t, ddof=1))
    if vc == 0 or vt == 0:
        return _nan_estimate()
    r, dc, dt = vc / vt, len(c) - 1, len(t) - 1
    q = (1 - level) / 2
    lo = 0.5 * math.log(r / stats.f.ppf(1 - q, dc, dt))
    hi = 0.5 * math.log(r / stats.f.ppf(q, dc, dt))
    return Estimate(0.5 * math.log(r), lo, hi, "logvar", extra={"ratio": r, "df_control": dc, "df_treatment": dt})


def wilson(k: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson's score interval of a proportion k / n."""
    if n == 0:
        return NAN, NAN
    z = float(stats.norm.ppf(0.5 + level / 2))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def rate_difference(
    k_control: int, n_control: int, k_treatment: int, n_treatment: int, level: float = LEVEL
) -> Estimate:
    """rate(control) - rate(treatment) of failures (positive when the treatment fails less),
    Newcombe's hybrid score interval (1998, method 10) and Fisher's exact one-sided tests."""
    if n_control == 0 or n_treatment == 0:
        return _nan_estimate()
    p1, p2 = k_control / n_control, k_treatment / n_treatment
    l1, u1 = wilson(k_control, n_control, level)
    l2, u2 = wilson(k_treatment, n_treatment, level)
    d = p1 - p2
    lo = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    hi = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    table = [[k_control, n_control - k_control], [k_treatment, n_treatment - k_treatment]]
    p_gt = float(stats.fisher_exact(table, alternative="greater")[1])
    p_lt = float(stats.fisher_exact(table, alternative="less")[1])
    return Estimate(d, lo, hi, "rates", extra={"p_greater": p_gt, "p_less": p_lt})


# -- multiplicity -------------------------------------------------------------------------------
def holm(p) -> list[float]:
    """Holm's step-down adjusted p-values: sorted ascending, p_(i) (m - i + 1) made monotone;
    NaN stays NaN and does not count in m."""
    return _adjust(p, "holm")


def benjamini_hochberg(p) -> list[float]:
    """Benjamini-Hochberg adjusted p-values: sorted ascending, min over j >= i of p_(j) m / j."""
    return _adjust(p, "bh")


def _adjust(p, method: str) -> list[float]:
    p = [float(x) for x in p]
    idx = [i for i, x in enumerate(p) if math.isfinite(x)]
    m = len(idx)
    out = list(p)
    if m == 0 or method == "none":
        return out
    order = sorted(idx, key=lambda i: p[i])
    if method == "holm":
        running = 0.0
        for rank, i in enumerate(order):
            running = max(running, min(1.0, (m - rank) * p[i]))
            out[i] = running
    elif method == "bh":
        running = 1.0
        for rank in range(m - 1, -1, -1):
            i = order[rank]
            running = min(running, m * p[i] / (rank + 1))
            out[i] = running
    else:
        raise ValueError(f"unknown correction {method!r}: {', '.join(CORRECTIONS)}")
    return out


def adjust(p, method: str) -> list[float]:
    if method not in CORRECTIONS:
        raise ValueError(f"unknown correction {method!r}: {', '.join(CORRECTIONS)}")
    return _adjust(p, method)


# -- power --------------------------------------------------------------------------------------
def t_power(delta: float, sd: float, n1: int, n2: int | None = None, alpha: float = 0.05) -> float:
    """Power of the two-sided Student t test (two samples of n1 and n2, or one sample of n1 when
    n2 is None) to detect a true effect delta with standard deviation sd: the noncentral t,
    P(|T| > t_crit) with T ~ nct(df, ncp)."""
    if n2 is None:
        df, ncp = n1 - 1, delta / (sd / math.sqrt(n1))
    else:
        df, ncp = n1 + n2 - 2, delta / (sd * math.sqrt(1 / n1 + 1 / n2))
    tc = float(stats.t.ppf(1 - alpha / 2, df))
    return float(stats.nct.sf(tc, df, ncp) + stats.nct.cdf(-tc, df, ncp))


def detectable_effect(sd: float, n1: int, n2: int | None = None, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true effect the two-sided Student t test at `alpha` detects with `power`
    (noncentral t, solved for the effect), in the units of sd; NaN without a spread estimate."""
    if not (math.isfinite(sd) and sd > 0) or n1 < 2 or (n2 is not None and n2 < 2):
        return NAN
    scale = sd / math.sqrt(n1) if n2 is None else sd * math.sqrt(1 / n1 + 1 / n2)
    hi = 1.0
    while t_power(hi * scale, sd, n1, n2, alpha) < power:
        hi *= 2
    ncp = optimize.brentq(lambda c: t_power(c * scale, sd, n1, n2, alpha) - power, 0.0, hi, xtol=1e-10)
    return float(ncp * scale)


def pooled_sd(*groups) -> float:
    groups = [np.asarray(g, np.float64) for g in groups if len(g) > 1]
    dof = sum(len(g) - 1 for g in groups)
    if dof == 0:
        return NAN
    return float(math.sqrt(sum(np.var(g, ddof=1) * (len(g) - 1) for g in groups) / dof))


# -- two frameworks ------------------------------------------------------------------------------
def difference(a: Estimate, b: Estimate, level: float = LEVEL) -> Estimate:
    """a.effect - b.effect with a t interval (se = sqrt(se_a^2 + se_b^2), Welch-Satterthwaite
    df) for two t estimates; NaN otherwise. It treats the two as independent."""
    if a.kind != "t" or b.kind != "t" or not (math.isfinite(a.se) and math.isfinite(b.se)):
        return _nan_estimate()
    d = a.effect - b.effect
    v = a.se**2 + b.se**2
    if v == 0:
        return Estimate(d, d, d, "t", 0.0, a.df + b.df)
    df = v**2 / (a.se**4 / a.df + b.se**4 / b.df)
    half = float(stats.t.ppf(0.5 + level / 2, df)) * math.sqrt(v)
    return Estimate(d, d - half, d + half, "t", math.sqrt(v), float(df))


def agreement(diff: Estimate, margin: float) -> str:
    """agree: the difference's interval lies inside +-margin; differ: it excludes 0;
    consistent: it contains 0 but reaches past the margin (not shown equal); n/a without one."""
    if not (math.isfinite(diff.lo) and math.isfinite(diff.hi)):
        return "n/a"
    if margin > 0 and -margin < diff.lo and diff.hi < margin:
        return "agree"
    if diff.lo > 0 or diff.hi < 0:
        return "differ"
    return "consistent"
