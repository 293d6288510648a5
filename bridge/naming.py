# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The .nvf naming in Blender: the names the importer creates and the exporter reads.

Everything that names a part of an .nvf model in Blender lives here (shape-key,
vertex-group, attribute, UV-map and custom-property names, and the helpers that
make a name fit Blender), so import, export, animation, fitting and the
reconstruction's landmark groups agree on one convention. No bpy import here
(a `Material` is only read through its properties); nothing from the core.

shape keys
    ``Basis``: the mean shape (the reference key).
    ``PCA.000``, ``PCA.001``, ...: one key per shape mode (``PCA.<number>``,
    the number is the mode's index in the file and picks its eigenvalue).
    Any other key: a named blend shape, the key's name is the shape's name.
vertex groups
    ``IBUG.031``: the vertices of iBUG-68 landmark 31 (1-based, as in the file).
    ``NVLM.031``: the vertices of NVIDIA 126-point landmark 31.
    ``MCTR.R.00``, ``MCTR.L.00``, ...: the model's right / left face contour,
    one group per contour point, in contour order (ear to chin).
    ``PART.000.Face``: the vertices of partition 0 (named "Face"); the number
    orders partitions on export, the text after it is the partition's name.
    The import lists the PART groups first, then IBUG, NVLM, MCTR; the
    exporter reads groups by name, in any order.
materials
    One slot per distinct partition material; a material's .nvf name is its
    ``nvf_material`` property (kept when Blender adds a ".001" suffix), else
    its Blender name. An empty slot means "no material".
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .bpy_typed import id_property

if TYPE_CHECKING:
    from bpy.types import Material

BASIS_NAME = "Basis"
MODE_KEY = "PCA.{:03d}"
MODE_KEY_PATTERN = re.compile(r"^PCA\.(\d+)$")
IBUG_GROUP = "IBUG.{:03d}"
NVLM_GROUP = "NVLM.{:03d}"
LANDMARK_GROUP_PATTERN = re.compile(r"^(IBUG|NVLM)\.(\d+)$")
CONTOUR_GROUP = "MCTR.{side}.{:02d}"
CONTOUR_GROUP_PATTERN = re.compile(r"^MCTR\.([RL])\.(\d+)$")
PARTITION_GROUP_PATTERN = re.compile(r"^PART\.(?:(\d+)(?:\.(.*))?|(.+))$")
UV_MAP_NAME = "UVMap"
COLOR_ATTRIBUTE = "nvf_color"
PARTITION_ATTRIBUTE = "nvf_partition"

#: Custom properties on the Mesh (ID properties survive .blend save/reload).
PROP_SOURCE = "nvf_source"              # the original file's bytes
PROP_SOURCE_NAME = "nvf_source_name"    # its file name, for messages
PROP_IMPORT = "nvf_import"              # the ImportOptions used (a group)
PROP_EIGENVALUES = "nvf_eigenvalues"    # float per shape mode
PROP_CONTOURS = {                       # landmark-number contours of IBUG / NVLM
    ("IBUG", "R"): "nvf_ibug_right_contour", ("IBUG", "L"): "nvf_ibug_left_contour",
    ("NVLM", "R"): "nvf_nvlm_right_contour", ("NVLM", "L"): "nvf_nvlm_left_contour",
}
#: Custom property on a Material: its name in the .nvf file.
PROP_MATERIAL = "nvf_material"

#: Blender names hold at most 63 bytes of UTF-8.
_MAX_NAME_BYTES = 63


def blender_name(name: str) -> str:
    """`name` as Blender stores it: at most 63 bytes of UTF-8, cut on a character."""
    data = name.encode("utf-8")
    if len(data) <= _MAX_NAME_BYTES:
        return name
    return data[:_MAX_NAME_BYTES].decode("utf-8", errors="ignore")


def unique_names(names: list[str], taken: set[str] | None = None) -> list[str]:
    """Blender-style de-duplication ("x", "x.001", ...) of names in order."""
    if (len(set(names)) == len(names) and not (taken and taken.intersection(names))
            and all(len(name) <= _MAX_NAME_BYTES // 4 or len(name.encode("utf-8")) <= _MAX_NAME_BYTES
                    for name in names)):
        return list(names)      # the common case: distinct and short enough (<= 4 bytes per char)
    used = set(taken or ())
    result: list[str] = []
    for name in names:
        base = blender_name(name)
        candidate = base
        number = 0
        while candidate in used:
            number += 1
            suffix = f".{number:03d}"
            candidate = blender_name(base[:max(0, _MAX_NAME_BYTES - len(suffix))]) + suffix
            if len(candidate.encode("utf-8")) > _MAX_NAME_BYTES:
                candidate = base.encode("utf-8")[:_MAX_NAME_BYTES - len(suffix)].decode(
                    "utf-8", errors="ignore") + suffix
        used.add(candidate)
        result.append(candidate)
    return result


def blend_shape_key_name(name: str, index: int) -> str:
    """The shape-key name of blend shape `index`; collisions with the convention get a prefix."""
    if not name:
        return f"BLND.{index:03d}"
    if MODE_KEY_PATTERN.match(name) or name == BASIS_NAME:
        return f"BLND.{name}"
    return name


def partition_label(index: int, name: str | None, material: str | None) -> str:
    """The vertex-group name of partition `index` (its name, else its material's)."""
    label = name if name else (material or "")
    return f"PART.{index:03d}.{label}" if label else f"PART.{index:03d}"


def material_nvf_name(material: Material | None) -> str | None:
    """The .nvf material name of a Blender material (None for an empty slot)."""
    if material is None:
        return None
    original = id_property(material, PROP_MATERIAL)
    name = str(material.name)
    if isinstance(original, str) and original:
        stored = blender_name(original)
        # Blender appends ".001" when the name is taken (truncating a long one).
        base = re.sub(r"\.\d{3}$", "", name)
        if name == stored or base == stored or (base and len(name.encode("utf-8")) >= 60
                                                 and stored.startswith(base)):
            return original
    return name
