"""Fuzzing tsnative's reader with structure-aware mutations of real TorchSharp files and random bytes.

    python3 -m tests.fuzz_tsnative --seconds 20 --seed 1 --json OUT.json
    python3 -m tests.fuzz_tsnative --check FILE... [--json OUT.json]   (outcome "accepted" or as below)
    python3 -m tests.fuzz_tsnative --write-attacks python/tests/attacks/tsnative
    python3 -m tests.fuzz_tsnative --mutate duplicate_key --input IN --output OUT

Seeds are TorchSharp's own ``Module.save`` files (fixtures/torchsharp-0.107/*.torchsharp_native.bin),
and the real ``Tensor.Save`` and ``optimizer.save_state_dict`` samples in
python/tests/samples/torchsharp-0.107. Each input is written to a file and read by
``tsnative.load`` in a child process, so that a hang is cut off by a per-input timeout and a native
crash kills only the child. Every input ends in one class:

* ``accepted_identical``: loaded, the same keys, order, dtypes, shapes and bytes as its seed;
* ``accepted_different``: loaded, but not what the seed holds (a mutation the format cannot see,
  a flipped data byte; or random bytes that happen to be a state dict);
* ``clean_error``: ``TorchSharpFormatError`` whose message names the file;
* ``crash``: any other exception, a ``TorchSharpFormatError`` that does not name the file, or the
  child dying;
* ``hang``: no answer within ``--timeout`` seconds (the child is killed and replaced);
* ``over_cap``: the read grew the child's peak memory (VmHWM, reset per input through
  /proc/self/clear_refs) by more than ``--cap-mib`` MiB plus three times the input's size (the file,
  one tensor's copy, the tensors).

The run is deterministic for a given seed: the same inputs in the same order (how many fit in
``--seconds`` depends on the machine). Crash, hang and over_cap must be zero.
"""

import argparse
import glob
import json
import os
import random
import select
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
OUTCOMES = ("accepted_identical", "accepted_different", "clean_error", "crash", "hang", "over_cap")
FAILURES = ("crash", "hang", "over_cap")
STARTUP_TIMEOUT = 120  # seconds for the reader process to import torch


# ---------------------------------------------------------------- the format, as bytes

