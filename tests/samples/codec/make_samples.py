"""Writes the codec's torch 2.14 samples (run in the forky rootfs: chroot ROOTFS python3 make_samples.py DIR).

conj-neg.pt: tensors saved with their conj / neg bits, as torch.save writes them (metadata, the 7th
argument of _rebuild_tensor_v2); conj-neg.json: what torch.load(weights_only=True) gives for each
key once the bits are resolved (dtype, shape, SHA-256 of the contiguous little-endian bytes, values).
meta.pt: a tensor on the meta device (torch.save writes no record for its storage).
"""
import hashlib
import json
import os
import sys

import torch

out = sys.argv[1]
x64 = torch.tensor([1 + 2j, -3.5 - 0j, 0 + 0j, float("inf") - 1j], dtype=torch.complex64)
x128 = torch.tensor([[1 + 2j, -3 + 4j], [5 - 6j, -0.0 + 0j]], dtype=torch.complex128)
f32 = torch.tensor([1.0, -2.0, 0.0, -0.0, float("inf"), -float("inf"), 3.25e-39, float("nan")])
# torch negates complex numbers as 0 - z in its vector loops and as (-re, -im) in its scalar ones, so
# a zero or NaN part comes out differently by position and CPU: the codec refuses those, the sample has none.
z64 = torch.tensor([1 + 2j, -3.5 - 1j, float("inf") - 1j, 2 + 0.5j, 7 - 7j], dtype=torch.complex64)
z128 = torch.tensor([[1 + 2j, -3 + 4j], [5 - 6j, -1e-300 + 2j]], dtype=torch.complex128)
values = {
    "plain.complex64": x64,                      # shares its storage with the conj view below
    "conj.complex64": x64.conj(),
    "conj.complex128.t": x128.t().conj(),        # a non-contiguous view
    "conjneg.complex128": z128.conj()._neg_view(),
    "neg.complex64": z64._neg_view(),
    "neg.float32": f32._neg_view(),
    "plain.float32": f32,
    "neg.float64": torch.tensor([1.5, -0.0, 1e308])._neg_view(),
    "neg.float16": torch.tensor([1.5, -0.0, 65504.0], dtype=torch.float16)._neg_view(),
    "neg.bfloat16": torch.tensor([1.5, -0.0, 3e38], dtype=torch.bfloat16)._neg_view(),
    "neg.uint8": torch.tensor([0, 1, 128, 255], dtype=torch.uint8)._neg_view(),
    "neg.int8": torch.tensor([0, 1, -128, 127], dtype=torch.int8)._neg_view(),
    "neg.int16": torch.tensor([0, 1, -32768, 32767], dtype=torch.int16)._neg_view(),
    "neg.int32": torch.tensor([0, 1, -2**31, 2**31 - 1], dtype=torch.int32)._neg_view(),
    "neg.int64": torch.tensor([0, 1, -2**63, 2**63 - 1], dtype=torch.int64)._neg_view(),
}
path = os.path.join(out, "conj-neg.pt")
torch.save(values, path)
loaded = torch.load(path, weights_only=True)
expected = {}
for key, t in loaded.items():
    resolved = t.resolve_conj().resolve_neg().contiguous()
    raw = resolved.reshape(-1).view(torch.uint8).numpy().tobytes()
    expected[key] = {
        "dtype": str(t.dtype), "shape": list(t.shape), "conj": t.is_conj(), "neg": t.is_neg(),
        "sha256": hashlib.sha256(raw).hexdigest(), "bytes": raw.hex(),
    }
expected = {"torch": torch.__version__, "tensors": expected}
with open(os.path.join(out, "conj-neg.json"), "w") as f:
    json.dump(expected, f, indent=1)
    f.write("\n")

meta = os.path.join(out, "meta.pt")
torch.save({"w": torch.empty(2, 3, device="meta"), "b": torch.ones(3)}, meta)
m = torch.load(meta, weights_only=True)
assert m["w"].device.type == "meta" and m["b"].device.type == "cpu", m
print("wrote", path, meta)
