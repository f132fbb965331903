"""The report's tables, built from the metrics JSON under ``metrics/`` and the outs recorded in ``dvc.lock``
(parsed by the stage: the library reads no yaml).

Each builder returns a :class:`Table` of :class:`~sam3_edge.report.values.Cell`; a figure that is not in the
files shows as the cell's note (``missing (stage X not run)``, ``undefined: <reason>``), never as a number.
Where the writers' keys are listed below (``*_KEYS``) the first key present wins, so a writer that renames a
key shows up as ``missing key ...`` in the report rather than as a wrong figure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sam3_edge.eval.seeds import BAR
from sam3_edge.report.config import ReportParams
from sam3_edge.report.values import Cell, MetricsFile, flatten, human_bytes, to_cell

# (column header, candidate keys in metrics/eval/<model>.json) -- written by sam3_edge.eval.driver
QUALITY_COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("mIoU text", ("miou.text",)),
    ("mIoU point", ("miou.point",)),
    ("mIoU box", ("miou.box",)),
    ("presence F1", ("presence.f1",)),
    ("prompt sensitivity", ("prompt_sensitivity.value", "prompt_sensitivity")),
    ("cgF1", ("saco.cgF1",)),
    ("J&F", ("video.J_and_F",)),
    ("J&F copy first mask", ("video.baselines.copy_first_mask.J_and_F",)),
    ("J&F no memory", ("video.baselines.no_memory.J_and_F",)),
    ("J&F box propagation", ("video.baselines.box_propagation.J_and_F",)),
    ("latency ms (eager)", ("latency.image_ms_median",)),
)
SIZE_MB_KEYS = ("size_mb", "pte_size_mb", "model_size_mb", "checkpoint_size_mb")
SIZE_BYTES_KEYS = ("file_bytes", "size_bytes", "pte_size_bytes", "bytes")
MIOU_KEYS = ("miou.text", "miou", "eval.miou.text")
JF_KEYS = ("video.J_and_F",)
LATENCY_KEYS = ("image.p50_ms", "image_latency_ms", "latency_ms", "latency.image_ms_median")
FPS_KEYS = ("video.fps", "video_fps", "fps")
PEAK_MEMORY_KEYS = ("model_rss_mb", "peak_memory_mb", "peak_rss_mb")  # the runtime's increment first
DELEGATED_KEYS = ("delegated_fraction", "delegation.fraction")
MIB = 1.0 / (1024 * 1024)


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _eval_file(metrics_dir: Path, model: str) -> MetricsFile:
    return MetricsFile.read(metrics_dir / "eval" / f"{model}.json", stage=f"evaluate@{model}")


def quality_table(metrics_dir: Path, params: ReportParams) -> Table:
    table = Table("Quality (val split)", ["model", *(h for h, _ in QUALITY_COLUMNS)])
    for label, model in params.quality_models.items():
        f = _eval_file(metrics_dir, model)
        if not f.exists:  # one note for the row, not one per column
            table.rows.append([Cell(label), Cell(None, f.problem), *[Cell(None, "-")] * (len(QUALITY_COLUMNS) - 1)])
            continue
        table.rows.append([Cell(label), *(f.cell(*keys) for _, keys in QUALITY_COLUMNS)])
    table.notes.append(
        "mIoU text = instance mIoU of text prompts on positive pairs (Hungarian matching); "
        "cgF1 = pmF1 x IL_MCC (SA-Co); J&F on SA-V val clips, prompted on each object's first visible frame, "
        "beside three baselines on the same frames: the first frame's GT mask copied to every frame, the "
        "model's image path frame by frame with no memory (the prompt on the first frame only), and its image path "
        "prompted on each frame with the box of its own previous mask (box propagation: the J&F of a model "
        "without a memory path, e.g. the teacher); definitions in sam3_edge.eval."
    )
    return table


def _size_cell(f: MetricsFile) -> Cell:
    cell = f.cell(*SIZE_MB_KEYS, unit=" MB")
    if cell.present or not f.exists:
        return cell
    by_bytes = f.cell(*SIZE_BYTES_KEYS, unit=" MB", scale=MIB)
    if by_bytes.present or by_bytes.note.startswith(("skipped", "failed", "undefined")):
        return by_bytes
    status = f.cell("status")
    if status.present and status.value != "ok":
        return Cell(None, f"no file ({status.value})")
    return Cell(None, f"missing key file_bytes in {f.path.name}")


def _drop(base: Cell, value: Cell) -> Cell:
    b, v = base.number(), value.number()
    if b is None or v is None:
        return Cell(None, "n/a (" + ("baseline " + base.text() if b is None else value.text()) + ")")
    return Cell(b - v)


def _status_cell(f: MetricsFile) -> Cell:
    status = f.cell("status")
    if not status.present:
        return status
    reason = f.cell("reason")
    return Cell(f"{status.value}: {reason.value}" if reason.present and reason.value else str(status.value))


def _exports(metrics_dir: Path) -> list[MetricsFile]:
    """metrics/export/<model>/<backend>_<variant>.json (any depth), written by sam3_edge.deploy.pipeline.run_export."""
    return [MetricsFile.read(p, stage=f"export@{p.stem}") for p in sorted((metrics_dir / "export").rglob("*.json"))]


def quantization_table(metrics_dir: Path, params: ReportParams) -> Table:
    table = Table(
        "Quantization",
        [
            "variant",
            "model",
            "status",
            ".pte size (xnnpack)",
            "ratio to fp32",
            "mIoU text",
            f"drop vs {params.baseline}",
            "J&F",
            f"J&F drop vs {params.baseline}",
        ],
    )
    baseline = _eval_file(metrics_dir, params.baseline)
    base, base_jf = baseline.cell(*MIOU_KEYS), baseline.cell(*JF_KEYS)
    files = sorted((metrics_dir / "quantize").glob("*.json"))
    if not files:
        table.rows.append([Cell(None, "missing (stage quantize not run)"), *[Cell(None, "-")] * 8])
        return table
    exports = [e for e in _exports(metrics_dir) if e.exists]
    for path in files:
        f = MetricsFile.read(path, stage=f"quantize@{path.stem}")
        variant = f.cell("variant")
        v = str(variant.value) if variant.present else path.stem
        model = f.cell("model")
        same = [e for e in exports if e.raw("variant") == (True, v) and e.raw("model") == (True, model.value)]
        same.sort(key=lambda e: (e.raw("backend") != (True, "xnnpack"), e.raw("status") != (True, "ok"), str(e.path)))
        size = _size_cell(same[0]) if same else Cell(None, "missing (stage export not run)")
        ratio = same[0].cell("size.ratio_to_fp32") if same else Cell(None, "-")
        if f.raw("status")[0] and f.raw("status")[1] != "ok":  # skipped/failed: nothing to size or score
            table.rows.append([Cell(v), model, _status_cell(f), *[Cell(None, "-")] * 6])
            continue
        miou = f.cell(*MIOU_KEYS)
        if path.stem in params.quantized:
            evaluated = _eval_file(metrics_dir, params.quantized[path.stem])
            jf, evaluated_miou = evaluated.cell(*JF_KEYS), evaluated.cell(*MIOU_KEYS)
        else:
            jf = evaluated_miou = Cell(None, f"not evaluated (no report.quantized entry for {path.stem})")
        miou = miou if miou.present else evaluated_miou
        table.rows.append(
            [Cell(v), model, _status_cell(f), size, ratio, miou, _drop(base, miou), jf, _drop(base_jf, jf)]
        )
    table.notes.append(
        f"drop = mIoU({params.baseline}) - mIoU(variant), both read from metrics/eval/*.json; "
        "size = the variant's .pte (xnnpack when exported) from metrics/export/*.json; J&F of a .pte = its "
        "evaluation's video block (the deployed video_step with the memory carried frame to frame since "
        "2026-12-05; its video_path key says so)."
    )
    return table


def _benchmark_entry(bench: MetricsFile, model: str, backend: str, variant: str) -> tuple[list[str], Cell | None]:
    """Key prefixes of one export in metrics/benchmark.json (sam3_edge.deploy.benchmark: ``<model>.<backend>_<variant>``
    with ``image.p50_ms``, ``video.fps``, ``peak_rss_mb``), or a cell saying why it has no figures."""
    if not bench.exists:
        return [], Cell(None, bench.problem)
    prefix = f"{model}.{backend}_{variant}"
    found, entry = bench.raw(prefix)
    if not found:
        found_model, model_entry = bench.raw(model)
        if found_model and isinstance(model_entry, dict) and model_entry.get("status") not in (None, "ok"):
            return [], to_cell({"status": model_entry["status"], "reason": model_entry.get("reason", "")})
        return [], Cell(None, f"missing key {prefix} in {bench.path.name}")
    if isinstance(entry, dict) and entry.get("executed") is False:
        return [], Cell(None, f"not run here: {entry.get('reason') or 'no reason given'}")
    return [prefix], None


def deployment_table(metrics_dir: Path) -> Table:
    table = Table(
        "Deployment (ExecuTorch)",
        [
            "backend",
            "model",
            "variant",
            "status",
            ".pte size (text + image)",
            "latency ms",
            "FPS",
            "memory MB (image program)",
            "delegated fraction",
        ],
    )
    bench = MetricsFile.read(metrics_dir / "benchmark.json", stage="benchmark")
    exports = _exports(metrics_dir)
    if not exports:
        table.rows.append([Cell(None, "missing (stage export not run)"), *[Cell(None, "-")] * 8])
        return table
    for f in exports:
        stem_backend, _, stem_variant = f.path.stem.partition("_")
        b = str(f.raw("backend")[1]) if f.raw("backend")[0] else stem_backend
        v = str(f.raw("variant")[1]) if f.raw("variant")[0] else stem_variant
        model = f.cell("model")
        m = str(model.value) if model.present else ""
        status = _status_cell(f)
        if status.value == "ok" and not f.raw("files")[0]:  # written before export split text.pte / image.pte
            status = Cell("ok (stale: one model.pte from before the text / image split; re-run its export)")
        row = [Cell(b), model, Cell(v), status, _size_cell(f)]
        if f.raw("status")[0] and f.raw("status")[1] != "ok":  # skipped/failed: no file to measure
            table.rows.append([*row[:4], *[Cell(None, "-")] * 5])
            continue
        prefixes, why = _benchmark_entry(bench, m, b, v)
        for keys in (LATENCY_KEYS, FPS_KEYS, PEAK_MEMORY_KEYS, DELEGATED_KEYS):
            cell = f.cell(*keys)
            if not cell.present:
                cell = why or bench.cell(*[f"{p}.{k}" for p in prefixes for k in keys])
            row.append(cell)
        table.rows.append(row)
    table.notes.append(
        "latency / FPS / memory are measured by the benchmark stage with the ExecuTorch runtime on this machine's "
        "CPU, the image program (image.pte) in a process of its own; memory = its peak resident increment over the "
        "process before loading (not the Python / torch interpreter). A backend that cannot run here shows its "
        "status and reason."
    )
    return table


def gates_table(metrics_dir: Path) -> Table:
    """metrics/gates.json of sam3_edge.eval.gates: {decision, decision_reason, gates: {name: {value?, threshold,
    comparison, status: pass|fail|unknown, reason?}}}."""
    table = Table("Go / No-Go gates", ["gate", "value", "threshold", "verdict"])
    f = MetricsFile.read(metrics_dir / "gates.json", stage="gates")
    if not f.exists:
        table.rows.append([Cell(None, f.problem), *[Cell(None, "-")] * 3])
        return table
    gates = f.data.get("gates") if isinstance(f.data, dict) else None
    if not isinstance(gates, dict) or not gates:
        table.rows.append([Cell(None, "no gate entries in gates.json"), *[Cell(None, "-")] * 3])
        return table
    for name, gate in gates.items():
        gate = gate if isinstance(gate, dict) else {}
        value = to_cell(gate["value"]) if "value" in gate else Cell(None, gate.get("reason") or "missing key value")
        thr = gate.get("threshold")
        thr_cell = (
            Cell(f"{gate.get('comparison', '')} {thr}".strip())
            if thr is not None
            else Cell(None, "missing key threshold")
        )
        status = gate.get("status")
        why = f": {gate['reason'][:160]}" if gate.get("reason") else ""  # a failed gate's reason, e.g. `lowered`
        verdict = {"pass": Cell("GO"), "fail": Cell(f"NO-GO{why}")}.get(
            status, Cell(None, f"{status or 'missing status'}" + (f": {gate['reason']}" if gate.get("reason") else ""))
        )
        table.rows.append([Cell(name), value, thr_cell, verdict])
    decision = f.cell("decision")
    if decision.present:
        why = f.cell("decision_reason")
        table.notes.append(
            f"Decision: **{str(decision.value).upper()}**"
            + (f" ({why.value})" if why.present else "")
            + f", read from {f.path.name}."
        )
    return table


def _stage_times(metrics_dir: Path, lock: dict[str, Any] | None) -> tuple[MetricsFile, dict | None, list[str]]:
    """metrics/pipeline.json's ``stages`` without the stages dvc.lock no longer has (with ``lock``), and those."""
    f = MetricsFile.read(metrics_dir / "pipeline.json", stage="any stage under dvc repro")
    stages = f.data.get("stages") if f.exists and isinstance(f.data, dict) else None
    gone: list[str] = []
    if isinstance(stages, dict) and lock is not None and isinstance(lock.get("stages"), dict):
        gone = sorted(set(stages) - set(lock["stages"]))
        stages = {k: v for k, v in stages.items() if k not in gone}
    return f, stages if isinstance(stages, dict) and stages else None, gone


