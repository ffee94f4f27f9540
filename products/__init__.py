"""xsm.products: the reduction core of xsm.

Level-0 decoding, level-1 files, housekeeping, sun geometry, GTIs, spectra, ARFs,
light curves, adding spectra and OGIP FITS I/O. Functions here take and return arrays
and small dataclasses; FITS reading and writing sit at the edges (``fitsio`` and the
``read_*``/``write_*`` functions).
"""
from xsm.products.provenance import SOFTWARE_VERSION as __version__

__all__ = ["__version__"]
