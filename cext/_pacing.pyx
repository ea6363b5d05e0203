# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Pacing math (compiled): expected abandons for extra calls; twin of ``pacing_py.py``."""
from libc.math cimport exp, log, sqrt
from libc.stdlib cimport malloc, free

HORIZON_Z = (-1.2815515655446004, -0.5244005127080407, 0.0, 0.5244005127080407,
             1.2815515655446004)
HORIZON_W = 0.2
WRAP_Z = (-1.7320508075688772, 0.0, 1.7320508075688772)
WRAP_W = (0.16666666666666666, 0.6666666666666666, 0.16666666666666666)
TRIM = 1e-12
SAFE_MARGINAL = 1e-4

cdef enum:
    NH = 5
cdef double _HZ[5]
_HZ[:] = [-1.2815515655446004, -0.5244005127080407, 0.0, 0.5244005127080407, 1.2815515655446004]
cdef double _HW = 0.2
cdef double _WZ[3]
_WZ[:] = [-1.7320508075688772, 0.0, 1.7320508075688772]
cdef double _WW[3]
_WW[:] = [0.16666666666666666, 0.6666666666666666, 0.16666666666666666]
cdef double _TRIM = 1e-12
cdef double _SAFE = 1e-4


cdef inline double _norm_sf(double z) noexcept nogil:
    cdef double x = z * 0.7071067811865476
    cdef double ax = -x if x < 0.0 else x
    cdef double t = 1.0 / (1.0 + 0.5 * ax)
    cdef double ans = t * exp(-ax * ax - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (
        0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (
            1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
    if x < 0.0:
        ans = 2.0 - ans
    return 0.5 * ans


cdef inline double _ln_sf(double t, double mu, double sigma) noexcept nogil:
    if t <= 0.0:
        return 1.0
    return _norm_sf((log(t) - mu) / sigma)


def norm_sf(double z):
    """Upper tail of the standard normal (Numerical Recipes erfcc, rel. error < 1.2e-7)."""
    return _norm_sf(z)


def lognormal_sf(double t, double mu, double sigma):
    """P(X > t) for a log-normal X with log-mean ``mu`` and log-sd ``sigma``."""
    return _ln_sf(t, mu, sigma)


def lognormal_params(double mean, double sd):
    """(mu, sigma) of the log-normal with this mean and standard deviation."""
    if mean <= 0.0:
        raise ValueError(f"log-normal mean must be positive, got {mean}")
    if sd < 0.0:
        raise ValueError(f"log-normal sd must be >= 0, got {sd}")
    cdef double s2 = log(1.0 + (sd * sd) / (mean * mean))
    if s2 < 1e-6:
        s2 = 1e-6
    return log(mean) - 0.5 * s2, sqrt(s2)


cdef inline double _nonanswer_sf(double r, double phi, double fmu, double fsig,
                                 double timeout) noexcept nogil:
    cdef double ring_out = (1.0 - phi) if r < timeout else 0.0
    return phi * _ln_sf(r, fmu, fsig) + ring_out


cdef struct Dist:
    double *p
    int start   # first used slot in p
    int n       # used length
    int lo      # value of slot ``start``


cdef inline void _add_bernoulli(Dist *d, double q) noexcept nogil:
    cdef int i
    cdef double *p = d.p + d.start
    cdef int n = d.n
    if q <= 0.0:
        return
    if q > 1.0:
        q = 1.0
    p[n] = p[n - 1] * q
    i = n - 1
    while i > 0:
        p[i] = p[i] * (1.0 - q) + p[i - 1] * q
        i -= 1
    p[0] = p[0] * (1.0 - q)
    n += 1
    while n > 1 and p[n - 1] < _TRIM:
        n -= 1
    while n > 1 and p[0] < _TRIM:
        p += 1
        d.start += 1
        n -= 1
        d.lo += 1
    d.n = n


cdef inline double _expect(Dist *d, double *g, int last) noexcept nogil:
    cdef double total = 0.0
    cdef int i, l
    cdef double *p = d.p + d.start
    for i in range(d.n):
        l = d.lo + i
        if l > last:
            l = last
        total += p[i] * g[l]
    return total


cdef double *_doubles(object seq, Py_ssize_t *count) except NULL:
    cdef Py_ssize_t n = len(seq)
    cdef double *out = <double *> malloc((n + 1) * sizeof(double))
    cdef Py_ssize_t i = 0
    if out == NULL:
        raise MemoryError()
    for x in seq:
        out[i] = x
        i += 1
    count[0] = n
    return out


def plan(int free_ops, talk_elapsed, wrap_elapsed, ring_elapsed, int waiting,
         double p_answer, double tta_mu, double tta_sigma,
         double fail_share, double fail_mu, double fail_sigma, double timeout,
         double talk_mu, double talk_sigma, double wrap_mu, double wrap_sigma,
         double grace, double lam, double budget, double target, int max_new):
    """Number of new calls to launch now: (n, expected abandons, expected live answers)."""
    cdef Py_ssize_t n_talk, n_wrap, n_ring
    cdef double *talk = _doubles(talk_elapsed, &n_talk)
    cdef double *wrap = NULL
    cdef double *ring = NULL
    cdef double *ring_den = NULL
    cdef double *gbuf = NULL
    cdef double *abuf = NULL
    cdef double *lbuf = NULL
    cdef double *cbuf = NULL
    cdef double *c
    cdef double horizons[5]
    cdef double p_new[5]
    cdef double wrap_pts[3]
    cdef Dist ls[5]
    cdef Dist ad
    cdef int cap, k, j, l_, i, n, last, width
    cdef Py_ssize_t idx
    cdef double h, reach, s_a, s_b, q, end, cdf, s_ans, den, live_up, ea, e
    cdef double marginal, allowed, r, a, b, risk
    cdef double *g
    try:
        wrap = _doubles(wrap_elapsed, &n_wrap)
        ring = _doubles(ring_elapsed, &n_ring)
        if max_new < 0:
            max_new = 0
        cap = waiting + <int> n_ring + max_new + 1
        last = cap
        width = <int> (n_talk + n_wrap + n_ring + max_new) + 4
        ring_den = <double *> malloc((n_ring + 1) * sizeof(double))
        gbuf = <double *> malloc(NH * (cap + 1) * sizeof(double))
        abuf = <double *> malloc(width * sizeof(double))
        lbuf = <double *> malloc(NH * width * sizeof(double))
        cbuf = <double *> malloc(NH * (cap + 1) * sizeof(double))
        if (ring_den == NULL or gbuf == NULL or abuf == NULL or lbuf == NULL
                or cbuf == NULL):
            raise MemoryError()
        with nogil:
            for k in range(NH):
                h = exp(tta_mu + tta_sigma * _HZ[k])
                if h > timeout:
                    h = timeout
                horizons[k] = h
            live_up = <double> waiting
            for idx in range(n_ring):
                r = ring[idx]
                s_ans = p_answer * _ln_sf(r, tta_mu, tta_sigma)
                den = s_ans + (1.0 - p_answer) * _nonanswer_sf(r, fail_share, fail_mu,
                                                               fail_sigma, timeout)
                ring_den[idx] = den
                if den > 1e-300:
                    live_up += s_ans / den
            for j in range(3):
                wrap_pts[j] = exp(wrap_mu + wrap_sigma * _WZ[j])
            for k in range(NH):
                h = horizons[k]
                reach = h + grace
                ad.p = abuf
                ad.p[0] = 1.0
                ad.start = 0
                ad.n = 1
                ad.lo = 0
                for idx in range(n_talk):
                    a = talk[idx]
                    s_a = _ln_sf(a, talk_mu, talk_sigma)
                    q = 0.0
                    if s_a > 1e-300:
                        for j in range(3):
                            end = a + reach - wrap_pts[j]
                            if end > a:
                                q += _WW[j] * (s_a - _ln_sf(end, talk_mu, talk_sigma)) / s_a
                    _add_bernoulli(&ad, q)
                for idx in range(n_wrap):
                    b = wrap[idx]
                    s_b = _ln_sf(b, wrap_mu, wrap_sigma)
                    q = 0.0
                    if s_b > 1e-300:
                        q = (s_b - _ln_sf(b + reach, wrap_mu, wrap_sigma)) / s_b
                    _add_bernoulli(&ad, q)
                ad.lo += free_ops
                g = gbuf + k * (cap + 1)
                c = cbuf + k * (cap + 1)
                g[0] = 0.0
                cdf = 0.0
                for l_ in range(cap + 1):
                    i = l_ - ad.lo
                    if i >= 0 and i < ad.n:
                        cdf += ad.p[ad.start + i]
                    c[l_] = cdf
                    if l_ < cap:
                        g[l_ + 1] = g[l_] + cdf
                ls[k].p = lbuf + k * width
                ls[k].p[0] = 1.0
                ls[k].start = 0
                ls[k].n = 1
                ls[k].lo = waiting
                for idx in range(n_ring):
                    r = ring[idx]
                    den = ring_den[idx]
                    q = 0.0
                    if den > 1e-300:
                        q = p_answer * (_ln_sf(r, tta_mu, tta_sigma)
                                        - _ln_sf(r + h, tta_mu, tta_sigma)) / den
                    _add_bernoulli(&ls[k], q)
                p_new[k] = p_answer * (1.0 - _ln_sf(h, tta_mu, tta_sigma))
            ea = 0.0
            for k in range(NH):
                e = _expect(&ls[k], gbuf + k * (cap + 1), last)
                if e > ea:
                    ea = e
            n = 0
            while n < max_new:
                marginal = 0.0
                for k in range(NH):
                    marginal += _HW * _expect(&ls[k], cbuf + k * (cap + 1), last)
                allowed = budget + target * (live_up + p_answer * (n + 1))
                # The budget must hold even one standard deviation above the expected abandons.
                risk = ea + p_answer * marginal
                if marginal > _SAFE and (marginal > lam or risk + sqrt(risk) > allowed):
                    break
                ea += p_answer * marginal
                for k in range(NH):
                    _add_bernoulli(&ls[k], p_new[k])
                n += 1
        return n, ea, live_up + p_answer * n
    finally:
        free(talk)
        free(wrap)
        free(ring)
        free(ring_den)
        free(gbuf)
        free(abuf)
        free(lbuf)
        free(cbuf)
