"""PyTorch side of the TorchSharp <-> PyTorch conformance suite.

The package holds the PyTorch twins of the suite's models and the operations a PyTorch runtime
performs on them (produce, consume, listing). It is imported by the .NET PyTorch worker through
pythonnet, and also runs standalone (``python3 -m torchconformance serve``) on machines that have
torch but no .NET. Nothing here judges: verdicts belong to the orchestrator, ``gpu-check`` (for a
GPU machine without .NET) included, whose raw replies the orchestrator judges on a CPU machine
(``conformance judge-gpu``).
"""

__all__ = ["models", "data", "observe", "routes", "cases", "worker", "device", "gpu_check"]
