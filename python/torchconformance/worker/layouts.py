"""The shapes real checkpoints come in, PyTorch side; the C# twin is RealLayouts.cs.

Hugging Face's layouts, written as transformers' ``save_pretrained`` writes them (the file names and
the index schema), with torch.save and safetensors only, since transformers is not installed:

- ``hf_bin_sharded``: ``pytorch_model-0000k-of-0000n.bin`` and ``pytorch_model.bin.index.json``;
- ``hf_safetensors``: ``model.safetensors`` with ``__metadata__`` ``{"format": "pt"}``, written by
  ``safetensors.torch.save_model``, which stores tied weights once and records each dropped name
  as an alias in the metadata (``{"proj.weight": "emb.weight"}``);
- ``hf_safetensors_sharded``: ``model-0000k-of-0000n.safetensors`` and ``model.safetensors.index.json``.

The index is ``{"metadata": {"total_size": N}, "weight_map": {key: shard}}``, dumped with
``indent=2, sort_keys=True`` as transformers does. Shards are cut as huggingface_hub's
``split_torch_state_dict_into_shards`` cuts them (tensors in order, a tensor sharing a storage
with one already placed goes to that tensor's shard), with a maximum of half the model's bytes so
that even the suite's small models come in two or more shards.

And keys with a wrapper's prefix: ``module.`` (DataParallel, DistributedDataParallel) and
``_orig_mod.`` (torch.compile).
"""

import functools
import json
import os
from typing import Dict, List, Mapping, Tuple

import torch

from .. import catalogue
from ..formats.atomic import atomic_torch_save, atomic_write_bytes

# The route table is data, read by every side: cases.json's routes (folder, key_prefix, prefix_source).
_ROUTES = catalogue.document()["routes"]
HF_ROUTES = tuple(r for r, spec in _ROUTES.items() if spec.get("extension") == ".hf")  # optimizer_state's folder is .optim
PREFIXES = {r: spec["key_prefix"] for r, spec in _ROUTES.items() if "key_prefix" in spec}
# What each prefix comes from, for the message of a plain load that refuses it.
PREFIX_SOURCES = {spec["key_prefix"]: spec["prefix_source"] for spec in _ROUTES.values() if "key_prefix" in spec}

BIN_INDEX = "pytorch_model.bin.index.json"
SAFE_SINGLE = "model.safetensors"
SAFE_INDEX = "model.safetensors.index.json"
# transformers refuses a safetensors file whose metadata names another framework.
SAFE_FORMATS = ("pt", "tf", "flax", "mlx")


def _shard_name(route: str, k: int, n: int) -> str:
    suffix = f"-{k:05d}-of-{n:05d}"
    return f"pytorch_model{suffix}.bin" if route == "hf_bin_sharded" else f"model{suffix}.safetensors"


def _storage_key(t: torch.Tensor) -> Tuple[int, int]:
    # torch 1.13 has no untyped_storage(); storage().data_ptr() names the same memory there.
    storage = t.untyped_storage() if hasattr(t, "untyped_storage") else t.storage()
    return (storage.data_ptr(), storage.nbytes())


def _save_to(obj: object, f) -> None:
    torch.save(obj, f)


