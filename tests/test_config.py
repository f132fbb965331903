from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from sam3_edge.config import ParamsError, check, from_dict, params_hash
from sam3_edge.params import load_section, read_params_file, validate_params_file


@dataclass(frozen=True)
class Inner:
    lr: float = 1e-3
    mix: tuple[float, ...] = (0.5, 0.5)

    def __post_init__(self) -> None:
        check(self.lr > 0, "lr", "must be > 0")
        check(abs(sum(self.mix) - 1) < 1e-6, "mix", f"must sum to 1, got {sum(self.mix)}")


@dataclass(frozen=True)
class Outer:
    name: str
    kind: Literal["a", "b"] = "a"
    steps: int = 10
    path: str | None = None
    inner: Inner = field(default_factory=Inner)


def test_from_dict_builds_nested_and_converts_types():
    cfg = from_dict(Outer, {"name": "x", "steps": 3, "inner": {"lr": 1, "mix": [0.25, 0.75]}})
    assert cfg.inner.lr == 1.0 and isinstance(cfg.inner.lr, float)
    assert cfg.inner.mix == (0.25, 0.75)
    assert cfg.path is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "x", "stepz": 3}, "unknown key sec.stepz"),
        ({"name": "x", "inner": {"lrr": 1}}, "unknown key sec.inner.lrr"),
        ({"steps": 3}, "missing key sec.name"),
        ({"name": "x", "steps": "3"}, "sec.steps: expected an integer"),
        ({"name": "x", "steps": True}, "sec.steps: expected an integer"),
        ({"name": "x", "kind": "c"}, "sec.kind: 'c' is not one of"),
        ({"name": "x", "inner": {"lr": -0.1}}, "lr: must be > 0"),
        ({"name": "x", "inner": {"mix": [0.5, 0.6]}}, "mix: must sum to 1"),
    ],
)
def test_from_dict_rejects_bad_values_naming_the_key(data, message):
    with pytest.raises(ParamsError, match=message.replace("[", r"\[").replace(".", r"\.")):
        from_dict(Outer, data, prefix="sec")


def test_params_hash_is_stable_and_sensitive():
    a = from_dict(Outer, {"name": "x"})
    assert params_hash(a) == params_hash(from_dict(Outer, {"name": "x"}))
    assert params_hash(a) != params_hash(from_dict(Outer, {"name": "x", "steps": 11}))


def test_params_file_unknown_section_and_bad_yaml(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("data: {}\nbogus_section: 1\n")
    with pytest.raises(ParamsError, match="unknown section.*bogus_section"):
        read_params_file(bad)
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid yaml"):
        read_params_file(bad)
    with pytest.raises(ParamsError, match="not found"):
        read_params_file(tmp_path / "missing.yaml")


def test_shipped_profiles_validate():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for path in [root / "params.yaml", *sorted((root / "configs").glob("*.yaml"))]:
        validate_params_file(path)


def test_load_section_names_file_and_key(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("data:\n  synthetic:\n    num_train_imagez: 3\n")
    with pytest.raises(ParamsError, match=r"p\.yaml: unknown key data\.synthetic\.num_train_imagez"):
        load_section(p, "data")
