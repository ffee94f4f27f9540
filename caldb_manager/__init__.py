"""The XSM calibration database (``spec/caldb.md``): index, selection by time, calibration
files, certification, publishing of versions, differences and affected products.

Most users need only :func:`calibration_context` (which files a time selects) and the loaders
of :mod:`xsm.caldb_manager.calfiles`.
"""
from __future__ import annotations

from xsm.caldb_manager.context import CalibrationContext, calibration_context

__all__ = ["CalibrationContext", "calibration_context"]
