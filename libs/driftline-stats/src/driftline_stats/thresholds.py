"""Thresholds calibrated for the window at hand. Under no drift a window's counts on the
reference's bins are Multinomial(n, reference shares); simulating that gives the exact null
distribution of any binned statistic for this window size and these bins. The threshold is
its (1 - alpha) quantile, never below a floor of practical significance, so huge windows
are not flagged for differences nobody cares about. p-value tests use alpha directly.

alpha is per feature; with `family_alpha` over k features, Bonferroni gives alpha = a / k,
so at most `family_alpha` of drift-free windows have any feature flagged.

Bootstrapped thresholds depend on the reference and the window size only, so they are
computed ahead, once per reference (`ThresholdSpec.compute`): a `ThresholdTable` over window
sizes a factor 2 apart, read at any size by interpolating log threshold on log size. The table
stops at the first size whose threshold is below the floor (the null falls with the window
size, so every larger window gets the floor) or at `TABLE_MAX_SIZE` (larger windows get the
last, higher, threshold: conservative). A spec's fingerprint names its inputs, so a table is
computed once per process (`table_for`) and can be stored by whoever owns the reference."""

from __future__ import annotations

import hashlib
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
import numpy.typing as npt
from datasketches import kll_doubles_sketch

from . import drift
from .window import KLL_K

__all__ = [
    "FLOORS",
    "GRID",
    "TABLE_SIZES",
    "ThresholdSpec",
    "ThresholdTable",
    "binned_threshold",
    "bonferroni",
    "compute_bytes",
    "remember",
    "table_for",
]

GRID = (np.arange(200) + 0.5) / 200  # quantile grid for KS / Wasserstein
TABLE_MAX_SIZE = 65_536
# window sizes of a threshold table: 1, 2, 4, 8, ... 65,536 (a factor 2 apart)
TABLE_SIZES = (2 ** np.arange(0, 17)).astype(np.int64)
TABLE_VERSION = 2  # part of every fingerprint: a change of method never reads an old table

# effect sizes below which a shift is not worth an alert, whatever the window size
FLOORS = {
    "psi": 0.1,
    "jensen_shannon": 0.1,
    "hellinger": 0.1,
    "total_variation": 0.1,
    "wasserstein": 0.1,
}

_BINNED: dict[str, Callable[..., npt.NDArray[np.float64] | float]] = {
    "psi": drift.psi,
    "jensen_shannon": drift.jensen_shannon,
    "hellinger": drift.hellinger,
    "total_variation": drift.total_variation,
}


def bonferroni(family_alpha: float, features: int) -> float:
    return family_alpha / max(1, features)


@lru_cache(maxsize=4096)
def _null_quantile(
    test: str,
    shares: tuple[float, ...],
    n: int,
    n_ref: int,
    alpha: float,
    replicates: int,
    seed: int,
) -> float:
    """Both the reference and the window are samples of one distribution under no drift:
    simulate both. Categories the reference never saw keep probability zero."""
    rng = np.random.default_rng(seed)
    p = np.asarray(shares)
    p = p / p.sum()
    cur = rng.multinomial(n, p, size=replicates)
    ref = rng.multinomial(n_ref, p, size=replicates) + 1e-9
    values = np.asarray(_BINNED[test](ref, cur), dtype=np.float64)
    return float(np.quantile(values, 1 - alpha))


def binned_threshold(
    test: str,
    ref_counts: npt.ArrayLike,
    n: int,
    alpha: float,
    *,
    replicates: int | None = None,
    seed: int = 7,
    floor: float | None = None,
) -> float:
    """Threshold for a binned statistic on a window of n events (cached per bins and n;
    n is rounded to 2 significant digits so nearby window sizes share the work)."""
    if n <= 0:
        return float("inf")
    shares = tuple(np.round(np.asarray(ref_counts, float) / np.sum(ref_counts), 6).tolist())
    n_key = int(float(f"{n:.2g}"))
    reps = replicates or int(min(200_000, max(2_000, 20 / alpha)))
    n_ref = int(min(float(np.sum(ref_counts)), 1e6))
    q = _null_quantile(test, shares, max(1, n_key), n_ref, alpha, reps, seed)
    return max(q, FLOORS.get(test, 0.0) if floor is None else floor)


def _null_reps(alpha: float) -> int:
    return int(min(200_000, max(2_000, 20 / alpha)))


@dataclass(frozen=True)
class ThresholdTable:
    """A bootstrapped threshold (before its floor) at each of `sizes` window sizes."""

    sizes: npt.NDArray[np.float64]
    values: npt.NDArray[np.float64]

    def at(self, n: int) -> float:
        if n <= 0:
            return float("inf")
        if n >= self.sizes[-1]:
            return float(self.values[-1])
        logs = np.log(np.maximum(self.values, 1e-300))
        return float(np.exp(np.interp(np.log(n), np.log(self.sizes), logs)))

    def to_bytes(self) -> bytes:
        """Version, count, then the sizes and the values as float64 little-endian."""
        head = struct.pack("<HI", TABLE_VERSION, self.sizes.size)
        return head + self.sizes.astype("<f8").tobytes() + self.values.astype("<f8").tobytes()

    @classmethod
    def from_bytes(cls, raw: bytes) -> ThresholdTable:
        version, k = struct.unpack_from("<HI", raw)
        if version != TABLE_VERSION or len(raw) != 6 + 16 * k:
            raise ValueError(f"not a threshold table of version {TABLE_VERSION}")
        body = np.frombuffer(raw, "<f8", offset=6).astype(np.float64)
        return cls(body[:k].copy(), body[k:].copy())


