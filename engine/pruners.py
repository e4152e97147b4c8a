"""Optuna's MedianPruner and SuccessiveHalvingPruner rules, replayed on recorded curves.

The rules are re-implemented (not imported) so the replay needs no Optuna study:
networks arrive one after another in recorded order, as trials do.

* median: after ``warmup`` epochs, stop a network whose value at an epoch is below
  the median of the values the earlier networks had at that epoch (once
  ``startup`` networks have been seen).
* successive halving (asynchronous, as Optuna's): rungs at ``min_resource * eta^k``
  epochs; a network continues past a rung only if its value there is in the top
  ``1/eta`` of all values recorded at that rung so far.

The fitness handed to the NAS for a stopped network is its last observed value.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def median_rule(curves: Sequence[Sequence[float]], startup: int = 5, warmup: int = 5) -> list[int]:
    seen: list[Sequence[float]] = []
    used = []
    for curve in curves:
        stop_at = len(curve)
        if len(seen) >= startup:
            for epoch in range(warmup, len(curve)):
                others = [c[epoch] for c in seen if len(c) > epoch]
                if others and curve[epoch] < float(np.median(others)):
                    stop_at = epoch + 1
                    break
        used.append(stop_at)
        seen.append(curve[:stop_at])
    return used


def successive_halving_rule(curves: Sequence[Sequence[float]], min_resource: int = 1, eta: int = 3) -> list[int]:
    rungs: dict[int, list[float]] = {}
    used = []
    for curve in curves:
        stop_at = len(curve)
        k = 0
        while True:
            rung_epoch = min_resource * eta ** k
            if rung_epoch >= len(curve):
                break
            value = curve[rung_epoch - 1]
            rungs.setdefault(rung_epoch, []).append(value)
            values = sorted(rungs[rung_epoch], reverse=True)
            cutoff = values[max(0, math.ceil(len(values) / eta) - 1)]
            if value < cutoff:
                stop_at = rung_epoch
                break
            k += 1
        used.append(stop_at)
    return used
