"""The bottom layer: pure code every other package shares and that imports no other package of sam3_edge but
the foundation modules (``config``, ``types``, ``utils``).

- ``losses``: the set-prediction criterion and its terms (teacher fit and student training);
- ``matcher``: Hungarian / greedy matching of predictions to targets;
- ``metrics``: the evaluation's pure metric functions (mask IoU, matching, presence P/R/F1, sensitivity);
- ``checkpoint``: the one checkpoint file format (safetensors + json header), saved and loaded strictly.

The layer order of the whole library is written once, in ``tests/test_layers.py``, which fails on an import that
points upward (function-level imports included).
"""
