"""PyTorch side of the TorchSharp <-> PyTorch conformance suite.

The package holds the PyTorch twins of the suite's models and the operations a PyTorch runtime
performs on them (produce, consume, listing). It is imported by the .NET PyTorch worker through
pythonnet, and also runs standalone (``python3 -m torchconformance serve``) on machines that have
torch but no .NET. It judges nothing: verdicts belong to the orchestrator.
"""

__all__ = ["models", "data", "observe", "routes", "cases", "worker"]
