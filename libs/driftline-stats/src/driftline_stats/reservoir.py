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
        """Values (1-D), or rows (2-D: each row is kept or dropped whole)."""
        arr = np.asarray(x, dtype=np.float64)
        if arr.ndim != 2:
            arr = arr.ravel()
        if arr.shape[0] == 0:
            return
        self._keep(
            np.concatenate([self.values, arr]) if self.values.size else arr,
            np.concatenate([self.priorities, self._rng.random(arr.shape[0])]),
        )

    def merge(self, other: Reservoir) -> None:
        if not other.values.size:
            return
        self._keep(
            np.concatenate([self.values, other.values]) if self.values.size else other.values,
            np.concatenate([self.priorities, other.priorities]),
        )

    def _keep(self, values: npt.NDArray[np.float64], prio: npt.NDArray[np.float64]) -> None:
        if values.shape[0] > self.capacity:
            idx = np.argpartition(prio, self.capacity - 1)[: self.capacity]
            values, prio = values[idx], prio[idx]
        self.values, self.priorities = values, prio
