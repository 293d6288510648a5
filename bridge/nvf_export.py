# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Exporting a Blender mesh object as an .nvf face model.

Two kinds of meshes are handled the same way:

- a mesh imported from .nvf carries its original file (`nvf_source`). The
  exporter recomputes what the importer made from it (`plan_import`) and
  compares it with the mesh now, per vertex and per component: whatever still
  matches bit for bit is written with the original values, whatever differs
  was edited and is converted from Blender. An unedited import (also after a
  .blend save/reload) is written back byte for byte.
- any other mesh becomes a new model: triangulated (Blender's loop triangles;
  the mesh itself is not changed), shape keys -> shape modes and blend shapes,
  vertex groups -> landmarks, contours and partitions, materials ->
  partitions, by the naming convention in `naming`.

Everything is validated and the whole file is built in memory before the
destination is touched; it is then written by the codec's one atomic write
(`io_nv3dmm.write_atomic`: temporary file, fsync, rename, folder fsync), so a
failed or interrupted export writes nothing.

This module puts the parts together; each part of the model has its own
module, reading the shared `export_state.ExportState`: `export_shape` (mean,
shape modes, blend shapes), `export_partitions` (triangles, partitions,
materials), `export_landmarks` (landmarks, contours), `export_surface` (UVs,
colour). May import bpy, numpy, the format (`io_nv3dmm`) and those modules.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..io_nv3dmm import (
    MAXINE_EXPRESSIONS, DestinationError, FaceModel, LinearModel, NvfError, Topology, build_topology, to_bytes,
    write_atomic,
)
from ..io_nv3dmm.maxine import maxine_problems
from .bpy_typed import lookup, object_mesh
from .errors import NvfBridgeError
from .export_landmarks import export_landmarks, export_model_contours
from .export_partitions import export_partitions
from .export_shape import export_mean, export_shape_keys
from .export_state import ExportState
from .export_surface import export_color, export_texcoords
from .naming import PROP_CONTOURS
from .options import ExportOptions

if TYPE_CHECKING:
    # bpy is imported where it is used, so that this module loads without it.
    from bpy.types import Context, Object


def export_nvf(target: Context | Object | None, filepath: str | Path,
               options: ExportOptions | None = None, *, fsync: bool = True) -> list[str]:
    """Writes the active (or given) mesh object as an .nvf file; returns warnings.

    Raises NvfBridgeError, writing nothing, when there is no mesh object, it
    has no faces, is over a format limit (65,535 vertices or triangles), has an
    edge shared by more than two faces, or the file cannot be written (the
    destination is a FIFO, device or folder, the disk is full, ...). The file
    is flushed to disk before it replaces the old one; fsync=False skips that
    (benchmarks). (The codec's NvfError and OSErrors never escape: the checks
    word each one; any other is wrapped here with its own message.)
    """
    try:
        obj = _resolve_object(target)
        result = build_export(obj, options or ExportOptions())
        _write(Path(filepath), result.data, fsync)
    except (NvfError, OSError) as exc:
        raise NvfBridgeError(str(exc)) from exc
    return result.warnings


@dataclass
class ExportResult:
    """The bytes to write, the model they encode (None when the original bytes
    are reused unchanged), and warnings for the user."""

    data: bytes
    model: FaceModel | None
    warnings: list[str]
    unchanged: bool


def collection_mesh(name: str) -> Object:
    """The one mesh object of the collection called `name` (what Blender's collection
    exporters export); NvfBridgeError when there is no such collection or it holds no mesh
    or more than one."""
    import bpy

    collection = lookup(bpy.data.collections, name)
    if collection is None:
        raise NvfBridgeError(f"no collection named '{name}'")
    meshes = [o for o in collection.all_objects if o.type == 'MESH']
    if len(meshes) != 1:
        raise NvfBridgeError(f"collection '{name}' holds {len(meshes)} mesh objects; "
                             f"an .nvf file holds exactly one face mesh")
    return meshes[0]


def _resolve_object(target: Context | Object | None) -> Object:
    import bpy

    obj = target
    if target is None or isinstance(target, bpy.types.Context):
        context = target if target is not None else bpy.context
        obj = getattr(context, "active_object", None) or getattr(context, "object", None)
        if obj is None:
            raise NvfBridgeError("no active object: select the face mesh to export")
    if not isinstance(obj, bpy.types.Object):
        raise NvfBridgeError(f"cannot export {type(obj).__name__}: a mesh object is needed")
    if obj.type != 'MESH':
        raise NvfBridgeError(f"'{obj.name}' is a {obj.type.lower()} object, not a mesh: select a mesh to export")
    return obj


