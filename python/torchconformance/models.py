"""PyTorch twins of the suite's models.

Each class has a C# twin in harness/Conformance.Workers.TorchSharp/Models/ with the same field
names in the same order: the field names *are* the state_dict keys. BUILDERS, at the end, names
each model the catalogue (catalogue/cases.json) refers to; Zoo.Builders is its C# twin.
"""

from typing import Callable, Dict, List

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import catalogue


class TheModelClass(nn.Module):
    """The seed's LeNet, exactly as in the PyTorch tutorial "Saving and loading models"."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = x.view(-1, 16 * 5 * 5)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x


class LeNetWithHead(nn.Module):
    """The seed's LeNet with its last layer named ``head`` and ``classes`` wide, for the loads users
    really do: ``LeNetWithHead("fc4", 10)`` is a warm start (fc3 unexpected, fc4 missing),
    ``LeNetWithHead("fc3", 11)`` a shape mismatch that must be refused naming fc3 and both shapes."""

    def __init__(self, head: str, classes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.head = head
        self.add_module(head, nn.Linear(84, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = x.view(-1, 16 * 5 * 5)
        return getattr(self, self.head)(F.relu(self.fc2(F.relu(self.fc1(x)))))


class MlpDropout(nn.Module):
    """An MLP with Dropout: eval() must switch the dropout off."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(20, 32)
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(F.relu(self.fc1(x))))


class CnnBatchNorm(nn.Module):
    """A CNN with BatchNorm2d: training moves running_mean, running_var and num_batches_tracked."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2)
        return self.fc(torch.flatten(x, 1))


class NormGelu(nn.Module):
    """BatchNorm1d and LayerNorm with GELU."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.bn = nn.BatchNorm1d(32)
        self.ln = nn.LayerNorm(32)
        self.fc2 = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.ln(self.bn(self.fc1(x)))))


class EmbeddingBiLstm(nn.Module):
    """Embedding, then a 2-layer bidirectional LSTM, then Linear on the last step."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(50, 16)
        self.lstm = nn.LSTM(16, 24, num_layers=2, bidirectional=True, batch_first=True)
        self.fc = nn.Linear(48, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.emb(x))
        return self.fc(out[:, -1, :])


class GruNet(nn.Module):
    """A GRU, then Linear on the last step."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(10, 20, batch_first=True)
        self.fc = nn.Linear(20, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(x)
        return self.fc(out[:, -1, :])


class TransformerEncoder(nn.Module):
    """One TransformerEncoderLayer: its attention keeps q, k, v packed in self_attn.in_proj_weight."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(d_model=16, nhead=4, dim_feedforward=32, dropout=0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class Nested(nn.Module):
    """Nesting through Sequential, ModuleList and ModuleDict: keys like seq.2.weight, blocks.1.bias, heads.b.weight."""

    def __init__(self) -> None:
        super().__init__()
        self.seq = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16))
        self.blocks = nn.ModuleList([nn.Linear(16, 16), nn.Linear(16, 16)])
        self.heads = nn.ModuleDict({"a": nn.Linear(16, 2), "b": nn.Linear(16, 3)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.seq(x)
        for block in self.blocks:
            x = F.relu(block(x))
        return torch.cat([self.heads["a"](x), self.heads["b"](x)], dim=1)


class TiedWeights(nn.Module):
    """An embedding and an output projection sharing one Parameter, as language models do."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(30, 12)
        self.proj = nn.Linear(12, 30, bias=False)
        self.proj.weight = self.emb.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.emb(x)).mean(dim=1)


