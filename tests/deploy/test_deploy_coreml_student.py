from __future__ import annotations

import pytest

from sam3_edge.models import StudentParams, build_student


@pytest.mark.slow
def test_student_image_and_video_step_lower_whole_on_coreml():
    """Core ML takes every op of the student's ``image`` and ``video_step`` (one partition each), which its
    multifunction weight sharing needs: the video memory's boolean ``|`` stayed outside the delegate, split
    ``video_step`` into 3 partitions and failed every Core ML export of the student (2026-12-04 to 12-05) while
    the stand-in model of the other Core ML tests, which has no such op, kept lowering."""
    pytest.importorskip("coremltools")
    from sam3_edge.deploy.lowering import lower_programs
    from sam3_edge.deploy.quantize import export_fp32

    student = build_student(StudentParams(image_size=64, dim=32), seed=0).eval().reparameterize()
    programs = student.export_programs()
    eps = export_fp32({m: programs[m] for m in ("image", "video_step")})
    lowered = lower_programs(eps, "coreml", variant="fp32")
    for method in ("image", "video_step"):
        report = lowered.delegation["methods"][method]
        assert report["delegates"] == 1 and report["non_delegated"] == {}, (method, report["non_delegated"])
    assert len(lowered.buffer) > 0
