"""Pacing math (pure-Python twin of ``_pacing.pyx``): how many calls to launch now.

The floor is a loss system with a grace period: a call answered at time ``u`` takes an operator
free by ``u + grace`` or is abandoned. At five look-ahead horizons ``h`` (quantiles of the time
to answer) the number of operators free by ``h + grace`` and the number of calls answered by
``h`` are Poisson-binomial sums of per-operator and per-call probabilities, conditional on the
talk, wrap-up and ring time already elapsed. A new call answered at ``h`` is abandoned when the
earlier answers have taken every operator free by then: averaged over the horizons, that is its
marginal abandon chance. Calls are added one at a time while that chance stays under ``lam``
and the expected abandons (plus one standard deviation) stay inside the window's budget.
Every arithmetic step mirrors the Cython file, so both give bit-identical results.
"""
from __future__ import annotations

from math import exp, log, sqrt

# Look-ahead horizons: the 10/30/50/70/90 % quantiles of time to answer, each standing for a
# fifth of the answers of a new call.
HORIZON_Z = (-1.2815515655446004, -0.5244005127080407, 0.0, 0.5244005127080407,
             1.2815515655446004)
HORIZON_W = 0.2
# Three-point Gauss-Hermite rule over the wrap-up time (nodes in sd units, weights).
WRAP_Z = (-1.7320508075688772, 0.0, 1.7320508075688772)
WRAP_W = (0.16666666666666666, 0.6666666666666666, 0.16666666666666666)
TRIM = 1e-12  # probability mass dropped at the tails of a distribution
SAFE_MARGINAL = 1e-4  # marginal abandon chance per live answer treated as no risk at all