class NonPersistentBuffer(nn.Module):
    """A non-persistent buffer, which must not appear in the state dict, beside a persistent one."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 4)
        self.register_buffer("offset", torch.full((4,), 0.5))
        self.register_buffer("scale", torch.full((4,), 2.0), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) * self.scale + self.offset


# Every dtype both sides have, by wire name: the all_dtypes case's list in the catalogue.
ALL_DTYPES = [(name, getattr(torch, name)) for name in catalogue.case("all_dtypes")["dtypes"]]


class AllDtypes(nn.Module):
    """A buffer of each dtype, plus a 0-dim and a 0-size tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)
        for name, dtype in ALL_DTYPES:
            values = torch.arange(6).reshape(2, 3)
            self.register_buffer(f"b_{name}", (values % 2).to(dtype) if dtype == torch.bool else values.to(dtype))
        self.register_buffer("scalar", torch.tensor(3.5))
        self.register_buffer("empty", torch.zeros(0, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


# The dtypes newer PyTorch has and older versions lack, by wire name, with the release that added
# each (the new_dtypes case's list; dtypes.json's torch_since). Names, not torch attributes: torch
# 1.13 has none of them.
NEW_DTYPES = [(name, catalogue.require_dtype(name)["torch_since"]) for name in catalogue.case("new_dtypes")["dtypes"]]


def missing_dtypes() -> List[str]:
    """The NEW_DTYPES this torch lacks, each with the release that added it."""
    return [f"torch.{name} (added in {added})" for name, added in NEW_DTYPES if not hasattr(torch, name)]


class NewDtypes(nn.Module):
    """A buffer of each dtype newer PyTorch has and older versions lack, beside a Linear for outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)
        for name, _ in NEW_DTYPES:
            # 0..5 is exact in every one of them (and stays exact after perturb's +1).
            self.register_buffer(f"b_{name}", torch.arange(6).reshape(2, 3).to(getattr(torch, name)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def _storage_ptr(t: torch.Tensor) -> int:
    return (t.untyped_storage() if hasattr(t, "untyped_storage") else t.storage()).data_ptr()  # torch < 2.0: storage()


class Layouts(nn.Module):
    """The layouts that trip writers and readers: a transposed (non-contiguous) parameter, and two
    slices of one storage, the second at an offset."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.wt = nn.Parameter((torch.arange(12, dtype=torch.float32) / 10).reshape(3, 4).t())
        base = torch.arange(10, dtype=torch.float32)
        self.register_buffer("head", base[:4])
        self.register_buffer("tail", base[4:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) + x @ self.wt + self.head.sum() + self.tail.sum()

    def _apply(self, fn, *args, **kwargs):
        """``model.to(device)`` moves each buffer alone, which splits head and tail into two storages:
        they are sliced again from one moved storage, so the layout survives ``--device``."""
        result = super()._apply(fn, *args, **kwargs)
        head, tail = self._buffers["head"], self._buffers["tail"]
        if head is not None and tail is not None and _storage_ptr(head) != _storage_ptr(tail):
            base = torch.cat([head, tail])
            self._buffers["head"], self._buffers["tail"] = base[:head.numel()], base[head.numel():]
        return result


class _Buffers(nn.Module):
    """A child holding only buffers: the root keeps none, so both sides list keys in one order
    (TorchSharp lists a module's own buffers after its children, PyTorch before)."""

    def __init__(self, buffers: Dict[str, torch.Tensor]) -> None:
        super().__init__()
        for name, t in buffers.items():
            self.register_buffer(name, t)


class StorageViews(nn.Module):
    """Three buffers viewing one storage of 24 floats, as SAM's vit_b checkpoint has them
    (TorchSharp.PyBridge#18): ``a`` contiguous at offset 0, ``b`` a column slice (non-contiguous,
    offset 7), ``c`` a transpose (non-contiguous, offset 18)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)
        base = torch.arange(24, dtype=torch.float32) / 8
        self.views = _Buffers({"a": base[0:6], "b": base[6:18].view(3, 4)[:, 1:3], "c": base[18:24].view(2, 3).t()})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.views
        return self.fc(x) + v.a.sum() + (v.b * v.c).sum()


class StorageOffsets(nn.Module):
    """Three contiguous buffers viewing one storage of 32 floats at offsets 0, 4 and 20 (12..19 and
    26..31 belong to none): offsets alone, with no non-contiguous view to stop a reader first."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)
        base = torch.arange(32, dtype=torch.float32) / 8
        self.views = _Buffers({"a": base[0:4], "b": base[4:12].view(2, 4), "c": base[20:26]})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.views
        return self.fc(x) + v.a.sum() + v.b.sum() * 2 + v.c.sum() * 3


# Whether this torch makes negative views: without them conj_neg's ``n`` is a plain negated tensor
# holding the same values, so its files carry no neg bit to judge.
NEG_VIEW = hasattr(torch.Tensor, "_neg_view")


def _neg_view(t: torch.Tensor) -> torch.Tensor:
    """``t``'s negative view (neg bit set, storage untouched); a torch without ``_neg_view`` gets a
    plain negated tensor instead (NEG_VIEW says which), so it still builds the twin and loads files."""
    return t._neg_view() if NEG_VIEW else -t


class ConjNeg(nn.Module):
    """Buffers whose values exist only through a bit torch keeps beside the storage: ``c`` a conjugate
    view of a complex64 tensor, ``n`` a negative view of a float32 one, ``cn`` the conjugate of a
    complex64 view of a float32 storage. A writer that saves the raw storage without the bit, or a
    reader that drops the bit, loads other values; the forward reads every buffer's resolved values
    (each with its own weight, so two dropped bits cannot cancel) and its outputs change too."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)
        re = torch.arange(6, dtype=torch.float32) / 2 - 1
        im = torch.arange(6, dtype=torch.float32) / 4 + 0.5  # no zero imaginary part: conj changes every element
        floats = torch.arange(6, dtype=torch.float32) / 2 + 0.25  # n = -floats is never 0, before or after perturb's +1
        pairs = (torch.arange(12, dtype=torch.float32) / 8 + 0.125).reshape(6, 2)
        self.views = _Buffers({
            "c": torch.complex(re, im).reshape(2, 3).conj(),
            "n": _neg_view(floats.reshape(2, 3)),
            "cn": torch.view_as_complex(pairs).conj(),
        })

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.views
        c, n, cn = v.c.resolve_conj(), v.n.resolve_neg(), v.cn.resolve_conj()
        return self.fc(x) + c.real.sum() + 2 * c.imag.sum() + 3 * n.sum() + 5 * cn.real.sum() + 7 * cn.imag.sum()


def _quantize_inputs() -> torch.Tensor:
    return torch.tensor([[0.0, 0.5, 1.0], [-1.5, 2.25, 3.0]])


class Quantized(nn.Module):
    """Quantized buffers beside a Linear: per-tensor qint8, per-channel qint8 (axis 0), per-tensor quint8."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)
        x = _quantize_inputs()
        self.q = _Buffers({
            "per_tensor": torch.quantize_per_tensor(x, 0.25, 3, torch.qint8),
            "per_channel": torch.quantize_per_channel(x, torch.tensor([0.25, 0.5], dtype=torch.float64), torch.tensor([1, -2]), 0, torch.qint8),
            "quint8": torch.quantize_per_tensor(x, 0.5, 10, torch.quint8),
        })

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self.q
        return self.fc(x) + q.per_tensor.dequantize().sum() + q.per_channel.dequantize().sum() + q.quint8.dequantize().sum()


class CheckpointNet(nn.Module):
    """The small model every training-checkpoint case trains: two Linear layers around tanh."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.tanh(self.fc1(x)))


def _resnet18() -> nn.Module:
    import torchvision  # Debian's python3-torchvision; absent runtimes answer not_applicable

    return torchvision.models.resnet18(num_classes=10)


# The model builders the catalogue names (a case's `model`, its `variants`, the checkpoint model);
# twin: Zoo.Builders in harness/Conformance.Workers.TorchSharp/Models/Zoo.cs, same names, same order.
BUILDERS: Dict[str, Callable[[], nn.Module]] = {
    "lenet": TheModelClass,
    "lenet_fc4": lambda: LeNetWithHead("fc4", 10),
    "lenet_fc3_11_classes": lambda: LeNetWithHead("fc3", 11),
    "mlp_dropout": MlpDropout,
    "cnn_batchnorm": CnnBatchNorm,
    "norm_gelu": NormGelu,
    "embedding_bilstm": EmbeddingBiLstm,
    "gru": GruNet,
    "transformer_encoder": TransformerEncoder,
    "nested": Nested,
    "tied_weights": TiedWeights,
    "nonpersistent_buffer": NonPersistentBuffer,
    "all_dtypes": AllDtypes,
    "layouts": Layouts,
    "new_dtypes": NewDtypes,
    # Several views of one storage; quantized buffers.
    "storage_views": StorageViews,
    "storage_offsets": StorageOffsets,
    "quantized": Quantized,
    # Conjugate and negative views (bits beside the storage).
    "conj_neg": ConjNeg,
    "resnet18": _resnet18,
    "checkpoint_net": CheckpointNet,
}
