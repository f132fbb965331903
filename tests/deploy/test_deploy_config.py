"""Export params: per-backend variants."""

from __future__ import annotations

import pytest

from sam3_edge.config import ParamsError, from_dict
from sam3_edge.deploy.config import ExportParams


def test_backend_variants_extend_one_backend_only():
    p = from_dict(ExportParams, {"variants": ["int8"], "backend_variants": {"coreml": ["coreml_int8", "int8"]}})
    assert p.variants_for("coreml") == ("int8", "coreml_int8") and p.variants_for("xnnpack") == ("int8",)
    with pytest.raises(ParamsError, match="backend_variants.tpu"):
        from_dict(ExportParams, {"backend_variants": {"tpu": ["int8"]}})
    with pytest.raises(ParamsError, match="fp32 is the reference"):
        from_dict(ExportParams, {"backend_variants": {"coreml": ["fp32"]}})
