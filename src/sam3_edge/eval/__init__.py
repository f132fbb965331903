"""Evaluation: pure metric functions (``metrics``, ``saco``, ``video``), the driver and the Go/No-Go gates.

Import the submodules directly (``from sam3_edge.eval.metrics import mask_iou_matrix``); this package
imports nothing heavy at import time.
"""
