"""Test-side Python: the tsnative fuzzer, the check samples' maker, and gpu-check's planted faults."""