@dataclass(frozen=True)
class ThresholdSpec:
    """What a bootstrapped threshold of one feature depends on. `data` is the reference
    sample (Wasserstein) or the reference's bin or category shares (binned tests), as
    float64 bytes."""

    test: str
    alpha: float
    n_ref: int
    data: bytes
    floor: float
    replicates: int = 400

    @cached_property
    def fingerprint(self) -> str:
        head = f"{TABLE_VERSION}|{self.test}|{self.alpha!r}|{self.n_ref}|{self.floor!r}|"
        head += f"{self.replicates}|{KLL_K}|"
        return hashlib.sha256(head.encode() + self.data).hexdigest()

    def compute(self) -> ThresholdTable:
        if self.test == "wasserstein":
            return _wasserstein_table(self)
        return _binned_table(self)


def _binned_table(spec: ThresholdSpec) -> ThresholdTable:
    """`_null_quantile` at each table size, with one simulated reference side for all."""
    rng = np.random.default_rng(7)
    p = np.frombuffer(spec.data, np.float64)
    p = p / p.sum()
    reps = _null_reps(spec.alpha)
    ref = rng.multinomial(spec.n_ref, p, size=reps) + 1e-9
    stat = _BINNED[spec.test]
    sizes, values = [], []
    for n in TABLE_SIZES.tolist():
        cur = rng.multinomial(n, p, size=reps)
        v = float(np.quantile(np.asarray(stat(ref, cur), dtype=np.float64), 1 - spec.alpha))
        sizes.append(n)
        values.append(v)
        if v < spec.floor:
            break
    return ThresholdTable(np.asarray(sizes, np.float64), np.asarray(values, np.float64))


def _wasserstein_table(spec: ThresholdSpec) -> ThresholdTable:
    """(1 - alpha) quantile of normalised W1 between a window of n and a reference of n_ref
    values, both drawn from the reference sample (two-sample bootstrap: the reference is a
    sample too), at each table size. The window's side goes through a KLL sketch, as live
    (up to KLL_K values a sketch is exact: its quantiles are read off the sorted draws the
    same way). The far tail is read from a log-normal fitted to the replicates: a
    1 - 0.0002 quantile cannot be read off a few hundred of them."""
    from scipy.stats import norm

    ref = np.frombuffer(spec.data, dtype=np.float64)
    reps = spec.replicates
    rng = np.random.default_rng(11)
    scale = ref.std() or 1.0
    m = min(spec.n_ref, 4000)
    ref_side = np.sort(rng.choice(ref, size=(reps, m), replace=True), axis=1)
    ref_q = ref_side[:, np.minimum((GRID * m).astype(int), m - 1)]
    z = float(norm.ppf(1 - spec.alpha))
    grid = GRID.tolist()
    sizes, values = [], []
    for n in TABLE_SIZES.tolist():
        draws = rng.choice(ref, size=(reps, n), replace=True)
        if n <= KLL_K:
            draws.sort(axis=1)
            win_q = draws[:, np.minimum((GRID * n).astype(int), n - 1)]
        else:
            win_q = np.empty((reps, GRID.size))
            for i in range(reps):
                sk = kll_doubles_sketch(KLL_K)
                sk.update(draws[i])
                win_q[i] = sk.get_quantiles(grid)
        w = np.abs(win_q - ref_q).mean(axis=1) / scale
        logw = np.log(np.maximum(w, 1e-12))
        v = float(np.exp(logw.mean() + z * logw.std(ddof=1)))
        sizes.append(n)
        values.append(v)
        if v < spec.floor or n >= TABLE_MAX_SIZE:
            break
    return ThresholdTable(np.asarray(sizes, np.float64), np.asarray(values, np.float64))


_CACHE: OrderedDict[str, ThresholdTable] = OrderedDict()
_CACHE_MAX = 65_536
_LOCK = threading.Lock()
_COMPUTING: dict[str, threading.Lock] = {}


def remember(fingerprint: str, table: ThresholdTable) -> None:
    """Keep a table computed elsewhere (read back from storage) for `table_for`."""
    with _LOCK:
        _CACHE[fingerprint] = table
        _CACHE.move_to_end(fingerprint)
        while len(_CACHE) > _CACHE_MAX:
            _CACHE.popitem(last=False)


def cached(fingerprint: str) -> ThresholdTable | None:
    with _LOCK:
        return _CACHE.get(fingerprint)


def compute_bytes(spec: ThresholdSpec) -> bytes:
    """`spec.compute()` as bytes: what a worker process hands back."""
    return spec.compute().to_bytes()


def table_for(spec: ThresholdSpec) -> ThresholdTable:
    """The spec's table: from this process's cache, else computed (once, whichever thread
    asks first; the others wait for it). Thread-safe."""
    fp = spec.fingerprint
    table = cached(fp)
    if table is not None:
        return table
    with _LOCK:
        lock = _COMPUTING.setdefault(fp, threading.Lock())
    with lock:
        table = cached(fp)
        if table is None:
            table = spec.compute()
            remember(fp, table)
    with _LOCK:
        _COMPUTING.pop(fp, None)
    return table