def _write(path: Path, data: bytes, fsync: bool) -> None:
    """The codec's one atomic write (io_nv3dmm.write_atomic: temporary file, fsync,
    rename, folder fsync; symlinks written through, FIFOs/devices/folders refused,
    nothing left behind whatever interrupts it), its failures as our error."""
    try:
        write_atomic(path, data, fsync=fsync)
    except DestinationError as exc:
        raise NvfBridgeError(exc.strerror or str(exc)) from exc
    except OSError as exc:
        raise NvfBridgeError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _build(state: ExportState) -> ExportResult:
    """The whole model from its parts, and its bytes (the original ones when nothing changed)."""
    mean = export_mean(state)
    modes, eigenvalues, blend = export_shape_keys(state)
    triangles, partitions = export_partitions(state)
    original = state.original
    same_tris = original is not None and triangles is original.shape.triangles
    if not same_tris:
        _check_manifold(triangles, state.obj.name)
        state.changed()
    topology: Topology | None
    if same_tris and original is not None and original.topology is not None:
        topology = original.topology
    else:
        try:
            topology = build_topology(triangles)
        except NvfError as exc:
            raise NvfBridgeError(f"'{state.obj.name}': {exc}") from exc
    shape = LinearModel(mean=mean, modes=modes, eigenvalues=eigenvalues, triangles=triangles)
    if (original is not None and mean is original.shape.mean and modes is original.shape.modes
            and eigenvalues is original.shape.eigenvalues and same_tris):
        shape = original.shape
    model = FaceModel(
        shape=shape, color=export_color(state), texcoords=export_texcoords(state),
        ibug=export_landmarks(state, "IBUG"), blend_shapes=blend, model_contours=export_model_contours(state),
        topology=topology, nvlm=export_landmarks(state, "NVLM"), partitions=partitions,
        unknown_chunks=list(original.unknown_chunks) if original is not None else [],
        toc=original.toc if original is not None else None,
        source_layout=original.source_layout if original is not None else None)
    names = set(blend.names) if blend is not None else set()
    missing = [name for name in MAXINE_EXPRESSIONS if name not in names]
    if missing:
        state.warnings.append(
            f"{len(missing)} of Maxine's {len(MAXINE_EXPRESSIONS)} expression blend shapes are "
            f"missing ({', '.join(missing)}): Maxine's expression tracker cannot drive this model "
            f"fully. Add shape keys with these names to fix it")
    if state.unchanged and state.source is not None:
        # The original bytes, unless NVIDIA's reader cannot take them as they are (e.g. a
        # BSIS chunk of 0 modes, written by older tools): then they are encoded again.
        problems = maxine_problems(state.source)
        if not problems:
            return ExportResult(data=state.source, model=None, warnings=state.warnings, unchanged=True)
        state.warnings.append(
            f"the original file could not be read by NVIDIA's Maxine reader as it was "
            f"({'; '.join(problems)}), so it was written again in a form Maxine reads")
    model = _maxine_ready(state, model)
    try:
        data = to_bytes(model)
    except NvfError as exc:
        raise NvfBridgeError(f"'{state.obj.name}' cannot be written as .nvf: {exc}") from exc
    return ExportResult(data=data, model=model, warnings=state.warnings, unchanged=False)


def _maxine_ready(state: ExportState, model: FaceModel) -> FaceModel:
    """`model` as NVIDIA's Maxine reader can read it (io_nv3dmm.maxine_problems).

    Unknown chunks kept from the original file where NVIDIA's reader stops (at
    the top level, or inside PRTS before a PART) are left out, with a warning;
    anything else it cannot read is an error that says what to change, so the
    exporter never writes a file Maxine cannot load.
    """
    problems = maxine_problems(model)
    if not problems:
        return model
    part_count = len(model.partitions or [])
    blocking = [u for u in model.unknown_chunks
                if u.parent == "" or (u.parent == "PRTS" and u.position < part_count)]
    if blocking:
        kept = [u for u in model.unknown_chunks if all(u is not b for b in blocking)]
        candidate = replace(model, unknown_chunks=kept)
        remaining = maxine_problems(candidate)
        if len(remaining) < len(problems):
            state.warnings.append(
                f"{len(blocking)} unknown chunk(s) of the original file ("
                f"{', '.join(repr(u.tag) for u in blocking)}) were left out: NVIDIA's Maxine reader "
                f"stops at unknown chunks there")
            model, problems = candidate, remaining
    if not problems:
        return model
    hints = []
    if any("IBUG" in problem for problem in problems):
        hints.append(f"the iBUG contours are the mesh properties '{PROP_CONTOURS[('IBUG', 'R')]}' and "
                     f"'{PROP_CONTOURS[('IBUG', 'L')]}': give each at most 8 landmark numbers, or "
                     f"delete an empty one")
    raise NvfBridgeError(
        f"'{state.obj.name}' cannot be exported as a file NVIDIA's Maxine reader reads: "
        + "; ".join(problems) + ("" if not hints else ". To fix it: " + "; ".join(hints)))


def _check_manifold(triangles: npt.NDArray[Any], name: str) -> None:
    tris = np.asarray(triangles, dtype=np.int64)
    edges = np.stack([tris, tris[:, [1, 2, 0]]], axis=2).reshape(-1, 2)
    edges.sort(axis=1)
    keys = (edges[:, 0] << 32) | edges[:, 1]
    unique, counts = np.unique(keys, return_counts=True)
    bad = unique[counts > 2]
    if bad.size:
        a, b = int(bad[0] >> 32), int(bad[0] & 0xFFFFFFFF)
        raise NvfBridgeError(
            f"'{name}' is non-manifold: {bad.size} edge(s) are shared by more than two faces "
            f"(e.g. between vertices {a} and {b}); the .nvf edge table holds two faces per edge. "
            f"Find them with Select > Select All by Trait > Non Manifold")


def build_export(obj: Object, options: ExportOptions | None = None) -> ExportResult:
    """The .nvf bytes for a mesh object, with warnings (nothing is written)."""
    import bpy

    obj = _resolve_object(obj)
    mesh = object_mesh(obj)
    if not mesh.is_editmode:
        return _build(ExportState(obj, mesh, options or ExportOptions()))
    # In Edit Mode, Mesh.attributes show the edit-mesh layers, which have no bulk
    # access: flush the edits and read a plain copy (removed again, with its keys).
    obj.update_from_editmode()
    copy = mesh.copy()
    try:
        return _build(ExportState(obj, copy, options or ExportOptions()))
    finally:
        bpy.data.meshes.remove(copy)


__all__ = ["ExportOptions", "ExportResult", "build_export", "collection_mesh", "export_nvf"]
