"""Driftline's numerics: sketches, drift tests and thresholds. Pure numpy/scipy, no I/O."""

from .profile import FeatureKind, ProfileBuilder
from .psi import population_stability_index
from .reservoir import Reservoir

__version__ = "0.1.0"
__all__ = [
    "FeatureKind",
    "ProfileBuilder",
    "Reservoir",
    "__version__",
    "population_stability_index",
]
