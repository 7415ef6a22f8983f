"""Read detectron2's model-zoo pickles without running code from them.

A ``.pkl`` from detectron2's model zoo is ``pickle.dump`` of ``{"model": {name: numpy array},
"__author__": str, ...}``. An ordinary ``pickle.load`` calls whatever callable the file names,
so a file from the internet could run anything. `load_restricted_pickle` admits only what those
files hold — numpy arrays (and the dtype and reconstruct helpers numpy pickles through), dicts,
lists, tuples, strings, bytes and numbers — and refuses anything else before calling it.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from plugrcnn.errors import PlugrcnnError

# (module, name) pairs that numpy's own pickles of arrays and scalars refer to
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),  # protocol 5
    ("_codecs", "encode"),  # protocols 0-2 written by Python 3 carry bytes as encode(str, latin1)
    ("collections", "OrderedDict"),  # a dict with an order; calls nothing else
}


class _Refused(pickle.UnpicklingError):
    """The pickle names a global outside `_ALLOWED` (its module.name is the message)."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise _Refused(f"{module}.{name}")


def load_restricted_pickle(path: Path) -> Any:
    """Unpickle `path` admitting only numpy arrays, dicts, lists, strings and numbers."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PlugrcnnError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        # latin1: pickles written by Python 2 (Detectron's) carry numpy buffers as str
        return _RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except _Refused as exc:
        raise PlugrcnnError(
            f"{path}: refused: the pickle asks for {exc}, but a detectron2 checkpoint holds only "
            f"numpy arrays, dicts, lists, strings and numbers") from None
    except Exception as exc:  # truncated or garbled files raise EOFError, ValueError, ...
        raise PlugrcnnError(f"{path}: not a readable pickle ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:120] if str(exc) else ''})") from None
