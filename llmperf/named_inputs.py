"""Let the public functions take names where they take specs.

``llmperf.estimate("llama-3.1-8b", "h100-sxm", calibration="auto", batch=8)`` means the same as
loading each spec first: a ``str`` or ``os.PathLike`` passed as ``model`` goes through
:func:`llmperf.load_model` (bundled name or a path to a ``config.json`` / YAML), as ``hardware``
through :func:`llmperf.load_hardware`, and as ``calibration`` through
:func:`llmperf.resolve_calibration` (``ideal``, ``auto`` or a calibration CSV) for the call's
hardware. Spec objects pass through untouched, so internal calls pay two ``isinstance`` checks per
argument; anything else as ``model`` or ``hardware`` is a ``TypeError`` naming the argument.
"""
from __future__ import annotations

import functools
import inspect
import os
from collections import OrderedDict
from pathlib import Path

from llmperf.specs.hardware import HardwareSpec
from llmperf.specs.model import ModelSpec

_NAMED = ("model", "hardware", "calibration")
_SPEC_TYPES = {"model": ModelSpec, "hardware": HardwareSpec}
_CALIBRATIONS: OrderedDict = OrderedDict()  # (name, file stamp, hardware JSON) -> calibration
_CALIBRATIONS_KEPT = 8


def _is_name(value) -> bool:
    return isinstance(value, (str, os.PathLike))


def _calibration(name, hardware):
    """resolve_calibration, remembered per (name, file size and mtime, hardware spec)."""
    from llmperf.calibration_io import resolve_calibration

    path = Path(name)
    stat = path.stat() if path.is_file() else None  # None for "ideal" / "auto"
    stamp = (stat.st_size, stat.st_mtime_ns) if stat else None
    key = (str(name), stamp, hardware.model_dump_json())
    if key not in _CALIBRATIONS:
        _CALIBRATIONS[key] = resolve_calibration(str(name), hardware)
        while len(_CALIBRATIONS) > _CALIBRATIONS_KEPT:
            _CALIBRATIONS.popitem(last=False)
    _CALIBRATIONS.move_to_end(key)
    return _CALIBRATIONS[key]


def accepts_names(function):
    """Decorator: resolve ``model`` / ``hardware`` / ``calibration`` arguments given by name."""
    signature = inspect.signature(function)
    positions = {name: index for index, name in enumerate(signature.parameters) if name in _NAMED}
    if not positions:
        raise TypeError(f"{function.__qualname__} has none of the parameters {_NAMED}")

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        given = {name: args[i] if i < len(args) else kwargs.get(name)
                 for name, i in positions.items()}
        for name, spec_type in _SPEC_TYPES.items():
            value = given.get(name)
            if value is not None and not isinstance(value, spec_type) and not _is_name(value):
                raise TypeError(f"{function.__name__}: {name} must be a {spec_type.__name__}, a bundled "
                                f"name or a path, got {type(value).__name__}")
        if not any(_is_name(value) for value in given.values()):
            return function(*args, **kwargs)
        from llmperf.catalog import load_hardware, load_model

        bound = signature.bind(*args, **kwargs)
        arguments = bound.arguments
        if _is_name(arguments.get("model")):
            arguments["model"] = load_model(os.fspath(arguments["model"]))
        if _is_name(arguments.get("hardware")):
            arguments["hardware"] = load_hardware(os.fspath(arguments["hardware"]))
        if _is_name(arguments.get("calibration")):  # every decorated function with it has hardware
            arguments["calibration"] = _calibration(arguments["calibration"], arguments["hardware"])
        return function(*bound.args, **bound.kwargs)

    return wrapper
