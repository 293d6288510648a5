# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""What NVIDIA's own reader (FaceIO.cpp of the Maxine AR SDK) cannot take.

`maxine_problems(model_or_file)` lists, in words, every reason NVIDIA's reader
would fail, crash or read different data on a model (as `io_nv3dmm.write`
would write it) or on an existing file. `write` and `to_bytes` refuse such a
model unless called with `maxine=False`; `python -m io_nv3dmm validate` fails
on such a file. Established with NVIDIA's unmodified reader through both of
its adapters (the harness in ../shared/tools/nvidia-faceio); every case is in
docs/nvf-codec.md ("Maxine compatibility").

May import: numpy, the standard library, and io_nv3dmm's layout, limits, model
and (for a file) reader.
"""

from __future__ import annotations

import os
from typing import Any, Union

import numpy as np

from .layout import SourceLayout
from .limits import MAX_IBUG_CONTOUR
from .model import FaceModel, UnknownChunk

Source = Union[FaceModel, bytes, bytearray, memoryview, str, "os.PathLike[str]"]


def maxine_problems(source: Source) -> list[str]:
    """Why NVIDIA's reader cannot read `source`, one sentence each ([] when it can).

    `source` is a FaceModel (judged as `write(model)` would write it: a shape or
    colour model with zero modes, for one, is written without a BSIS chunk and is
    no problem), or an .nvf file as bytes or a path (judged as it is: a zero-count
    BSIS there is a problem). A file io_nv3dmm cannot read raises NvfError.
    """
    if isinstance(source, FaceModel):
        return _model_problems(source)
    from .reader import read

    model = read(source)
    problems = _file_problems(model)
    problems.extend(_model_problems(model))
    return problems


def _file_problems(model: FaceModel) -> list[str]:
    """Problems only a file can have: what the writer never writes."""
    problems: list[str] = []
    layout = model.source_layout
    if not isinstance(layout, SourceLayout):
        return problems
    for path, linear in (("MODL/SHAP", model.shape), ("MODL/COLR", model.color)):
        if linear is None:
            continue
        if "BSIS" in layout.child_orders.get(path, ()) and int(linear.modes.shape[0]) == 0:
            problems.append(
                f"{path} has a BSIS chunk with 0 modes: NVIDIA's reader divides by the mode "
                f"count and dies (SIGFPE); a model without modes must have no BSIS chunk "
                f"(io_nv3dmm.write leaves it out: read and write the file again)")
    return problems


def _model_problems(model: FaceModel) -> list[str]:
    problems: list[str] = []
    unknown: list[UnknownChunk] = [u for u in model.unknown_chunks if isinstance(u, UnknownChunk)]
    for item in unknown:
        if item.parent == "":
            problems.append(
                f"top-level chunk {item.tag!r} (an UnknownChunk): NVIDIA's reader stops with a "
                f"syntax error at any top-level object it does not know; drop it or keep it "
                f"inside a container (parent 'MODL', for one)")
    prts = sorted((u for u in unknown if u.parent == "PRTS"), key=lambda u: u.position)
    parts = model.partitions if prts else None     # (a read model's are made on first use)
    if parts:
        # The writer's placement: each unknown chunk at its position among the PARTs.
        order: list[Any] = [None] * len(parts)
        for item in prts:
            order.insert(min(item.position, len(order)), item)
        last_part = max(i for i, entry in enumerate(order) if entry is None)
        for i, entry in enumerate(order[:last_part]):
            if entry is not None:
                problems.append(
                    f"chunk {entry.tag!r} inside PRTS before a PART: NVIDIA's reader counts "
                    f"it as a partition, so the next PART lands beyond its partition list "
                    f"and the reader aborts; drop it or put it after the last PART (position "
                    f">= {len(parts)})")
    ibug = model.ibug
    if ibug is not None:
        for label, values in (("right", ibug.right_contour), ("left", ibug.left_contour)):
            if values is None:
                continue
            count = int(np.asarray(values).size)
            if count == 0:
                problems.append(
                    f"the IBUG {label} contour is empty: NVIDIA's SimpleFaceModelAdapter fails to "
                    f"read an empty one; use None for no contour")
            elif count > MAX_IBUG_CONTOUR:
                problems.append(
                    f"the IBUG {label} contour has {count} entries: NVIDIA's SimpleFaceModelAdapter "
                    f"holds {MAX_IBUG_CONTOUR} and crashes on more (the iBUG-68 contours are "
                    f"landmarks 1-8 and 10-17)")
    return problems
