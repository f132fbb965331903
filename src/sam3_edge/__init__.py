"""sam3-edge: distil SAM 3 into an on-device student, quantize it, export it to ExecuTorch."""

__version__ = "0.1.0"