def leb(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value == 0:
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


class Field:
    """One LEB128 number in a seed: where it is and what it says."""

    def __init__(self, kind: str, start: int, end: int, value: int, entry: int = -1) -> None:
        self.kind, self.start, self.end, self.value, self.entry = kind, start, end, value, entry


class Entry:
    def __init__(self) -> None:
        self.start = self.end = 0
        self.key_start = self.key_end = 0
        # Set by Layout as it reads the entry; a placeholder until then.
        self.dtype = Field("dtype", 0, 0, -1)
        self.ndim = Field("ndim", 0, 0, -1)
        self.dims: List[Field] = []
        self.data_start = self.data_end = 0
        self.code = -1


class Layout:
    """Where every field of a valid Module.save file lies (None for files of other kinds)."""

    def __init__(self, data: bytes) -> None:
        from torchconformance.formats import tsnative

        self.fields: List[Field] = []
        self.entries: List[Entry] = []
        pos = 0

        def read(kind: str, entry: int = -1) -> Field:
            nonlocal pos
            start, value, shift = pos, 0, 0
            while True:
                b = data[pos]
                pos += 1
                value |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
            f = Field(kind, start, pos, value, entry)
            self.fields.append(f)
            return f

        self.count = read("count")
        for i in range(self.count.value):
            e = Entry()
            e.start = pos
            n = read("key_length", i).value
            e.key_start, e.key_end = pos, pos + n
            pos += n
            e.dtype = read("dtype", i)
            e.code = e.dtype.value
            e.ndim = read("ndim", i)
            e.dims = [read("dim", i) for _ in range(e.ndim.value)]
            numel = 1
            for d in e.dims:
                numel *= d.value
            size = numel * tsnative.DTYPE_SIZES[tsnative.CODE_DTYPES[e.code]]
            e.data_start, e.data_end = pos, pos + size
            pos += size
            e.end = pos
            self.entries.append(e)
        if pos != len(data):
            raise ValueError("not a Module.save file")


def _replace(data: bytes, start: int, end: int, new: bytes) -> bytes:
    return data[:start] + new + data[end:]


# ---------------------------------------------------------------- mutations

Mutation = Callable[[random.Random, bytes, Optional[Layout]], Tuple[bytes, str]]

HUGE = [0, 1, 2, 63, 64, 65, 127, 128, 255, 9177, 200_000, (1 << 31) - 1, 1 << 31, 1 << 32, 1 << 40,
        (1 << 62) - 1, 1 << 62, (1 << 62) + 1, (1 << 63) - 1, 1 << 63, (1 << 64) - 1, 1 << 70]


def m_leb_field(rng, data, lay):
    f = rng.choice(lay.fields)
    choice = rng.randrange(5)
    if choice == 0:
        v = rng.choice(HUGE)
        new, what = leb(v), f"= {v}"
    elif choice == 1:
        v = max(0, f.value + rng.choice([-2, -1, 1, 2]))
        new, what = leb(v), f"= {v} (was {f.value})"
    elif choice == 2:
        v = rng.randrange(1 << rng.choice([7, 14, 21, 35, 63]))
        new, what = leb(v), f"= {v}"
    elif choice == 3:  # over-long encoding of the same value: redundant continuation bytes
        raw = bytearray(leb(f.value))
        raw[-1] |= 0x80
        new, what = bytes(raw) + b"\x80" * rng.randrange(0, 9) + b"\x00", "over-long encoding"
    else:  # a number that never ends
        new, what = b"\xff" * rng.randrange(10, 20), "unterminated LEB128"
    return _replace(data, f.start, f.end, new), f"{f.kind} of entry {f.entry} {what}"


def m_duplicate_entry(rng, data, lay):
    e = rng.choice(lay.entries)
    copy = data[e.start:e.end]
    where = rng.choice([e.end, len(data), lay.count.end])
    out = data[:where] + copy + data[where:]
    return _replace(out, lay.count.start, lay.count.end, leb(lay.count.value + 1)), f"entry {lay.entries.index(e)} duplicated at byte {where}"


def m_swap_dtype(rng, data, lay):
    e = rng.choice(lay.entries)
    code = rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 23, 24, 27, 28, 29, 9177, 1 << 40])
    return _replace(data, e.dtype.start, e.dtype.end, leb(code)), f"dtype of entry {lay.entries.index(e)} {e.code} -> {code}"


def m_huge_rank(rng, data, lay):
    e = rng.choice(lay.entries)
    ndim = rng.choice([65, 100, 200_000, 1 << 20, 1 << 40, (1 << 63) - 1])
    dims = b"\x01" * min(ndim, 200_000) if rng.random() < 0.7 else b""
    return _replace(data, e.ndim.start, e.dims[-1].end if e.dims else e.ndim.end, leb(ndim) + dims), f"rank of entry {lay.entries.index(e)} = {ndim}"


def m_huge_dim(rng, data, lay):
    e = rng.choice([x for x in lay.entries if x.dims] or lay.entries)
    if not e.dims:
        return m_huge_rank(rng, data, lay)
    out = data
    n = rng.randrange(1, len(e.dims) + 1)
    for d in sorted(rng.sample(e.dims, n), key=lambda d: -d.start):  # back to front: offsets stay valid
        out = _replace(out, d.start, d.end, leb(rng.choice([0, 1 << 31, 1 << 32, 1 << 40, 1 << 62, (1 << 62) + 1, (1 << 63) - 1])))
    return out, f"{n} dims of entry {lay.entries.index(e)} made huge or zero"