def split_into_shards(sd: Mapping[str, torch.Tensor]) -> Tuple[List[Dict[str, torch.Tensor]], int]:
    """The shards (in order) and the total size, as huggingface_hub splits: a storage counted once."""
    sizes: Dict[Tuple[int, int], int] = {}
    for t in sd.values():
        sizes.setdefault(_storage_key(t), _storage_key(t)[1])
    total = sum(sizes.values())
    limit = max(1, total // 2)
    shards: List[Dict[str, torch.Tensor]] = []
    placed: Dict[Tuple[int, int], int] = {}
    current_size = 0
    for key, t in sd.items():
        sk = _storage_key(t)
        if sk in placed:  # a view or an alias of a storage already placed: same shard
            shards[placed[sk]][key] = t
            continue
        if not shards or (current_size + sk[1] > limit and shards[-1]):
            shards.append({})
            current_size = 0
        shards[-1][key] = t
        placed[sk] = len(shards) - 1
        current_size += sk[1]
    return shards, total


def _write_index(path: str, name: str, total: int, weight_map: Dict[str, str]) -> None:
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    atomic_write_bytes(os.path.join(path, name), (json.dumps(index, indent=2, sort_keys=True) + "\n").encode(), "checkpoint index")


def save(route: str, model: torch.nn.Module, path: str, st) -> None:
    """Writes the model into the folder ``path`` as transformers' layout ``route``; ``st`` is safetensors.torch or None."""
    os.makedirs(path, exist_ok=True)
    if route == "hf_bin_sharded":
        shards, total = split_into_shards(model.state_dict())
        weight_map = {}
        for k, shard in enumerate(shards, 1):
            name = _shard_name(route, k, len(shards))
            atomic_torch_save(os.path.join(path, name), functools.partial(_save_to, shard), [shard], f"shard {name}")
            weight_map.update({key: name for key in shard})
        _write_index(path, BIN_INDEX, total, weight_map)
        return
    if st is None:
        raise ValueError("safetensors is required")  # callers raise NotApplicable first
    if route == "hf_safetensors":
        # safetensors' own model writer: tied weights stored once, the alias recorded in __metadata__.
        target = os.path.join(path, SAFE_SINGLE)
        tmp = target + ".writing"
        st.save_model(model, tmp, metadata={"format": "pt"}, force_contiguous=True)
        with open(tmp, "rb") as f:
            data = f.read()
        os.remove(tmp)
        atomic_write_bytes(target, data, "model.safetensors")
        return
    if route == "hf_safetensors_sharded":
        # What save_model does, shard by shard: tied weights once (the alias in that shard's metadata), contiguous.
        sd = dict(model.state_dict())
        aliases: Dict[str, str] = {}
        for kept, removed in st._remove_duplicate_names(sd).items():
            for name in removed:
                aliases[name] = kept
                del sd[name]
        sd = {k: v.contiguous() for k, v in sd.items()}
        shards, _ = split_into_shards(sd)
        weight_map = {}
        total = 0
        for k, shard in enumerate(shards, 1):
            name = _shard_name(route, k, len(shards))
            metadata = {"format": "pt"}
            metadata.update({removed: kept for removed, kept in aliases.items() if kept in shard})
            atomic_write_bytes(os.path.join(path, name), st.save(shard, metadata=metadata), f"shard {name}")
            weight_map.update({key: name for key in shard})
            total += sum(t.numel() * t.element_size() for t in shard.values())
        _write_index(path, SAFE_INDEX, total, weight_map)
        return
    raise ValueError(f"route '{route}' is not a Hugging Face layout")


def _safetensors_file(path: str, st) -> Dict[str, torch.Tensor]:
    """One safetensors file, re-tying what save_model dropped (its __metadata__ aliases), as load_model does."""
    from safetensors import safe_open

    with safe_open(path, framework="pt") as f:
        metadata = f.metadata() or {}
    if metadata.get("format", "pt") not in SAFE_FORMATS:
        raise ValueError(f"{os.path.basename(path)}: __metadata__ format '{metadata.get('format')}' is not one of {SAFE_FORMATS}")
    sd = st.load_file(path)
    for removed, kept in metadata.items():
        if removed != "format" and kept in sd and removed not in sd:
            sd[removed] = sd[kept]
    return sd


def load(route: str, path: str, st) -> Dict[str, torch.Tensor]:
    """The state dict of the folder ``path``, read shard by shard as the index says."""
    if route == "hf_safetensors":
        return _safetensors_file(os.path.join(path, SAFE_SINGLE), st)
    index_name = BIN_INDEX if route == "hf_bin_sharded" else SAFE_INDEX
    with open(os.path.join(path, index_name), encoding="utf-8") as f:
        index = json.load(f)
    weight_map = index["weight_map"]
    sd: Dict[str, torch.Tensor] = {}
    for shard in dict.fromkeys(weight_map.values()):  # each file once, in the index's order
        full = os.path.join(path, shard)
        part = torch.load(full, map_location="cpu") if route == "hf_bin_sharded" else _safetensors_file(full, st)
        sd.update(part)
    absent = sorted(k for k in weight_map if k not in sd)
    if absent:
        raise KeyError(f"{index_name} maps {', '.join(absent)} to shards that do not hold them")
    return sd


def add_prefix(route: str, sd: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    prefix = PREFIXES[route]
    return {prefix + k: v for k, v in sd.items()}


def strip_prefix(route: str, sd: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """What users do: torch.nn.modules.utils.consume_prefix_in_state_dict_if_present(sd, prefix)."""
    from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

    out = dict(sd)
    consume_prefix_in_state_dict_if_present(out, PREFIXES[route])
    return out


def prefix_diagnosis(file_keys: List[str], model_keys: List[str]) -> str:
    """When every key in the file is a model key behind a wrapper's prefix: the prefix and the remedy; else ''."""
    for prefix, source in PREFIX_SOURCES.items():
        if file_keys and all(k.startswith(prefix) for k in file_keys) and {k[len(prefix):] for k in file_keys} == set(model_keys):
            return (f"every key in the file starts with '{prefix}' (saved from {source}): strip the `{prefix}` prefix "
                    f"(torch.nn.modules.utils.consume_prefix_in_state_dict_if_present(state_dict, '{prefix}'), load mode strip_prefix)")
    return ""
