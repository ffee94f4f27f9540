"""Exceptions and warnings of xsm (STYLE.md §2 "Errors").

Every message is for the user: what failed, which file or parameter, what to do.
Only the CLI turns these into exit codes (``XsmError.exit_code``).
"""
from __future__ import annotations

import warnings


class XsmError(Exception):
    """Base class of every error xsm reports to a user."""

    exit_code: int = 1


class InputFormatError(XsmError):
    """An input file is missing, truncated, foreign or malformed (bad input: exit 2)."""

    exit_code = 2


class ParameterError(XsmError):
    """A parameter value is invalid (bad input: exit 2)."""

    exit_code = 2


class CalibrationError(XsmError):
    """Calibration data are missing or unusable."""


class SelectionError(CalibrationError):
    """No calibration file matches a selection."""


class CertificationError(CalibrationError):
    """A calibration file fails certification."""


class LabelValidationError(XsmError):
    """A PDS4 label is invalid."""


class ArchiveError(XsmError):
    """The archive is inconsistent or an archive operation is refused."""


class StageError(XsmError):
    """A processing-pipeline stage failed."""


class XsmWarning(UserWarning):
    """A non-fatal condition worth the user's attention."""


def warn_user(message: str) -> None:
    """Issue an :class:`XsmWarning` (sunpy ``warn_user`` style)."""
    warnings.warn(message, XsmWarning, stacklevel=3)