def m_truncate(rng, data, lay):
    if lay and rng.random() < 0.5:
        f = rng.choice(lay.fields)
        cut = rng.randrange(f.start, f.end + 1)
    else:
        cut = rng.randrange(0, len(data)) if data else 0
    return data[:cut], f"truncated to {cut} of {len(data)} bytes"


def m_flip(rng, data, lay):
    if not data:  # an earlier mutation may have emptied the input: nothing to flip
        return data, "empty input, nothing flipped"
    out = bytearray(data)
    n = rng.randrange(1, 9)
    for _ in range(n):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out), f"{n} bits flipped"


def m_header_flip(rng, data, lay):
    """Bit flips confined to the non-data bytes (counts, keys, dtypes, dims), where they matter most."""
    spans = [(f.start, f.end) for f in lay.fields] + [(e.key_start, e.key_end) for e in lay.entries if e.key_end > e.key_start]
    out = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        s, t = rng.choice(spans)
        i = rng.randrange(s, t)
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out), "bits flipped in the header fields"


def m_insert_delete(rng, data, lay):
    i = rng.randrange(len(data) + 1)
    if rng.random() < 0.5 and len(data) > 1:
        j = min(len(data), i + rng.randrange(1, 64))
        return data[:i] + data[j:], f"bytes {i}..{j} deleted"
    junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
    return data[:i] + junk + data[i:], f"{len(junk)} random bytes inserted at {i}"


def m_key(rng, data, lay):
    e = rng.choice(lay.entries)
    i = lay.entries.index(e)
    kind = rng.randrange(4)
    if kind == 0:
        key = b"\xff\xfe" + data[e.key_start:e.key_end]
        what = "invalid UTF-8"
    elif kind == 1:
        other = rng.choice(lay.entries)
        key = data[other.key_start:other.key_end]
        what = f"renamed to entry {lay.entries.index(other)}'s key"
    elif kind == 2:
        key, what = b"", "empty"
    else:
        key, what = "ключ\u2028\n\x00".encode("utf-8"), "odd but valid UTF-8"
    kl = [f for f in lay.fields if f.kind == "key_length" and f.entry == i][0]
    return _replace(data, kl.start, e.key_end, leb(len(key)) + key), f"key of entry {i} {what}"


def m_key_length(rng, data, lay):
    kl = rng.choice([f for f in lay.fields if f.kind == "key_length"])
    v = rng.choice([(1 << 31) - 1, 1 << 31, 1 << 35, kl.value + 1, kl.value + 1000, len(data)])
    return _replace(data, kl.start, kl.end, leb(v)), f"key length of entry {kl.entry} = {v}"


def m_bool_byte(rng, data, lay):
    bools = [e for e in lay.entries if e.code == 11 and e.data_end > e.data_start]
    if not bools:
        return m_swap_dtype(rng, data, lay)
    e = rng.choice(bools)
    i = rng.randrange(e.data_start, e.data_end)
    return _replace(data, i, i + 1, bytes([rng.randrange(2, 256)])), f"bool element of entry {lay.entries.index(e)} set to a byte above 1"


def m_count(rng, data, lay):
    v = rng.choice([0, lay.count.value - 1, lay.count.value + 1, lay.count.value * 2, 1 << 40, (1 << 63) - 1])
    return _replace(data, lay.count.start, lay.count.end, leb(max(v, 0))), f"count = {v} (was {lay.count.value})"


def m_trailing(rng, data, lay):
    return data + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 32))), "trailing bytes"


def m_swap_entries(rng, data, lay):
    if len(lay.entries) < 2:
        return m_trailing(rng, data, lay)
    a, b = sorted(rng.sample(range(len(lay.entries)), 2))
    ea, eb = lay.entries[a], lay.entries[b]
    out = data[:ea.start] + data[eb.start:eb.end] + data[ea.end:eb.start] + data[ea.start:ea.end] + data[eb.end:]
    return out, f"entries {a} and {b} swapped"


