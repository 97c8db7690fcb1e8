"""Learning-rate schedules as multipliers of the base rate, per training step.

``linear`` is CycleGAN's rule: constant for ``n`` units, then down by 1/(n_decay+1) per unit, the
unit being an epoch (as in the authors' code, where the rate changes at epoch ends) or a step
when the run is counted in steps.
"""
from __future__ import annotations

import math


def lr_multiplier(policy: str, unit: int, n: int, n_decay: int) -> float:
    """``unit``: 0-based epoch (or step) index."""
    if policy == "constant" or n_decay <= 0 and policy == "linear":
        return 1.0
    if policy == "linear":
        # the authors' lambda_rule with epoch_count = 1
        return 1.0 - max(0, unit + 1 - n) / float(n_decay + 1)
    if policy == "cosine":
        total = max(1, n + n_decay)
        return 0.5 * (1.0 + math.cos(math.pi * min(unit, total) / total))
    raise ValueError(policy)
