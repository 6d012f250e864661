"""PyTorch side of the TorchSharp <-> PyTorch conformance suite.

The package holds the PyTorch twins of the suite's models and the operations a PyTorch runtime
performs on them (produce, consume, listing). It is imported by the .NET PyTorch worker through
pythonnet, and also runs standalone (``python3 -m torchconformance serve``) on machines that have
torch but no .NET. The worker judges nothing: verdicts belong to the orchestrator. The one
exception is ``gpu-check`` (for a GPU machine without .NET), whose ``judge.py`` is the
orchestrator's judge in Python, kept equal to it by GpuJudgeAgreementSpecs.
"""

__all__ = ["models", "data", "observe", "routes", "cases", "worker", "device", "judge", "gpu_check"]