def pipeline_summary(metrics_dir: Path, lock: dict[str, Any] | None = None) -> dict[str, float]:
    """The declared pipeline-time metric (reports/pipeline.json): ``total_s``, the sum of the stage times the
    table below shows; empty when no stage time is recorded."""
    _, stages, _ = _stage_times(Path(metrics_dir), lock)
    return {"total_s": round(sum(float(v) for v in stages.values()), 1)} if stages else {}


def stage_times_table(metrics_dir: Path, lock: dict[str, Any] | None = None) -> Table:
    """metrics/pipeline.json (written by every stage as it finishes, stages/_common.py): {stages: {name: s}, total_s}.

    With ``lock`` (dvc.lock), a time recorded for a stage the pipeline no longer has (renamed or removed) is left
    out of the rows and the total, and a note counts it."""
    table = Table("Pipeline stage times", ["stage", "seconds", "share"])
    f, stages, gone = _stage_times(Path(metrics_dir), lock)
    if gone:
        table.notes.append(f"Left out: {len(gone)} recorded stage(s) not in dvc.lock ({', '.join(gone)}).")
    if stages is None:
        table.rows.append(
            [
                Cell(None, f.problem if not f.exists else "no stage times in pipeline.json"),
                Cell(None, "-"),
                Cell(None, "-"),
            ]
        )
        return table
    total = sum(float(v) for v in stages.values())
    for name, seconds in sorted(stages.items(), key=lambda kv: -float(kv[1])):
        table.rows.append(
            [Cell(name), to_cell(round(float(seconds), 1)), to_cell(round(float(seconds) / max(total, 1e-9), 3))]
        )
    table.rows.append([Cell("total"), to_cell(round(total, 1)), to_cell(1.0)])
    table.notes.append(
        "Wall seconds of each stage's process at its latest run under `dvc repro`, read from metrics/pipeline.json; "
        "the report stage's own time is recorded after it renders this table (so it shows its previous run)."
    )
    return table