def norm_sf(z: float) -> float:
    """Upper tail of the standard normal (Numerical Recipes erfcc, rel. error < 1.2e-7)."""
    x = z * 0.7071067811865476
    ax = -x if x < 0.0 else x
    t = 1.0 / (1.0 + 0.5 * ax)
    ans = t * exp(-ax * ax - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (
        0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (
            1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
    if x < 0.0:
        ans = 2.0 - ans
    return 0.5 * ans


def lognormal_sf(t: float, mu: float, sigma: float) -> float:
    """P(X > t) for a log-normal X with log-mean ``mu`` and log-sd ``sigma``."""
    if t <= 0.0:
        return 1.0
    return norm_sf((log(t) - mu) / sigma)


def lognormal_params(mean: float, sd: float) -> tuple:
    """(mu, sigma) of the log-normal with this mean and standard deviation."""
    if mean <= 0.0:
        raise ValueError(f"log-normal mean must be positive, got {mean}")
    if sd < 0.0:
        raise ValueError(f"log-normal sd must be >= 0, got {sd}")
    s2 = log(1.0 + (sd * sd) / (mean * mean))
    if s2 < 1e-6:
        s2 = 1e-6
    return log(mean) - 0.5 * s2, sqrt(s2)


def _nonanswer_sf(r: float, phi: float, fail_mu: float, fail_sigma: float,
                  timeout: float) -> float:
    """Share of unanswered calls still up after ``r`` s: early failures plus ring-outs."""
    ring_out = (1.0 - phi) if r < timeout else 0.0
    return phi * lognormal_sf(r, fail_mu, fail_sigma) + ring_out


def _add_bernoulli(pmf: list, lo: int, q: float) -> int:
    """Convolve ``pmf`` (support starting at ``lo``) with Bernoulli(q) in place; return new lo."""
    if q <= 0.0:
        return lo
    if q > 1.0:
        q = 1.0
    n = len(pmf)
    pmf.append(pmf[n - 1] * q)
    i = n - 1
    while i > 0:
        pmf[i] = pmf[i] * (1.0 - q) + pmf[i - 1] * q
        i -= 1
    pmf[0] = pmf[0] * (1.0 - q)
    while len(pmf) > 1 and pmf[len(pmf) - 1] < TRIM:
        pmf.pop()
    while len(pmf) > 1 and pmf[0] < TRIM:
        pmf.pop(0)
        lo += 1
    return lo


def plan(free_ops: int, talk_elapsed, wrap_elapsed, ring_elapsed, waiting: int,
         p_answer: float, tta_mu: float, tta_sigma: float,
         fail_share: float, fail_mu: float, fail_sigma: float, timeout: float,
         talk_mu: float, talk_sigma: float, wrap_mu: float, wrap_sigma: float,
         grace: float, lam: float, budget: float, target: float, max_new: int) -> tuple:
    """Number of new calls to launch now: (n, expected abandons, expected live answers)."""
    nh = len(HORIZON_Z)
    horizons = []
    for k in range(nh):
        h = exp(tta_mu + tta_sigma * HORIZON_Z[k])
        if h > timeout:
            h = timeout
        horizons.append(h)
    # Eventual live answers among calls already ringing (for the budget).
    live_up = float(waiting)
    ring_den = []
    for r in ring_elapsed:
        s_ans = p_answer * lognormal_sf(r, tta_mu, tta_sigma)
        den = s_ans + (1.0 - p_answer) * _nonanswer_sf(r, fail_share, fail_mu, fail_sigma,
                                                         timeout)
        ring_den.append(den)
        if den > 1e-300:
            live_up += s_ans / den
    wrap_pts = []
    for j in range(3):
        wrap_pts.append(exp(wrap_mu + wrap_sigma * WRAP_Z[j]))
    gs = []  # per horizon: g[l] = E[(l - free)+] for l = 0..cap
    cdfs = []  # per horizon: P(free <= l) for l = 0..cap
    ls_pmf = []
    ls_lo = []
    p_new = []
    cap = waiting + len(ring_elapsed) + max_new + 1
    for k in range(nh):
        h = horizons[k]
        reach = h + grace
        # Operators free by h + grace.
        a_pmf = [1.0]
        a_lo = 0
        for a in talk_elapsed:
            s_a = lognormal_sf(a, talk_mu, talk_sigma)
            q = 0.0
            if s_a > 1e-300:
                for j in range(3):
                    end = a + reach - wrap_pts[j]
                    if end > a:
                        q += WRAP_W[j] * (s_a - lognormal_sf(end, talk_mu, talk_sigma)) / s_a
            a_lo = _add_bernoulli(a_pmf, a_lo, q)
        for b in wrap_elapsed:
            s_b = lognormal_sf(b, wrap_mu, wrap_sigma)
            q = 0.0
            if s_b > 1e-300:
                q = (s_b - lognormal_sf(b + reach, wrap_mu, wrap_sigma)) / s_b
            a_lo = _add_bernoulli(a_pmf, a_lo, q)
        a_lo += free_ops
        # g(l) = E[(l - A)+]; g(l + 1) = g(l) + P(A <= l).
        g = [0.0] * (cap + 1)
        c = [0.0] * (cap + 1)
        cdf = 0.0
        for l_ in range(cap + 1):
            i = l_ - a_lo
            if 0 <= i < len(a_pmf):
                cdf += a_pmf[i]
            c[l_] = cdf
            if l_ < cap:
                g[l_ + 1] = g[l_] + cdf
        gs.append(g)
        cdfs.append(c)
        # Calls answered by h: waiting ones for sure, ringing ones by their conditional chance.
        l_pmf = [1.0]
        l_lo = waiting
        for i in range(len(ring_elapsed)):
            r = ring_elapsed[i]
            den = ring_den[i]
            q = 0.0
            if den > 1e-300:
                q = p_answer * (lognormal_sf(r, tta_mu, tta_sigma)
                                - lognormal_sf(r + h, tta_mu, tta_sigma)) / den
            l_lo = _add_bernoulli(l_pmf, l_lo, q)
        ls_pmf.append(l_pmf)
        ls_lo.append(l_lo)
        p_new.append(p_answer * (1.0 - lognormal_sf(h, tta_mu, tta_sigma)))
    ea = 0.0  # expected abandons among calls already up: worst horizon
    for k in range(nh):
        e = _expect(ls_pmf[k], ls_lo[k], gs[k])
        if e > ea:
            ea = e
    n = 0
    while n < max_new:
        # Chance the next call, if answered, finds every operator taken by earlier answers.
        marginal = 0.0
        for k in range(nh):
            marginal += HORIZON_W * _expect(ls_pmf[k], ls_lo[k], cdfs[k])
        allowed = budget + target * (live_up + p_answer * (n + 1))
        # The budget must hold even one standard deviation above the expected abandons.
        risk = ea + p_answer * marginal
        if marginal > SAFE_MARGINAL and (marginal > lam or risk + sqrt(risk) > allowed):
            break
        ea += p_answer * marginal
        for k in range(nh):
            ls_lo[k] = _add_bernoulli(ls_pmf[k], ls_lo[k], p_new[k])
        n += 1
    return n, ea, live_up + p_answer * n


def _expect(pmf: list, lo: int, g: list) -> float:
    """E[g(L)] for L distributed as ``pmf`` from ``lo``."""
    total = 0.0
    last = len(g) - 1
    for i in range(len(pmf)):
        l_ = lo + i
        if l_ > last:
            l_ = last
        total += pmf[i] * g[l_]
    return total
