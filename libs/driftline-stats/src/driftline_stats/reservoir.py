"""A mergeable, bounded uniform sample (bottom-k by random priority), vectorised."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = ["Reservoir"]


@dataclass
class Reservoir:
    """Keeps the `capacity` values with the smallest random priorities seen so far: a uniform
    sample of everything offered, and two reservoirs merge into a sample of their union."""

    capacity: int = 2000
    seed: int | None = None
    values: npt.NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    priorities: npt.NDArray[np.float64] = field(default_factory=lambda: np.empty(0))

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def update(self, x: npt.ArrayLike) -> None:
        arr = np.asarray(x, dtype=np.float64).ravel()
        if arr.size == 0:
            return
        self._keep(
            np.concatenate([self.values, arr]),
            np.concatenate([self.priorities, self._rng.random(arr.size)]),
        )

    def merge(self, other: Reservoir) -> None:
        self._keep(
            np.concatenate([self.values, other.values]),
            np.concatenate([self.priorities, other.priorities]),
        )

    def _keep(self, values: npt.NDArray[np.float64], prio: npt.NDArray[np.float64]) -> None:
        if values.size > self.capacity:
            idx = np.argpartition(prio, self.capacity - 1)[: self.capacity]
            values, prio = values[idx], prio[idx]
        self.values, self.priorities = values, prio
