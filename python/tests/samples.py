"""The user-shaped files `conformance check` is pinned on (tests/check-samples/), made by real PyTorch.

``python3 -m torchconformance check-samples DIR`` writes, from the suite's ``mlp_dropout`` twin (seed 0):
- ``hf-sharded-safetensors/``: ``model-0000k-of-00002.safetensors`` (``__metadata__`` {"format": "pt"})
  and ``model.safetensors.index.json``, named and laid out as transformers' ``save_pretrained`` does;
- ``hf-sharded-bin/``: ``pytorch_model-0000k-of-00002.bin`` and ``pytorch_model.bin.index.json``;
- ``module_prefixed.pt``: the state dict of ``nn.DataParallel(model)``, every key under ``module.``;
- ``deflated.pt``: ``torch.save``'s zip re-packed with deflated entries (as a zip tool re-saving it does);
- ``cuda_tagged.pt``: a state dict whose storages carry the location ``cuda:0``, as a GPU's torch.save
  writes it. Made on a CPU: a tagger registered ahead of torch's own (``register_package``) names
  every CPU storage ``cuda:0``; the pickle is what a CUDA producer writes, the bytes are the CPU's.
Needs the safetensors package (Debian 13's python3-safetensors: the pytorch-2.6 runtime has it).
"""

import json
import os
import sys
import zipfile
from typing import Dict, List

import torch

from torchconformance import models


def _shards(sd: Dict[str, torch.Tensor], n: int) -> List[Dict[str, torch.Tensor]]:
    keys = list(sd)
    size = (len(keys) + n - 1) // n
    return [{k: sd[k].contiguous() for k in keys[i * size:(i + 1) * size]} for i in range(n)]


def _index(path: str, sd: Dict[str, torch.Tensor], weight_map: Dict[str, str]) -> None:
    total = sum(t.numel() * t.element_size() for t in sd.values())
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2, sort_keys=True)
        f.write("\n")


def _save_cuda_tagged(sd: Dict[str, torch.Tensor], path: str) -> None:
    registry = torch.serialization._package_registry
    before = list(registry)
    torch.serialization.register_package(-1, lambda storage: "cuda:0" if storage.device.type == "cpu" else None,
                                         lambda storage, location: None)
    try:
        torch.save(sd, path)
    finally:
        registry[:] = before


def write(out: str) -> None:
    import safetensors.torch as st

    torch.manual_seed(0)
    model = models.MlpDropout()
    sd = model.state_dict()
    shards = _shards(sd, 2)

    folder = os.path.join(out, "hf-sharded-safetensors")
    os.makedirs(folder, exist_ok=True)
    weight_map = {}
    for i, shard in enumerate(shards, 1):
        name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        st.save_file(shard, os.path.join(folder, name), metadata={"format": "pt"})
        weight_map.update({k: name for k in shard})
    _index(os.path.join(folder, "model.safetensors.index.json"), sd, weight_map)

    folder = os.path.join(out, "hf-sharded-bin")
    os.makedirs(folder, exist_ok=True)
    weight_map = {}
    for i, shard in enumerate(shards, 1):
        name = f"pytorch_model-{i:05d}-of-{len(shards):05d}.bin"
        torch.save(shard, os.path.join(folder, name))
        weight_map.update({k: name for k in shard})
    _index(os.path.join(folder, "pytorch_model.bin.index.json"), sd, weight_map)

    torch.save(torch.nn.DataParallel(model).state_dict(), os.path.join(out, "module_prefixed.pt"))

    _save_cuda_tagged(sd, os.path.join(out, "cuda_tagged.pt"))

    plain = os.path.join(out, "plain.pt.tmp")
    torch.save(sd, plain)
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(os.path.join(out, "deflated.pt"), "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    os.remove(plain)


if __name__ == "__main__":
    write(sys.argv[1])
