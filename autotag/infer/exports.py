"""Optional per-track exports from a run's prediction tables: chord ``.lab``, JAMS, top-tags CSV.

Written under ``<predictions>/exports/<run_id>/`` (``lab/<track_id>.lab``,
``jams/<track_id>.jams``, ``top_tags.csv``), each file atomically. Track ids are safe file
names by construction (letters, digits, ``_`` and ``-``).
"""

from __future__ import annotations

import csv
import io
import json
import typing
from collections import defaultdict
from pathlib import Path
from typing import Any

from autotag.config import ExportKind
from autotag.layout import exports_dir
from autotag.predictions import read_table
from autotag.storage import atomic_write_bytes, location

EXPORTS = typing.get_args(ExportKind)


def _write(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def _rows(root: Path, table: str, run_id: str) -> list[dict[str, Any]]:
    found = read_table(root, table, run_id)
    return found.frame.to_dict("records") if found is not None else []


def _segments_by_track(rows: list[dict[str, Any]], column: str) -> dict[str, list[dict[str, Any]]]:
    by_track: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_track[row["track_id"]].append(row)
    return {t: sorted(v, key=lambda r: (r["start_s"], r[column])) for t, v in by_track.items()}


def _jams(duration: float | None, annotations: list[dict[str, Any]]) -> str:
    return json.dumps({"file_metadata": {"duration": duration or 0.0, "title": "", "artist": ""},
                       "annotations": annotations, "sandbox": {}}, indent=1)


def _annotation(namespace: str, data: list[dict[str, Any]], model: str) -> dict[str, Any]:
    return {"namespace": namespace, "data": data, "annotation_metadata": {"annotation_tools": f"autotag {model}"},
            "sandbox": {}, "time": 0, "duration": None}


def export_run(root: str | Path, run_id: str, kinds: tuple[str, ...] | list[str], top_k: int = 5) -> dict[str, int]:
    """Write the requested exports for ``run_id``; returns files written per kind."""
    unknown = sorted(set(kinds) - set(EXPORTS))
    if unknown:
        raise ValueError(f"unknown export(s) {unknown}; known: {EXPORTS}")
    root = location(root)
    out = exports_dir(root, run_id)
    tracks = {r["track_id"]: r for r in _rows(root, "tracks", run_id) if r["status"] == "ok"}
    chords = _segments_by_track(_rows(root, "chords", run_id), "chord")
    instruments = _segments_by_track(_rows(root, "instruments", run_id), "instrument")
    tags: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in _rows(root, "tags", run_id):
        tags[row["track_id"]].append(row)
    counts = dict.fromkeys(kinds, 0)
    if "lab" in kinds:
        for track_id, segs in chords.items():
            _write(out / "lab" / f"{track_id}.lab",
                   "".join(f"{s['start_s']:.6f}\t{s['end_s']:.6f}\t{s['chord']}\n" for s in segs))
            counts["lab"] += 1
    if "jams" in kinds:
        for track_id, row in tracks.items():
            annotations = []
            if track_id in chords:
                annotations.append(_annotation("chord", [
                    {"time": s["start_s"], "duration": s["end_s"] - s["start_s"], "value": s["chord"],
                     "confidence": s["confidence"]} for s in chords[track_id]], row["model"]))
            if track_id in instruments:
                annotations.append(_annotation("tag_open", [
                    {"time": s["start_s"], "duration": s["end_s"] - s["start_s"], "value": s["instrument"],
                     "confidence": s["confidence"]} for s in instruments[track_id]], row["model"]))
            if track_id in tags:
                annotations.append(_annotation("tag_open", [
                    {"time": 0.0, "duration": row["duration_s"], "value": t["tag"], "confidence": t["score"]}
                    for t in sorted(tags[track_id], key=lambda t: t["rank"]) if t["predicted"]], row["model"]))
            _write(out / "jams" / f"{track_id}.jams", _jams(row["duration_s"], annotations))
            counts["jams"] += 1
    if "csv" in kinds and tags:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        ranks = range(1, top_k + 1)
        writer.writerow(["track_id"] + [f"tag_{i}" for i in ranks] + [f"score_{i}" for i in ranks])
        for track_id in sorted(tags):
            best = sorted(tags[track_id], key=lambda t: t["rank"])[:top_k]
            writer.writerow([track_id] + [t["tag"] for t in best] + [f"{t['score']:.4f}" for t in best])
        _write(out / "top_tags.csv", buffer.getvalue())
        counts["csv"] = 1
    return counts