PROMPT_CHECK_STAGES = ("distill_phase1", "distill_phase2", "finetune_saco")


def prompt_path_table(metrics_dir: Path) -> Table:
    """The prompt-path check recorded after each student stage (``prompt_check`` in metrics/train/<stage>.json)."""
    cols = ("presence_gap", "presence_auc", "text_presence_loss", "prompt_vec_cosine")
    table = Table("Student prompt path after each stage (val text prompts)", ["stage", *cols])
    for stage in PROMPT_CHECK_STAGES:
        f = MetricsFile.read(metrics_dir / "train" / f"{stage}.json", stage=stage)
        table.rows.append([Cell(stage), *[f.cell(f"prompt_check.{c}") for c in cols]])
    table.notes.append(
        "presence_gap: mean presence logit of positive minus negative val pairs (0 = blind to the phrase); "
        "presence_auc: how often a positive pair outscores a negative one; text_presence_loss: presence BCE on val "
        "text prompts (0.693 = a coin); prompt_vec_cosine: mean cosine between the pooled prompt vectors of the val "
        "phrases (1.0 = every phrase collapsed onto one vector). sam3_edge.train.diagnostics."
    )
    return table


def seeds_table(metrics_dir: Path) -> Table:
    """metrics/student_seeds.json (`make seeds`): each figure's student / teacher ratio over init seeds."""
    table = Table("Student across init seeds (student / teacher)", ["figure", "mean", "std", "min", "max", "bar"])
    f = MetricsFile.read(metrics_dir / "student_seeds.json", stage="`make seeds` (scripts/student_seeds.py)")
    if not f.exists:
        table.rows.append([Cell(None, f.problem), *[Cell(None, "-")] * 5])
        return table
    summary = f.data.get("summary", {})
    for name, (kind, level) in BAR.items():
        part = "figures" if kind == "abs" else "ratios"
        stats = summary.get(part, {}).get(name)
        label = name if kind == "abs" else f"{name} ratio"
        bar = Cell(f">= {level}" if kind == "abs" else f">= {level} x teacher")
        if not stats:
            table.rows.append([Cell(label), *[Cell(None, "no seed has it")] * 4, bar])
            continue
        table.rows.append([Cell(label), *[to_cell(stats[k]) for k in ("mean", "std", "min", "max")], bar])
    seeds = f.data.get("seeds", {})
    met = [s for s, r in seeds.items() if r.get("bar_met")]
    table.notes.append(
        f"{len(seeds)} init seeds ({', '.join(sorted(seeds))}); the whole bar met by {len(met)} of them"
        + (f" ({', '.join(met)})" if met else "")
        + f"; std is the population standard deviation. Command: `{f.data.get('command', '?')}`."
    )
    return table


