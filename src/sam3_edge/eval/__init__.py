"""Evaluation: SA-Co and video metric functions (``saco``, ``video``; the shared mask / presence metrics live in
``sam3_edge.core.metrics``), the driver and the Go/No-Go gates. It scores any :class:`~sam3_edge.types.Predictor`;
building one from a model spec is ``sam3_edge.predictors``, above eval, teacher, models and deploy.

Import the submodules directly (``from sam3_edge.eval.driver import evaluate_predictor``); this package
imports nothing heavy at import time.
"""
