"""Driftline's numerics: sketches, drift tests and thresholds. Pure numpy/scipy, no I/O."""

from .psi import population_stability_index

__version__ = "0.1.0"
__all__ = ["__version__", "population_stability_index"]
