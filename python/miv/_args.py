"""Argument checking shared by the package: paths that must exist, and configuration given as a path, a YAML
string or a dict (MiV passes dicts)."""

import json
import os

import numpy as np


def existing_file(name, value):
    """``value`` as a path to an existing file; FileNotFoundError / ValueError naming ``name`` otherwise."""
    path = as_path(name, value)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{name}: {path}: no such file")
    return path


def existing_dir(name, value):
    path = as_path(name, value)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{name}: {path}: no such directory")
    return path


def as_path(name, value):
    if isinstance(value, (str, os.PathLike)):
        path = os.fspath(value)
        if path:
            return path
    raise ValueError(f"{name}: expected a path, got {value!r}")


def _plain(obj):
    """A JSON-able form of numpy values and pydantic models inside a configuration."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    for method in ("model_dump", "dict"):
        f = getattr(obj, method, None)
        if callable(f):
            return f()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not a configuration value")


def config_text(name, value):
    """(text, origin) of a configuration given as a dict (or model), a YAML string or a path to a YAML file.

    ``origin`` names the file, or the argument, in the engine's error messages."""
    if value is None:
        raise ValueError(f"{name}: expected a path, a YAML string or a dict, got None")
    if isinstance(value, os.PathLike) or (isinstance(value, str) and _looks_like_path(value)):
        path = os.fspath(value)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{name}: {path}: no such file")
        with open(path, encoding="utf-8") as f:
            return f.read(), path
    if isinstance(value, str):
        return value, name
    if not isinstance(value, dict):
        value = _plain(value) if not isinstance(value, (list, int, float)) else value
        if not isinstance(value, dict):
            raise ValueError(f"{name}: expected a path, a YAML string or a dict, got {type(value).__name__}")
    try:
        return json.dumps(value, default=_plain), name
    except TypeError as e:
        raise ValueError(f"{name}: {e}") from None


def _looks_like_path(s):
    # A YAML mapping has a "key: value" or a flow mapping; a path has neither.
    return "\n" not in s and ": " not in s and not s.lstrip().startswith("{") and not s.rstrip().endswith(":")


def float_array(name, values):
    """``values`` (list, tuple, numpy array, hoc-like Vector) as a contiguous float64 array."""
    try:
        a = np.ascontiguousarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected numbers, got {type(values).__name__}") from None
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-d sequence of times, got shape {a.shape}")
    return a


def number(name, value, positive=False, minimum=None):
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a number, got {value!r}") from None
    if not np.isfinite(x):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    if positive and not x > 0:
        raise ValueError(f"{name}: must be > 0, got {value!r}")
    if minimum is not None and x < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {value!r}")
    return x


def gid(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name}: expected a gid (an integer >= 0), got {value!r}")
    return int(value)
