"""SAM 3 teacher: an adapter over transformers ``Sam3Model`` (facebook/sam3 weights or the bootstrap fit).

``load_teacher(dir_or_source) -> TeacherAdapter`` (a :class:`sam3_edge.types.Predictor`).
"""

from sam3_edge.teacher.adapter import TeacherAdapter
from sam3_edge.teacher.load import TeacherWeightsMissing, load_teacher

__all__ = ["TeacherAdapter", "TeacherWeightsMissing", "load_teacher"]
