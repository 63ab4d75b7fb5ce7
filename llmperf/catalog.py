"""Find bundled hardware/model specs by name (or alias, or unique prefix) or load them from a path.

Bundled names are the ``id`` column of the reference CSVs (``h100-sxm5-80gb``, ``llama-3.1-8b``).
An unambiguous short name resolves (``h100-sxm``, ``h200``); an ambiguous one (``h100``) is an
error listing the candidates; an unknown one suggests close names.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

from llmperf.errors import SpecError, UnknownNameError, suggest
from llmperf.specs._validate import SAFE_LOADER, read_yaml_mapping
from llmperf.specs.hardware import HardwareSpec, load_hardware_file
from llmperf.specs.hf_config import model_spec_from_hf, read_config_json
from llmperf.specs.model import ModelSpec

_META_KEYS = {"hf_repo", "official_total_params", "official_active_params",
              "official_params_precision", "sources", "reference", "unverified_fields", "notes"}


def _data_dir(name: str) -> Path:
    """``hardware/`` or ``model_configs/``: beside the package in a checkout, else installed data."""
    checkout = Path(__file__).resolve().parent.parent / name
    if checkout.is_dir():
        return checkout
    return Path(str(resources.files(f"llmperf._data.{name}")))


def hardware_dir() -> Path:
    return _data_dir("hardware")


def model_dir() -> Path:
    return _data_dir("model_configs")


@functools.lru_cache(maxsize=None)
def _hardware_aliases() -> dict[str, str]:
    """alias -> id, read from the ``aliases`` lists without validating every file."""
    import yaml

    table = {}
    for path in sorted(hardware_dir().glob("*.yaml")):
        data = yaml.load(path.read_text(), Loader=SAFE_LOADER) or {}
        for alias in data.get("aliases") or ():
            table[str(alias).lower()] = path.stem
    return table


def bundled_hardware_names() -> list[str]:
    return sorted(p.stem for p in hardware_dir().glob("*.yaml"))


def bundled_model_names() -> list[str]:
    return sorted(p.stem for p in model_dir().glob("*.yaml"))


def _resolve(name: str, names: list[str], aliases: dict[str, str], what: str, flag: str) -> str:
    key = name.strip().lower()
    if key in names:
        return key
    if key in aliases:
        return aliases[key]
    matches = sorted({n for n in names if n.startswith(key)} | {a for k, a in aliases.items()
                                                                 if k.startswith(key)})
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise UnknownNameError(f"{what} '{name}' is ambiguous: {', '.join(matches)}; "
                               f"pass one of them to {flag}")
    raise UnknownNameError(f"unknown {what} '{name}'{suggest(key, names + list(aliases))}; "
                           f"see `llmperf list {'hardware' if what == 'hardware' else what + 's'}` or pass a path to a spec file")


def _looks_like_path(name: str) -> bool:
    return any(name.endswith(ext) for ext in (".yaml", ".yml", ".json")) or "/" in name


@functools.lru_cache(maxsize=None)
def load_hardware(name_or_path: str) -> HardwareSpec:
    """A bundled accelerator by name/alias/prefix, or a hardware YAML path."""
    if _looks_like_path(name_or_path):
        path = Path(name_or_path)
        if not path.exists():
            raise SpecError(f"hardware file '{name_or_path}' does not exist")
        return load_hardware_file(path)
    hw_id = _resolve(name_or_path, bundled_hardware_names(), _hardware_aliases(), "hardware", "-g")
    return load_hardware_file(hardware_dir() / f"{hw_id}.yaml")


def _model_from_yaml(path: Path, name: str) -> ModelSpec:
    data = read_yaml_mapping(path)
    meta = data.get("llmperf") or {}
    if not isinstance(meta, dict):
        raise SpecError(f"{path}: field 'llmperf' must be a mapping")
    unknown = set(meta) - _META_KEYS
    if unknown:
        bad = sorted(unknown)[0]
        raise SpecError(f"{path}: unknown field 'llmperf.{bad}'{suggest(bad, _META_KEYS)}; "
                        f"allowed: {', '.join(sorted(_META_KEYS))}")
    return model_spec_from_hf(data, name=name, where=str(path), strict=True, meta=meta)


@functools.lru_cache(maxsize=None)
def load_model(name_or_path: str) -> ModelSpec:
    """A bundled model by name/prefix, a model YAML, or a Hugging Face config.json path."""
    if _looks_like_path(name_or_path):
        path = Path(name_or_path)
        if path.is_dir():
            path = path / "config.json"
        if not path.exists():
            raise SpecError(f"model file '{name_or_path}' does not exist")
        if path.suffix == ".json":
            raw = read_config_json(path)
            label = path.parent.name if path.name == "config.json" else path.stem
            return model_spec_from_hf(raw, name=label, where=str(path), strict=False)
        return _model_from_yaml(path, path.stem)
    model_id = _resolve(name_or_path, bundled_model_names(), {}, "model", "-m")
    return _model_from_yaml(model_dir() / f"{model_id}.yaml", model_id)


def model_meta(name: str) -> dict:
    """The ``llmperf:`` metadata block of a bundled model YAML (official counts, sources)."""
    model_id = _resolve(name, bundled_model_names(), {}, "model", "-m")
    return dict(read_yaml_mapping(model_dir() / f"{model_id}.yaml").get("llmperf") or {})
