"""The user-shaped files `conformance check` is pinned on (tests/check-samples/), made by real PyTorch.

``cd python && python3 -m tests.samples DIR`` writes, from the suite's ``mlp_dropout`` twin (seed 0):
- ``hf-sharded-safetensors/``: ``model-0000k-of-00002.safetensors`` (``__metadata__`` {"format": "pt"})
  and ``model.safetensors.index.json``, named and laid out as transformers' ``save_pretrained`` does;
- ``hf-sharded-bin/``: ``pytorch_model-0000k-of-00002.bin`` and ``pytorch_model.bin.index.json``;
- ``module_prefixed.pt``: the state dict of ``nn.DataParallel(model)``, every key under ``module.``;
- ``deflated.pt``: ``torch.save``'s zip re-packed with deflated entries (as a zip tool re-saving it does);
- ``cuda_tagged.pt``: a state dict whose storages carry the location ``cuda:0``, as a GPU's torch.save
  writes it. Made on a CPU: a tagger registered ahead of torch's own (``register_package``) names
  every CPU storage ``cuda:0``; the pickle is what a CUDA producer writes, the bytes are the CPU's;
- TorchScript that ``torch.jit.load`` loads but that holds no state dict to compare, or more than a
  ``forward`` returning a tensor (``write_torchscript``): ``script_function.pt`` (``torch.jit.script`` of a
  function, ``ScriptFunction.save``), ``script_no_params.pt`` (a module without parameters),
  ``script_list.pt``, ``script_tuple.pt``, ``script_dict.pt`` (``forward`` returns a list, a tuple, a
  dict of tensors) and ``script_method.pt`` (a second method, ``@torch.jit.export``);
- ``mlp_checkpoint.pt`` (``write_checkpoint``): a training checkpoint of the twin, for ``--model-twin``;
- ``truncated_60pct.pt`` and ``empty.pt`` (``write_damaged``): a checkpoint cut short, a file of 0 bytes;
- ``pytorch_adam_state.pt``: ``torch.save(optimizer.state_dict())`` of an Adam over a Linear(4, 3) after
  one step, as PyBridge's own optimizer test files are (``{state, param_groups}``; ``optimizer.load_py``).
The TorchSharp-made samples (``torchsharp_adam_state.bin`` from ``optimizer.save_state_dict`` and
``torchsharp_tensor.bin`` from ``Tensor.Save``) come from the TorchSharp worker:
``dotnet Conformance.Workers.TorchSharp.dll check-samples DIR`` in the rootfs.
Needs the safetensors package (Debian 13's python3-safetensors: the pytorch-2.6 runtime has it).
"""

import json
import os
import sys
import zipfile
from typing import Dict, List, Tuple

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
    write_torchscript(out)
    write_optimizer(out)
    write_damaged(out)
    write_checkpoint(out)


class _NoParams(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x) + 1.0


class _ListOut(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        y = self.fc(x)
        return [y, y.sum(dim=1)]


class _TupleOut(_ListOut):
    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        y = self.fc(x)
        return y, y.relu()


class _DictOut(_ListOut):
    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:  # type: ignore[override]
        y = self.fc(x)
        return {"logits": y, "probs": torch.softmax(y, dim=1)}


class _Exported(_ListOut):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)

    @torch.jit.export
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x).tanh()


def _scale(x: torch.Tensor) -> torch.Tensor:
    return x * 2.0 + 1.0


def write_torchscript(out: str) -> None:
    """The TorchScript check samples: each loads with torch.jit.load, in PyTorch and in TorchSharp."""
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    torch.jit.script(_scale).save(os.path.join(out, "script_function.pt"))
    for name, cls in (("no_params", _NoParams), ("list", _ListOut), ("tuple", _TupleOut), ("dict", _DictOut), ("method", _Exported)):
        torch.manual_seed(0)
        torch.jit.save(torch.jit.script(cls().eval()), os.path.join(out, f"script_{name}.pt"))


def write_optimizer(out: str) -> None:
    """PyTorch's optimizer state dict after one Adam step over a Linear(4, 3) (seed 0)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.ones(2, 4)).sum().backward()
    opt.step()
    torch.save(opt.state_dict(), os.path.join(out, "pytorch_adam_state.pt"))


def write_checkpoint(out: str) -> None:
    """``mlp_checkpoint.pt``: a training checkpoint of the suite's ``mlp_dropout`` twin (seed 0, one SGD step), the
    dict a tutorial saves (epoch, model_state_dict, optimizer_state_dict, loss): ``--model-twin mlp_dropout``
    loads its model_state_dict."""
    torch.manual_seed(0)
    model = models.MlpDropout()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.eval()
    loss = model(torch.ones(2, model.fc1.in_features)).pow(2).mean()
    loss.backward()
    opt.step()
    torch.save({"epoch": 1, "model_state_dict": model.state_dict(), "optimizer_state_dict": opt.state_dict(), "loss": float(loss)},
               os.path.join(out, "mlp_checkpoint.pt"))


def write_damaged(out: str, source: str = "") -> None:
    """``truncated_60pct.pt``: the first 60 % of the 2.6 Adam checkpoint fixture (an interrupted copy), and
    ``empty.pt``: 0 bytes (a save that wrote nothing)."""
    source = source or os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "pytorch-2.6", "ckpt_adam.checkpoint.pt")
    with open(source, "rb") as f:
        data = f.read()
    with open(os.path.join(out, "truncated_60pct.pt"), "wb") as f:
        f.write(data[:len(data) * 6 // 10])
    open(os.path.join(out, "empty.pt"), "wb").close()


if __name__ == "__main__":
    write(sys.argv[1])
