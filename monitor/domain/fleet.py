"""How scheduler processes share a fleet of models: each holds a fair share of the leases.

Pure arithmetic, no database: ``monitor.services.jobs.leases`` applies it under one transaction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def fair_share(models: int, processes: int) -> int:
    """The most models one of ``processes`` live processes should hold: an even split, rounded up
    so that every model has room (a process alone holds them all)."""
    return math.ceil(models / max(processes, 1))


@dataclass(frozen=True)
class Rebalance:
    """What a process does with its leases this tick: take ``claim`` more (free or lapsed ones),
    or give ``release`` back for a process that holds fewer to take."""

    claim: int
    release: int


def rebalance(held: int, models: int, processes: int) -> Rebalance:
    """Claim up to the fair share; give back only what is above it. A process that just joined
    holds nothing and every model is held: the others see one more live process, their share
    shrinks, they release the excess, and the newcomer claims it on its next tick. Rounding the
    share up keeps two processes from passing a model to and fro (each is at or under it)."""
    share = fair_share(models, processes)
    if held > share:
        return Rebalance(0, held - share)
    return Rebalance(share - held, 0)