STRUCTURED: Dict[str, Mutation] = {
    "leb_field": m_leb_field, "duplicate_entry": m_duplicate_entry, "swap_dtype": m_swap_dtype,
    "huge_rank": m_huge_rank, "huge_dim": m_huge_dim, "truncate": m_truncate, "flip": m_flip,
    "header_flip": m_header_flip, "insert_delete": m_insert_delete, "key": m_key, "key_length": m_key_length,
    "bool_byte": m_bool_byte, "count": m_count, "trailing": m_trailing, "swap_entries": m_swap_entries,
}
UNSTRUCTURED: Dict[str, Mutation] = {"truncate": m_truncate, "flip": m_flip, "insert_delete": m_insert_delete, "trailing": m_trailing}


def random_input(rng: random.Random) -> Tuple[bytes, str]:
    kind = rng.randrange(3)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 512))), "random bytes"
    if kind == 1:  # a plausible header, then noise
        head = leb(rng.randrange(1, 4)) + leb(3) + b"abc" + leb(rng.choice([6, 11, 4])) + leb(rng.randrange(0, 5))
        return head + bytes(rng.randrange(256) for _ in range(rng.randrange(0, 256))), "random bytes after a plausible header"
    # random small LEB128 numbers: counts, lengths and dims that look like the format
    return b"".join(leb(rng.choice([0, 1, 2, 3, 6, 11, 64, 65, rng.randrange(1 << 16)])) for _ in range(rng.randrange(1, 64))), "random LEB128 numbers"


# ---------------------------------------------------------------- seeds

def seed_files() -> List[str]:
    files = sorted(glob.glob(os.path.join(REPO, "fixtures", "torchsharp-0.107", "*.torchsharp_native.bin")))
    files += sorted(glob.glob(os.path.join(REPO, "python", "tests", "samples", "torchsharp-0.107", "*.bin")))
    files += sorted(glob.glob(os.path.join(REPO, "python", "tests", "samples", "torchsharp-0.107", "*.dat")))
    return files


# ---------------------------------------------------------------- the child: reads one file per request

def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


def child(reader: str) -> int:
    import importlib

    import torch

    from torchconformance.formats import tsnative
    from torchconformance.observe import tensor_bytes

    # --reader MODULE:FUNCTION reads with another implementation (an older tsnative, to see that the
    # fuzz finds what it was written to find); its TorchSharpFormatError (or FormatError) is "clean".
    module_name, _, function = reader.partition(":")
    module = importlib.import_module(module_name)
    load = getattr(module, function or "load")
    clean = getattr(module, "TorchSharpFormatError", None) or module.FormatError

    expected: Dict[str, object] = {}

    def fingerprint(sd):
        return [(k, str(t.dtype), tuple(t.shape), tensor_bytes(t)) for k, t in sd.items()]

    def of_seed(seed: str):
        if seed not in expected:
            try:
                expected[seed] = fingerprint(tsnative.load(seed))
            except Exception:  # noqa: BLE001 - a seed that is not a state dict (Tensor.Save, optimizer)
                expected[seed] = None
        return expected[seed]

    torch.set_num_threads(1)
    can_reset = _reset_peak()
    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")  # imports done: each request's timeout starts now
    out.flush()
    for line in sys.stdin:
        req = json.loads(line)
        path, seed = req["path"], req.get("seed")
        if seed:
            of_seed(seed)  # loaded before measuring
        reset = _reset_peak()
        rss_before = _status_kib("VmRSS")
        reply: Dict[str, Any] = {"type": None, "message": None}
        try:
            sd = load(path)
        except clean as e:
            reply.update(type=type(e).__name__, message=str(e))
            reply["outcome"] = "clean_error" if path in str(e) else "crash"
        except Exception as e:  # noqa: BLE001 - exactly what the fuzz counts
            reply.update(type=type(e).__name__, message=str(e)[:2000], outcome="crash")
        else:
            if req.get("plain"):  # --check: nothing to compare with
                reply["outcome"] = "accepted"
            else:
                same = seed is not None and of_seed(seed) is not None and fingerprint(sd) == of_seed(seed)
                reply["outcome"] = "accepted_identical" if same else "accepted_different"
            reply["keys"] = list(sd)[:50]
            reply["entries"] = len(sd)
            del sd
        reply["peak_growth_bytes"] = max(0, _status_kib("VmHWM") - rss_before) * 1024 if reset else None
        reply["peak_method"] = "VmHWM after clear_refs" if can_reset else "unavailable"
        out.write(json.dumps(reply) + "\n")
        out.flush()
    return 0


