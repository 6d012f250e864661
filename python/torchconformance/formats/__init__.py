"""The file formats this side reads and writes itself: TorchSharp's native format (tsnative), and atomic writes."""
