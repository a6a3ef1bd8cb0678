"""Reference profiles: one pass over data in chunks (bounded memory whatever the size),
per feature by type. Numeric: count, missing, non-finite, moments, min/max, a KLL quantile
sketch, histogram edges on the reference's own quantiles with their counts, a reservoir
sample. Categorical and boolean: category frequencies (the most frequent `max_categories`,
the rest as one count). Text: length as a numeric profile. Embedding: the L2 norm as a
numeric profile, and the dimension.

The model's output is profiled like a feature under the name `PREDICTION` (numeric for
scores and regressions, categorical for classes). A uniform sample of whole rows of the
numeric features feeds the multivariate (PCA) reference."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from datasketches import kll_doubles_sketch

from .multivariate import PCAReference
from .reservoir import Reservoir

__all__ = ["PREDICTION", "CategoricalProfile", "FeatureKind", "NumericProfile", "ProfileBuilder"]

PREDICTION = "__prediction__"  # the model's output, profiled and tested like a feature

FeatureKind = Literal["numeric", "categorical", "boolean", "text", "embedding"]


@dataclass
class NumericProfile:
    k: int = 400
    bins: int = 10
    sample_size: int = 2000
    count: int = 0
    missing: int = 0
    non_finite: int = 0
    mean: float = 0.0
    m2: float = 0.0
    sketch: Any = field(default=None)
    reservoir: Reservoir = field(default_factory=Reservoir)

    def __post_init__(self) -> None:
        if self.sketch is None:
            self.sketch = kll_doubles_sketch(self.k)
        self.reservoir = Reservoir(self.sample_size, seed=None)

    def update(self, values: npt.NDArray[np.float64], missing: int = 0) -> None:
        self.missing += missing
        finite = np.isfinite(values)
        self.non_finite += int(values.size - finite.sum())
        x = values[finite]
        if x.size == 0:
            return
        # Chan et al.: merge the chunk's mean and M2 into the running ones
        n_a, n_b = self.count, x.size
        mean_b = float(x.mean())
        m2_b = float(((x - mean_b) ** 2).sum())
        delta = mean_b - self.mean
        total = n_a + n_b
        self.mean += delta * n_b / total
        self.m2 += m2_b + delta * delta * n_a * n_b / total
        self.count = total
        self.sketch.update(x)
        self.reservoir.update(x)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "count": self.count,
            "missing": self.missing,
            "non_finite": self.non_finite,
        }
        if self.count == 0:
            return out
        qs = [i / self.bins for i in range(1, self.bins)]
        inner = np.unique(np.asarray(self.sketch.get_quantiles(qs), dtype=np.float64))
        cdf = np.asarray(self.sketch.get_cdf(inner.tolist()), dtype=np.float64)
        counts = np.diff(np.concatenate([[0.0], cdf])) * self.count
        out.update(
            {
                "mean": self.mean,
                "std": float(np.sqrt(self.m2 / self.count)),
                "min": float(self.sketch.get_min_value()),
                "max": float(self.sketch.get_max_value()),
                "quantiles": {
                    str(q): float(self.sketch.get_quantile(q))
                    for q in (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
                },
                "histogram": {
                    "edges": inner.tolist(),
                    "counts": np.rint(counts).astype(int).tolist(),
                },
                "kll": base64.b64encode(self.sketch.serialize()).decode(),
                "sample": self.reservoir.values.tolist(),
            }
        )
        return out


@dataclass
class CategoricalProfile:
    max_categories: int = 1000
    count: int = 0
    missing: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def update(self, values: npt.NDArray[Any], missing: int = 0) -> None:
        self.missing += missing
        if values.size == 0:
            return
        cats, n = np.unique(values.astype(str), return_counts=True)
        for c, k in zip(cats.tolist(), n.tolist(), strict=True):
            self.counts[c] = self.counts.get(c, 0) + k
        self.count += int(values.size)

    def to_dict(self) -> dict[str, Any]:
        top = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        kept = dict(top[: self.max_categories])
        return {
            "count": self.count,
            "missing": self.missing,
            "categories": kept,
            "other": sum(n for _, n in top[self.max_categories :]),
            "distinct": len(self.counts),
        }


def _is_missing(col: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    if col.dtype == object:
        return np.fromiter(
            (v is None or (isinstance(v, float) and np.isnan(v)) or v == "" for v in col),
            dtype=bool,
            count=col.size,
        )
    if np.issubdtype(col.dtype, np.floating):
        return np.asarray(np.isnan(col), dtype=bool)
    return np.zeros(col.size, dtype=bool)


class ProfileBuilder:
    """Feed chunks of columns (`update({"age": array, ...})`), then `finish()`."""

    def __init__(
        self,
        kinds: dict[str, FeatureKind],
        *,
        bins: int = 10,
        sample_size: int = 2000,
        joint_rows: int = 4000,
    ) -> None:
        self.kinds = kinds
        self.rows = 0
        self._joint = [n for n, k in kinds.items() if k == "numeric" and n != PREDICTION]
        self._rows = Reservoir(joint_rows)
        self._num: dict[str, NumericProfile] = {}
        self._cat: dict[str, CategoricalProfile] = {}
        self._dims: dict[str, int] = {}
        for name, kind in kinds.items():
            if kind in ("numeric", "text", "embedding"):
                self._num[name] = NumericProfile(bins=bins, sample_size=sample_size)
            else:
                self._cat[name] = CategoricalProfile()

    def update(self, columns: dict[str, npt.ArrayLike]) -> None:
        sizes = {np.asarray(c, dtype=object).shape[0] for c in columns.values()} or {0}
        rows = max(sizes)
        self.rows += rows
        if len(self._joint) >= 2 and rows:
            matrix = np.full((rows, len(self._joint)), np.nan)
            for j, name in enumerate(self._joint):
                if name in columns:
                    try:
                        matrix[:, j] = np.asarray(columns[name], dtype=np.float64)
                    except (TypeError, ValueError):  # None or stray text in the column
                        matrix[:, j] = [
                            v if isinstance(v, int | float) else np.nan
                            for v in np.asarray(columns[name], dtype=object)
                        ]

            self._rows.update(matrix)
        for name, kind in self.kinds.items():
            if name not in columns:
                continue
            col = np.asarray(columns[name], dtype=object if kind != "numeric" else None)
            if kind == "embedding":
                self._update_embedding(name, columns[name])
                continue
            miss = _is_missing(col)
            present = col[~miss]
            if kind == "numeric":
                self._num[name].update(present.astype(np.float64), int(miss.sum()))
            elif kind == "text":
                lengths = np.fromiter(
                    (len(str(v)) for v in present), dtype=np.float64, count=present.size
                )
                self._num[name].update(lengths, int(miss.sum()))
            elif kind == "boolean":
                self._cat[name].update(
                    np.where(present.astype(bool), "true", "false"), int(miss.sum())
                )
            else:
                self._cat[name].update(present, int(miss.sum()))

    def _update_embedding(self, name: str, values: Any) -> None:
        rows = [v for v in values if v is not None]
        missing = len(values) - len(rows)
        if rows:
            mat = np.asarray(rows, dtype=np.float64)
            self._dims[name] = int(mat.shape[1])
            self._num[name].update(np.linalg.norm(mat, axis=1), missing)
        else:
            self._num[name].update(np.empty(0), missing)

    def finish(self) -> dict[str, Any]:
        features: dict[str, Any] = {}
        for name, kind in self.kinds.items():
            body = self._num[name].to_dict() if name in self._num else self._cat[name].to_dict()
            body["kind"] = kind
            if kind == "text":
                body["of"] = "length"
            if kind == "embedding":
                body["of"] = "l2_norm"
                body["dimension"] = self._dims.get(name)
            features[name] = body
        pca = PCAReference.fit(self._joint, self._rows.values) if self._rows.values.size else None
        return {
            "rows": self.rows,
            "features": features,
            "multivariate": pca.to_dict() if pca is not None else None,
        }
