"""Driftline's numerics: sketches, drift tests and thresholds. Pure numpy/scipy, no I/O."""

from .drift import psi
from .profile import FeatureKind, ProfileBuilder
from .reservoir import Reservoir

__version__ = "0.1.0"
__all__ = [
    "FeatureKind",
    "ProfileBuilder",
    "Reservoir",
    "__version__",
    "psi",
]
