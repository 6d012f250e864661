"""The case catalogue and the dtype table, as data: catalogue/cases.json and catalogue/dtypes.json.

One file each, read by the orchestrator (Matrix/Catalogue.cs), the TorchSharp worker and this
package (worker/cases.py, worker/checkpoints.py, gpucheck/, observe.py, formats/tsnative.py). Only model code stays as
twins (models.BUILDERS ⇄ Models/Zoo.cs's Zoo.Builders). Needs no torch.
"""

import json
import os
from functools import lru_cache
from typing import Any, Dict, List, Optional

_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "catalogue")


def _is_comment(key: str) -> bool:
    return key.startswith("//")


def _strip(node: Any) -> Any:
    """The JSON without its "//..." explanation fields."""
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if not _is_comment(k)}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


@lru_cache(maxsize=None)
def _read(name: str) -> Dict[str, Any]:
    with open(os.path.join(_DIR, name), encoding="utf-8") as f:
        return _strip(json.load(f))


def document() -> Dict[str, Any]:
    """cases.json, without explanation fields."""
    return _read("cases.json")


@lru_cache(maxsize=None)
def cases() -> List[Dict[str, Any]]:
    """Every case in catalogue order, each with the `defaults` filled in and `model` set."""
    doc = document()
    out = []
    for c in doc["cases"]:
        merged = dict(doc["defaults"])
        merged["model"] = c["name"]
        merged.update(c)
        out.append(merged)
    return out


def case(name: str) -> Dict[str, Any]:
    for c in cases():
        if c["name"] == name:
            return c
    raise KeyError(f"unknown case '{name}' (the catalogue has: {', '.join(c['name'] for c in cases())})")


def tolerance(c: Dict[str, Any]) -> Dict[str, float]:
    return document()["tolerances"][c["tolerance"]]


def optimizers() -> Dict[str, Dict[str, Any]]:
    """Optimizer name -> {class, param_group}, in catalogue order."""
    return document()["optimizers"]


def checkpoint() -> Dict[str, Any]:
    """What every training-checkpoint case shares: model, input, train_steps, resume_steps."""
    return document()["checkpoint"]


def builder_names() -> List[str]:
    """Every model builder the catalogue names (each must exist in models.BUILDERS and Zoo.Builders)."""
    names: List[str] = []
    for c in cases():
        if c.get("optimizer") is None:
            names.append(c["model"])
        names.extend(c.get("variants", {}).values())
    names.append(checkpoint()["model"])
    return list(dict.fromkeys(names))


@lru_cache(maxsize=None)
def dtypes() -> List[Dict[str, Any]]:
    """The dtype table (dtypes.json), in its order."""
    return _read("dtypes.json")["dtypes"]


def dtype(name: str) -> Optional[Dict[str, Any]]:
    return next((d for d in dtypes() if d["name"] == name), None)


def require_dtype(name: str) -> Dict[str, Any]:
    """The dtype table's entry for a wire name the catalogue itself names; a KeyError names it when absent."""
    d = dtype(name)
    if d is None:
        raise KeyError(f"dtypes.json has no dtype {name!r}")
    return d
