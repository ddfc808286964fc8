"""The array module of an array: NumPy, or CuPy for a CuPy array (where CuPy is importable).

Kernels take it from their inputs, so one function body runs on both backends.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def array_module(arr: Any) -> Any:
    if isinstance(arr, np.ndarray):  # the common case: skip the (failing, uncached) cupy import
        return np
    try:
        import cupy  # type: ignore[import-not-found]
    except ImportError:
        return np
    return cupy.get_array_module(arr)