def artifacts_table(lock: dict[str, Any] | None, root: Path) -> Table:
    """``lock`` is the parsed ``dvc.lock`` (the stage reads the yaml), ``None`` when there is none yet."""
    table = Table("Artifacts (dvc.lock outs)", ["stage", "path", "size", "files", "on disk"])
    if lock is None:
        table.rows.append([Cell(None, "missing (no dvc.lock: run dvc repro)"), *[Cell(None, "-")] * 4])
        return table
    for stage, entry in sorted((lock.get("stages") or {}).items()):
        for out in entry.get("outs") or []:
            size = out.get("size")
            table.rows.append(
                [
                    Cell(stage),
                    Cell(out.get("path", "?")),
                    Cell(human_bytes(size)) if isinstance(size, int) else Cell(None, "size not recorded"),
                    Cell(out.get("nfiles", 1)),
                    Cell((root / out.get("path", "")).exists()),
                ]
            )
    total = sum(out.get("size") or 0 for e in (lock.get("stages") or {}).values() for out in e.get("outs") or [])
    table.notes.append(f"{len(table.rows)} outs, {human_bytes(total)} in all (sizes as recorded in dvc.lock).")
    return table


def stage_metrics_tables(metrics_dir: Path, *, max_entries: int = 40) -> list[Table]:
    """Every metrics JSON file as a key/value table (numbers and status strings), so no stage goes unseen."""
    tables = []
    for path in sorted(metrics_dir.rglob("*.json")):
        rel = path.relative_to(metrics_dir)
        f = MetricsFile.read(path, stage=str(rel))
        table = Table(f"metrics/{rel}", ["key", "value"])
        if not f.exists:
            table.rows.append([Cell(None, f.problem), Cell(None, "-")])
        else:
            leaves = [(k, v) for k, v in flatten(f.data) if not isinstance(v, str) or len(v) < 200]
            for key, value in leaves[:max_entries]:
                cell = to_cell(value) if not isinstance(value, list) else Cell(str(value))
                table.rows.append([Cell(key or "(value)"), cell])
            if len(leaves) > max_entries:
                table.notes.append(f"{len(leaves) - max_entries} more entries in the file.")
        tables.append(table)
    return tables


def report_tables(
    metrics_dir: str | Path, params: ReportParams, *, lock: dict[str, Any] | None, root: str | Path = "."
) -> dict[str, list[Table]]:
    """All sections of the report: {"main": [Table, ...], "appendix": [Table, ...]}."""
    metrics_dir = Path(metrics_dir)
    return {
        "main": [
            quality_table(metrics_dir, params),
            prompt_path_table(metrics_dir),
            seeds_table(metrics_dir),
            quantization_table(metrics_dir, params),
            deployment_table(metrics_dir),
            gates_table(metrics_dir),
            stage_times_table(metrics_dir, lock),
            artifacts_table(lock, Path(root)),
        ],
        "appendix": stage_metrics_tables(metrics_dir),
    }
