"""Pacing math, compiled or pure Python as ``cext.IMPLEMENTATION`` says."""
from __future__ import annotations

from cext import select

_impl = select("pacing")

plan = _impl.plan
norm_sf = _impl.norm_sf
lognormal_sf = _impl.lognormal_sf
lognormal_params = _impl.lognormal_params
IMPLEMENTATION_MODULE = _impl.__name__
