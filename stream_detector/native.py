"""The compiled fast paths (`stream_detector._native`, built from `native/` by setuptools-rust).

The Python modules are the reference; the native ones do the same per-event work in a fraction
of the time and are differentially tested against it. ``STREAM_DETECTOR_NATIVE=0`` turns them
off (to compare, or to debug); if the extension was not built, the Python path runs, with one
warning.
"""

from __future__ import annotations

import importlib
import logging
import os
from functools import cache
from types import ModuleType

log = logging.getLogger(__name__)


@cache
def native_module() -> ModuleType | None:
    """The extension module, or None when turned off or not built."""
    if os.environ.get("STREAM_DETECTOR_NATIVE", "1").strip() == "0":
        return None
    try:
        return importlib.import_module("stream_detector._native")
    except ImportError as exc:
        log.warning("native fast path unavailable, running in Python", extra={"error": str(exc)})
        return None
