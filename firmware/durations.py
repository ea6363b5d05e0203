"""Random durations shared by the simulators and the controller's floor model."""
from __future__ import annotations

import math
import random


def lognormal(rng: random.Random, mean: float, sd: float) -> float:
    """Draw from a log-normal distribution with the given mean and standard deviation."""
    if mean <= 0:
        return 0.0
    if sd <= 0:
        return mean
    sigma2 = math.log(1.0 + (sd * sd) / (mean * mean))
    mu = math.log(mean) - sigma2 / 2.0
    return rng.lognormvariate(mu, math.sqrt(sigma2))
