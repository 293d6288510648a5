# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Command line: `python -m io_nv3dmm {info,validate,roundtrip,dump,demo} ...`.

Exit statuses: 0 success; 1 not a valid .nvf file (the error names the byte
offset) or a file that cannot be read or written; 2 usage error; 3 (validate)
a valid .nvf file that NVIDIA's own reader (Maxine) cannot read, with the reasons.

Dev-only (run from a clone; not in the add-on's zip). May import: numpy, the
standard library and any io_nv3dmm module (demo_model only for `demo`).
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
from typing import Any, Sequence

import numpy as np

from .atomic import write_atomic
from .errors import NvfError
from .maxine import maxine_problems
from .model import FaceModel, LandmarkSet
from .read_chunks import tag_text
from .reader import read
from .writer import to_bytes, write

# Containers whose children are chunks, and how many bytes precede the children.
_CONTAINER_SKIP = {b"MODL": 0, b"IBUG": 0, b"MCTR": 0, b"TOPO": 0, b"NVLM": 0, b"BLND": 4, b"PRTS": 4}


def chunk_tree(data: bytes) -> list[dict[str, Any]]:
    """The chunk structure of a file that reads: offset, tag, size and children."""

    def walk(start: int, end: int, parent: bytes) -> list[dict[str, Any]]:
        nodes: list[dict[str, Any]] = []
        pos = start
        while end - pos >= 8:
            tag, size = struct.unpack_from("<4sI", data, pos)
            if size > end - pos - 8:
                break
            node: dict[str, Any] = {"tag": tag_text(tag), "offset": pos, "size": size}
            skip = _CONTAINER_SKIP.get(tag) if parent == b"" else None
            if parent == b"MODL" and tag in (b"SHAP", b"COLR"):
                skip = 0
            if parent == b"PRTS" and tag == b"PART":
                skip = 24
            if skip is not None and size >= skip:
                node["children"] = walk(pos + 8 + skip, pos + 8 + size, tag)
            nodes.append(node)
            pos += 8 + size
        return nodes

    header = struct.unpack_from("<I", data, 4)[0]
    return walk(8 + header, len(data), b"")


def _locate(tree: list[dict[str, Any]], offset: int) -> str:
    """The path of the innermost chunk holding `offset`, e.g. 'BLND/SHAP@2517000'."""
    path: list[str] = []
    nodes = tree
    while True:
        for node in nodes:
            if node["offset"] <= offset < node["offset"] + 8 + node["size"]:
                path.append(f"{node['tag']}@{node['offset']}")
                nodes = node.get("children", [])
                break
        else:
            return "/".join(path) if path else "the header"


def _summary(array: Any, full: bool) -> Any:
    a = np.asarray(array)
    if full:
        return a.tolist()
    info: dict[str, Any] = {"shape": list(a.shape), "dtype": str(a.dtype)}
    if a.size:
        info["min"] = float(a.min()) if a.dtype.kind == "f" else int(a.min())
        info["max"] = float(a.max()) if a.dtype.kind == "f" else int(a.max())
    return info


def _landmarks(marks: LandmarkSet | None, full: bool) -> Any:
    if marks is None:
        return None
    return {
        "pairs": _summary(marks.pairs, full),
        "right_contour": None if marks.right_contour is None else np.asarray(marks.right_contour).tolist(),
        "left_contour": None if marks.left_contour is None else np.asarray(marks.left_contour).tolist(),
    }


def describe(model: FaceModel, data: bytes, arrays: bool = False) -> dict[str, Any]:
    """A JSON-ready description of a model and its file's structure."""
    linear = {}
    for key, part in (("shape", model.shape), ("color", model.color)):
        if part is not None:
            linear[key] = {
                "vertices": int(part.mean.shape[0]), "modes": int(part.modes.shape[0]),
                "triangles": int(part.triangles.shape[0]),
                "mean": _summary(part.mean, arrays), "modes_array": _summary(part.modes, arrays),
                "eigenvalues": _summary(part.eigenvalues, arrays), "triangles_array": _summary(part.triangles, arrays),
            }
    blend = model.blend_shapes
    return {
        "file_size": len(data),
        "header": {
            "payload_size": struct.unpack_from("<I", data, 4)[0],
            "endian_marker": data[8], "size_bits": data[9], "index_bits": data[10],
            "toc_offset": struct.unpack_from("<I", data, 12)[0],
        },
        "chunks": chunk_tree(data),
        "model": {
            **linear,
            "texcoords": None if model.texcoords is None else _summary(model.texcoords, arrays),
            "ibug": _landmarks(model.ibug, arrays),
            "nvlm": _landmarks(model.nvlm, arrays),
            "blend_shapes": None if blend is None else {
                "count": len(blend.names), "names": list(blend.names), "deltas": _summary(blend.deltas, arrays)},
            "model_contours": None if model.model_contours is None else {
                "right": None if model.model_contours.right is None else np.asarray(model.model_contours.right).tolist(),
                "left": None if model.model_contours.left is None else np.asarray(model.model_contours.left).tolist()},
            "topology": None if model.topology is None else {
                "edges": int(model.topology.adjacent_faces.shape[0]),
                "boundary_edges": int((np.asarray(model.topology.adjacent_faces)[:, 0] == 0).sum()),
                "adjacent_faces": _summary(model.topology.adjacent_faces, arrays),
                "edge_vertices": _summary(model.topology.edge_vertices, arrays)},
            "partitions": None if model.partitions is None else [
                {"index": p.index, "name": p.name, "material": p.material, "face_start": p.face_start,
                 "face_count": p.face_count, "vertex_start": p.vertex_start, "vertex_count": p.vertex_count,
                 "smoothing_group": p.smoothing_group} for p in model.partitions],
            "toc": None if model.toc is None else [{"tag": t, "offset": o} for t, o in model.toc],
            "unknown_chunks": [
                {"tag": u.tag, "parent": u.parent, "position": u.position, "size": len(u.payload)}
                for u in model.unknown_chunks],
        },
    }


def _info(model: FaceModel, data: bytes, path: str) -> str:
    lines = [f"{path}: NVIDIA 3DMM face model, {len(data):,} bytes"]
    lines.append(f"  shape: {model.vertex_count:,} vertices, {model.triangle_count:,} triangles, "
                 f"{model.mode_count} modes")
    if model.mode_count:
        ev = np.asarray(model.shape.eigenvalues)
        lines.append("  eigenvalues: all 1.0 (pre-scaled modes)" if np.all(ev == 1.0)
                     else f"  eigenvalues: {float(ev.min()):.6g} .. {float(ev.max()):.6g}")
    if model.color is not None:
        lines.append(f"  colour model: {model.color.modes.shape[0]} modes")
    lines.append(f"  texture coordinates: {'yes' if model.texcoords is not None else 'no'}")
    for label, marks in (("IBUG", model.ibug), ("NVLM", model.nvlm)):
        if marks is None:
            lines.append(f"  {label}: none")
            continue
        right = "-" if marks.right_contour is None else ",".join(map(str, np.asarray(marks.right_contour).tolist()))
        left = "-" if marks.left_contour is None else ",".join(map(str, np.asarray(marks.left_contour).tolist()))
        lines.append(f"  {label}: {marks.pairs.shape[0]} landmark pairs; right contour {right}; left contour {left}")
    if model.blend_shapes is not None:
        names = model.blend_shapes.names
        lines.append(f"  blend shapes ({len(names)}): {', '.join(names)}")
    else:
        lines.append("  blend shapes: none")
    if model.model_contours is not None:
        sizes = [0 if c is None else len(c) for c in (model.model_contours.right, model.model_contours.left)]
        lines.append(f"  model contours: {sizes[0]} right + {sizes[1]} left vertices")
    if model.topology is not None:
        faces = np.asarray(model.topology.adjacent_faces)
        lines.append(f"  topology: {faces.shape[0]:,} edges, {int((faces[:, 0] == 0).sum())} boundary")
    if model.partitions is not None:
        materials = sorted({p.material for p in model.partitions if p.material})
        lines.append(f"  partitions ({len(model.partitions)}, materials: {', '.join(materials) or '-'}):")
        for p in model.partitions:
            lines.append(f"    #{p.index}: name={p.name!r} material={p.material!r} triangles "
                         f"{p.face_start}..{p.face_start + p.face_count - 1} ({p.face_count}) "
                         f"smoothing group {p.smoothing_group}")
    if model.toc is not None:
        lines.append("  table of contents: " + ", ".join(f"{t}@{o}" for t, o in model.toc))
    else:
        lines.append("  table of contents: none")
    if model.unknown_chunks:
        lines.append("  unknown chunks (kept): " + ", ".join(
            f"{u.tag!r} in {u.parent or 'top level'} ({len(u.payload)} bytes)" for u in model.unknown_chunks))
    return "\n".join(lines)


def _load(path: str) -> tuple[FaceModel, bytes]:
    with open(path, "rb") as handle:
        data = handle.read()
    return read(data), data


#: Exit statuses of the command line.
EXIT_OK = 0
EXIT_INVALID = 1         # not a valid .nvf file (the error says where), or it cannot be read/written
EXIT_USAGE = 2           # argparse's
EXIT_NOT_MAXINE = 3      # validate: a valid .nvf file that NVIDIA's reader cannot read (reasons listed)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status (EXIT_* above: 0 success, 1 invalid or
    unreadable file, 2 usage, 3 valid but NVIDIA's reader cannot read it)."""
    parser = argparse.ArgumentParser(
        prog="python -m io_nv3dmm",
        description="Inspect, validate and round-trip NVIDIA 3DMM face models (.nvf, Maxine AR SDK).")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    info = commands.add_parser("info", help="print a readable summary (counts, names, partitions, landmarks)")
    info.add_argument("file", help="an .nvf file")
    validate = commands.add_parser(
        "validate", help=f"exit {EXIT_OK} if the file is valid and NVIDIA's reader (Maxine) reads it; "
                         f"{EXIT_INVALID} with the error if it is not a valid .nvf file; "
                         f"{EXIT_NOT_MAXINE} with the reasons if it is valid but NVIDIA's reader cannot read it")
    validate.add_argument("file", help="an .nvf file")
    roundtrip = commands.add_parser(
        "roundtrip", help="read, write and compare byte for byte; report where the bytes differ")
    roundtrip.add_argument("file", help="an .nvf file")
    roundtrip.add_argument("--output", metavar="OUT", help="also write the re-encoded file to OUT")
    dump = commands.add_parser("dump", help="print the structure as JSON (chunks, offsets, sizes, names, counts)")
    dump.add_argument("file", help="an .nvf file")
    dump.add_argument("--arrays", action="store_true", help="include full arrays instead of summaries")
    dump.add_argument("--indent", type=int, default=2, help="JSON indentation (default 2; 0 for one line)")
    demo = commands.add_parser("demo", help="write the synthetic demo face model to a file")
    demo.add_argument("output", help="the .nvf file to write")
    demo.add_argument("--color", action="store_true", help="include a colour model")
    demo.add_argument("--modes", type=int, default=20, help="number of shape modes (default 20)")
    demo.add_argument("--true-variances", action="store_true",
                      help="unit-norm modes with their variances as eigenvalues (default: eigenvalues 1.0)")
    args = parser.parse_args(argv)

    try:
        if args.command == "demo":
            from .demo_model import build_demo_model

            model = build_demo_model(shape_modes=args.modes, with_color=args.color,
                                     true_variances=args.true_variances)
            write(model, args.output)
            print(f"{args.output}: demo face model, {model.vertex_count:,} vertices, "
                  f"{model.triangle_count:,} triangles, {model.mode_count} modes, "
                  f"{len(model.blend_shapes.names) if model.blend_shapes else 0} blend shapes")
            return 0
        model, data = _load(args.file)
        if args.command == "info":
            print(_info(model, data, args.file))
        elif args.command == "validate":
            problems = maxine_problems(data)
            if problems:
                print(f"{args.file}: valid .nvf, but NVIDIA's reader (Maxine) cannot read it:", file=sys.stderr)
                for problem in problems:
                    print(f"  - {problem}", file=sys.stderr)
                return EXIT_NOT_MAXINE
            print(f"{args.file}: valid ({model.vertex_count:,} vertices, {model.triangle_count:,} triangles, "
                  f"{len(model.blend_shapes.names) if model.blend_shapes else 0} blend shapes; "
                  f"NVIDIA's reader reads it)")
        elif args.command == "dump":
            print(json.dumps(describe(model, data, args.arrays), indent=args.indent or None))
        elif args.command == "roundtrip":
            return _roundtrip(model, data, args.file, args.output)
        return 0
    except NvfError as error:
        print(f"{getattr(args, 'file', getattr(args, 'output', ''))}: invalid: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader of our output went away (e.g. `| head`): not an error of ours.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silences the flush at exit
        return 0
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def _roundtrip(model: FaceModel, data: bytes, path: str, output: str | None) -> int:
    # The codec's own check: written faithfully (maxine=False keeps what NVIDIA's reader
    # could not take, as the file has it; `validate` says whether it can).
    encoded = to_bytes(model, maxine=False)
    if output:
        write_atomic(output, encoded)
    if encoded == data:
        print(f"{path}: identical after read + write ({len(data):,} bytes)")
        return 0
    common = min(len(encoded), len(data))
    differ = np.flatnonzero(np.frombuffer(encoded, np.uint8, common) != np.frombuffer(data, np.uint8, common))
    first = int(differ[0]) if differ.size else common
    tree = chunk_tree(data)
    print(f"{path}: DIFFERENT after read + write: original {len(data):,} bytes, re-encoded {len(encoded):,}")
    print(f"  first difference at byte {first} (in {_locate(tree, first)}): "
          f"original {data[first:first + 8].hex(' ')} vs re-encoded {encoded[first:first + 8].hex(' ')}")
    print(f"  {int(differ.size):,} differing bytes in the first {common:,}")
    return 1
