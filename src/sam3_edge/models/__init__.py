"""Student models: one factory of named variants (``tiny``, ``es_rv_l_mc_s1``) and a Predictor wrapper."""

from sam3_edge.models.config import VARIANTS, StudentConfig, StudentParams
from sam3_edge.models.factory import build_student, load_student
from sam3_edge.models.predictor import StudentPredictor
from sam3_edge.models.prompts import PromptTensors, prepare_prompts
from sam3_edge.models.student import Student

__all__ = [
    "VARIANTS",
    "PromptTensors",
    "Student",
    "StudentConfig",
    "StudentParams",
    "StudentPredictor",
    "build_student",
    "load_student",
    "prepare_prompts",
]