class Child:
    """The reader in a separate process, restarted after a crash or a hang."""

    def __init__(self, timeout: float, reader: str = "torchconformance.formats.tsnative:load") -> None:
        self.timeout = timeout
        self.reader = reader
        self.proc: Optional[subprocess.Popen] = None
        self.starts = 0

    def _start(self) -> None:
        env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "python") + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   OMP_NUM_THREADS="1")
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.fuzz_tsnative", "--child", "--reader", self.reader], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True, bufsize=1)
        self.starts += 1
        assert self.proc.stdout
        ready, _, _ = select.select([self.proc.stdout], [], [], STARTUP_TIMEOUT)
        if not ready or not self.proc.stdout.readline():
            self.kill()
            raise RuntimeError(f"the reader process ({sys.executable} -m tests.fuzz_tsnative --child) "
                               f"did not start within {STARTUP_TIMEOUT} s")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def check(self, path: str, seed: Optional[str], plain: bool = False) -> dict:
        if self.proc is None:
            self._start()
        assert self.proc and self.proc.stdin and self.proc.stdout
        try:
            self.proc.stdin.write(json.dumps({"path": path, "seed": seed, "plain": plain}) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            self.kill()
            return {"outcome": "crash", "type": "child died", "message": "the reader process died before the request"}
        limit = self.timeout
        ready, _, _ = select.select([self.proc.stdout], [], [], limit)
        if not ready:
            self.kill()
            return {"outcome": "hang", "type": None, "message": f"no answer within {limit:g} s"}
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            self.proc = None
            return {"outcome": "crash", "type": "child died", "message": f"the reader process exited with {code}"}
        return json.loads(line)


# ---------------------------------------------------------------- the run

def run(seconds: float, seed: int, timeout: float, cap_mib: float, keep_dir: Optional[str], max_inputs: Optional[int],
        reader: str = "torchconformance.formats.tsnative:load") -> dict:
    rng = random.Random(seed)
    seeds = []
    for path in seed_files():
        with open(path, "rb") as f:
            data = f.read()
        try:
            lay: Optional[Layout] = Layout(data)
        except Exception:  # noqa: BLE001 - Tensor.Save, optimizer files, and the broken layouts fixture
            lay = None
        seeds.append((path, data, lay))
    if not seeds:
        raise SystemExit("no seed files found under fixtures/torchsharp-0.107 or python/tests/samples")
    counts = {k: 0 for k in OUTCOMES}
    by_mutation: Dict[str, Dict[str, int]] = {}
    failures: List[dict] = []
    peak_max = 0
    child_proc = Child(timeout, reader)
    started = time.monotonic()
    n = 0
    work = tempfile.mkdtemp(prefix="fuzz-tsnative-")
    try:
        # Every seed as it is first: they are the identity baseline.
        queue = [(p, d, "seed") for p, d, _ in seeds]
        while True:
            if max_inputs is not None and n >= max_inputs:
                break
            if n >= len(seeds) and time.monotonic() - started >= seconds:
                break
            if queue:
                seed_path, data, name = queue.pop(0)
                desc = "unchanged"
            elif rng.random() < 0.1:
                seed_path, name = None, "random"
                data, desc = random_input(rng)
            else:
                seed_path, base, lay = rng.choice(seeds)
                table = STRUCTURED if lay is not None else UNSTRUCTURED
                name = rng.choice(sorted(table))
                data, desc = table[name](rng, base, lay)
                if rng.random() < 0.15 and lay is not None:  # a second mutation on top, structure-blind
                    data, more = UNSTRUCTURED[rng.choice(sorted(UNSTRUCTURED))](rng, data, None)
                    desc += "; " + more
            path = os.path.join(work, f"input-{n:06d}.bin")
            with open(path, "wb") as f:
                f.write(data)
            reply = child_proc.check(path, seed_path)
            outcome = reply["outcome"]
            growth = reply.get("peak_growth_bytes")
            cap = int(cap_mib * 1024 * 1024) + 3 * len(data)
            if growth is not None:
                peak_max = max(peak_max, growth)
                if outcome not in ("crash", "hang") and growth > cap:
                    outcome = "over_cap"
            counts[outcome] += 1
            by_mutation.setdefault(name, {k: 0 for k in OUTCOMES})[outcome] += 1
            if outcome in FAILURES:
                record = {"input": n, "outcome": outcome, "mutation": name, "what": desc, "seed": seed_path and os.path.relpath(seed_path, REPO),
                          "bytes": len(data), "type": reply.get("type"), "message": (reply.get("message") or "")[:500], "peak_growth_bytes": growth}
                if keep_dir:
                    os.makedirs(keep_dir, exist_ok=True)
                    keep = os.path.join(keep_dir, f"{outcome}-{n:06d}-{name}.bin")
                    with open(keep, "wb") as f:
                        f.write(data)
                    record["kept"] = keep
                failures.append(record)
            os.unlink(path)
            n += 1
    finally:
        child_proc.kill()
        os.rmdir(work)
    return {
        "seed": seed, "reader": reader, "seconds": round(time.monotonic() - started, 2), "inputs": n, "seeds": [os.path.relpath(p, REPO) for p, _, _ in seeds],
        "outcomes": counts, "by_mutation": by_mutation, "failures": failures[:50], "timeout_s": timeout, "cap_mib": cap_mib,
        "cap_rule": f"peak memory growth <= {cap_mib:g} MiB + 3 x input size", "peak_growth_max_bytes": peak_max,
        "reader_restarts": child_proc.starts - 1 if child_proc.starts else 0,
        "ok": all(counts[k] == 0 for k in FAILURES) and n > 0,
    }


def check_files(paths: List[str], timeout: float, reader: str = "torchconformance.formats.tsnative:load") -> List[dict]:
    c = Child(timeout, reader)
    try:
        return [dict(c.check(os.path.abspath(p), None, plain=True), path=os.path.abspath(p)) for p in paths]
    finally:
        c.kill()


# ---------------------------------------------------------------- attacks: the worst inputs, kept as files

def _entry(key: str, code: int, dims: List[int], data: bytes) -> bytes:
    raw = key.encode("utf-8")
    return leb(len(raw)) + raw + leb(code) + leb(len(dims)) + b"".join(leb(d) for d in dims) + data


def attacks() -> List[Tuple[str, str, bytes]]:
    """(name, what it is, bytes): each must be refused with TorchSharpFormatError naming the file."""
    with open(os.path.join(REPO, "fixtures", "torchsharp-0.107", "all_dtypes.torchsharp_native.bin"), "rb") as f:
        base = f.read()
    lay = Layout(base)
    samples = os.path.join(REPO, "python", "tests", "samples", "torchsharp-0.107")

    def read(name: str) -> bytes:
        with open(os.path.join(samples, name), "rb") as f:
            return f.read()

    e0, e1 = lay.entries[0], lay.entries[1]
    dup = base[e0.start:e0.end]
    with_dup = leb(lay.count.value + 1) + base[lay.count.end:] + dup
    bools = [e for e in lay.entries if e.code == 11][0]
    out = [
        ("duplicate_key", "all_dtypes with its first entry (fc.weight) appended again; count + 1", with_dup),
        ("rank_200000", "entry 0 declares 200,000 dims of size 1", _replace(base, e0.ndim.start, e0.dims[-1].end, leb(200_000) + b"\x01" * 200_000)),
        ("rank_65", "entry 0 declares 65 dims of size 1: one over PyTorch's limit", _replace(base, e0.ndim.start, e0.dims[-1].end, leb(65) + b"\x01" * 65)),
        ("rank_2pow40", "entry 0 declares 2^40 dims, and the file ends", _replace(base, e0.ndim.start, len(base), leb(1 << 40))),
        ("dim_2pow62_plus1", "entry 0's first dim is 2^62 + 1", _replace(base, e0.dims[0].start, e0.dims[0].end, leb((1 << 62) + 1))),
        ("dim_2pow62", "entry 0's first dim is 2^62: allowed alone, but 2^62 x 4 float32 bytes overflow", _replace(base, e0.dims[0].start, e0.dims[0].end, leb(1 << 62))),
        ("stride_overflow", "entry 1 is float32 [0, 2^62, 2^62]: no elements, but the strides overflow", _replace(base, e1.ndim.start, e1.data_end, leb(3) + leb(0) + leb(1 << 62) + leb(1 << 62))),
        ("numel_itemsize_overflow", "entry 0 is float32 [2^31, 2^31]: fits the dims, needs 2^64 bytes", _replace(base, e0.ndim.start, e0.dims[-1].end, leb(2) + leb(1 << 31) + leb(1 << 31))),
        ("more_than_remains", "entry 0 is float32 [1000, 1000]: 4 MB of data in a 498-byte file", _replace(base, e0.dims[0].start, e0.dims[-1].end, leb(1000) + leb(1000))),
        ("count_2pow62", "the count says 2^62 entries", _replace(base, lay.count.start, lay.count.end, leb(1 << 62))),
        ("count_too_small", "the count says 1 entry: the rest are trailing bytes", _replace(base, lay.count.start, lay.count.end, leb(1))),
        ("key_length_2pow31", "entry 0's key length is 2^31", _replace(base, e0.start, e0.key_start, leb(1 << 31))),
        ("key_invalid_utf8", "entry 0's key starts with bytes ff fe", _replace(base, e0.start, e0.key_end, leb(e0.key_end - e0.key_start + 2) + b"\xff\xfe" + base[e0.key_start:e0.key_end])),
        ("dtype_9177", "entry 0's dtype code is 9177", _replace(base, e0.dtype.start, e0.dtype.end, leb(9177))),
        ("dtype_float8", "entry 0's dtype is libtorch's Float8_e5m2 (23), which TorchSharp lacks", _replace(base, e0.dtype.start, e0.dtype.end, leb(23))),
        ("dtype_quantized", "entry 0's dtype is TorchSharp's QInt8 (12)", _replace(base, e0.dtype.start, e0.dtype.end, leb(12))),
        ("leb128_unterminated", "the count is 16 bytes of 0xff", b"\xff" * 16 + base[lay.count.end:]),
        ("leb128_2pow63", "entry 0's first dim is 2^63, which TorchSharp's signed long cannot hold", _replace(base, e0.dims[0].start, e0.dims[0].end, leb(1 << 63))),
        ("bool_byte_2", "a bool tensor element is the byte 2", _replace(base, bools.data_start, bools.data_start + 1, b"\x02")),
        ("trailing_bytes", "7 bytes after the last entry", base + b"garbage"),
        ("truncated_in_data", "cut in the middle of entry 1's data", base[:(e1.data_start + e1.data_end) // 2]),
        ("truncated_in_key", "cut in the middle of entry 1's key", base[:(e1.key_start + e1.key_end) // 2]),
        ("truncated_in_leb128", "cut after the first byte of a two-byte key length: a LEB128 number that never ends", leb(1) + b"\x80"),
        ("empty", "a file of 0 bytes", b""),
        ("tensor_save", "TorchSharp's Tensor.Save of a float32 [3, 4] (python/tests/samples/torchsharp-0.107/tensor.bin)", read("tensor.bin")),
        ("optimizer_adam", "TorchSharp's Adam optimizer.save_state_dict (python/tests/samples/torchsharp-0.107/adam.dat)", read("adam.dat")),
        ("optimizer_sgd", "TorchSharp's SGD optimizer.save_state_dict (python/tests/samples/torchsharp-0.107/sgd.dat)", read("sgd.dat")),
    ]
    return out


def write_attacks(directory: str) -> None:
    os.makedirs(directory, exist_ok=True)
    rows = []
    for name, what, data in attacks():
        with open(os.path.join(directory, name + ".bin"), "wb") as f:
            f.write(data)
        rows.append(f"| `{name}.bin` | {len(data)} | {what} |")
    readme = [
        "# tsnative attack corpus",
        "",
        "Inputs that the reader of TorchSharp's native format (`python/torchconformance/formats/tsnative.py`) must refuse",
        "with `TorchSharpFormatError` naming the file. Built from real TorchSharp files (the `all_dtypes` fixture",
        "TorchSharp 0.107 wrote, and the samples in `python/tests/samples/torchsharp-0.107`) by",
        "`python3 -m tests.fuzz_tsnative --write-attacks python/tests/attacks/tsnative` (deterministic).",
        "`tests/Conformance.Tests/PythonCodecSpecs.cs` reads every `.bin` here and pins the messages.",
        "",
        "| file | bytes | what |",
        "|---|---|---|",
    ] + rows
    with open(os.path.join(directory, "README.md"), "w") as f:
        f.write("\n".join(readme) + "\n")


# ---------------------------------------------------------------- command line

def main(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m tests.fuzz_tsnative", description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-inputs", type=int, default=None)
    ap.add_argument("--timeout", type=float, default=10.0, help="per input, seconds")
    ap.add_argument("--cap-mib", type=float, default=64.0)
    ap.add_argument("--json", help="write the result here")
    ap.add_argument("--keep", help="keep failing inputs in this folder")
    ap.add_argument("--check", nargs="+", metavar="FILE", help="read these files and report each one's outcome")
    ap.add_argument("--write-attacks", metavar="DIR")
    ap.add_argument("--mutate", choices=["duplicate_key"], help="write one mutation of --input to --output")
    ap.add_argument("--input")
    ap.add_argument("--output")
    ap.add_argument("--reader", default="torchconformance.formats.tsnative:load", help="MODULE:FUNCTION to fuzz (default %(default)s)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args.reader)
    if args.write_attacks:
        write_attacks(args.write_attacks)
        return 0
    if args.mutate:
        with open(args.input, "rb") as f:
            data = f.read()
        lay = Layout(data)
        last = lay.entries[-1]
        with open(args.output, "wb") as f:  # the last entry appended again, the count one more
            f.write(leb(lay.count.value + 1) + data[lay.count.end:] + data[last.start:last.end])
        return 0
    if args.check:
        checked = check_files(args.check, args.timeout, args.reader)
        ok = all(r["outcome"] not in FAILURES for r in checked)
        result: Any = checked
    else:
        result = run(args.seconds, args.seed, args.timeout, args.cap_mib, args.keep, args.max_inputs, args.reader)
        ok = result["ok"]
        summary = result["outcomes"]
        print(f"fuzz_tsnative: {result['inputs']} inputs in {result['seconds']} s (seed {args.seed}): "
              + ", ".join(f"{k} {summary[k]}" for k in OUTCOMES), file=sys.stderr)
    text = json.dumps(result, indent=2)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    else:
        print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
