# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Compatibility only: the names this module used to hold, re-exported from their homes.

New code imports from the home of each idea: `naming` (the .nvf naming in
Blender), `axes` (coordinates), `options` (ImportOptions / ExportOptions),
`import_plan` (what the importer creates), `mtl` (the .mtl companion),
`files` (reading regular files) and `errors` (NvfBridgeError).
"""

from __future__ import annotations

from .axes import offsets_to_blender, to_blender, to_nvf
from .errors import NvfBridgeError
from .files import NotRegularFileError, read_regular_file
from .import_plan import (
    BLEND_SLIDER, MAX_VERTEX_GROUPS, MODE_SLIDER, ImportPlan, face_partition_numbers, plan_import,
)
from .mtl import MAX_MTL_BYTES, read_mtl_colors
from .naming import (
    BASIS_NAME, COLOR_ATTRIBUTE, CONTOUR_GROUP, CONTOUR_GROUP_PATTERN, IBUG_GROUP, LANDMARK_GROUP_PATTERN,
    MODE_KEY, MODE_KEY_PATTERN, NVLM_GROUP, PARTITION_ATTRIBUTE, PARTITION_GROUP_PATTERN, PROP_CONTOURS,
    PROP_EIGENVALUES, PROP_IMPORT, PROP_MATERIAL, PROP_SOURCE, PROP_SOURCE_NAME, UV_MAP_NAME, blend_shape_key_name,
    blender_name, material_nvf_name, partition_label, unique_names,
)
from .options import ImportOptions

__all__ = [
    "BASIS_NAME", "COLOR_ATTRIBUTE", "CONTOUR_GROUP", "CONTOUR_GROUP_PATTERN", "IBUG_GROUP",
    "LANDMARK_GROUP_PATTERN", "MODE_KEY", "MODE_KEY_PATTERN", "NVLM_GROUP", "PARTITION_ATTRIBUTE",
    "PARTITION_GROUP_PATTERN", "PROP_CONTOURS", "PROP_EIGENVALUES", "PROP_IMPORT", "PROP_MATERIAL", "PROP_SOURCE",
    "PROP_SOURCE_NAME", "UV_MAP_NAME", "blend_shape_key_name", "blender_name", "material_nvf_name",
    "partition_label", "unique_names", "offsets_to_blender", "to_blender", "to_nvf", "NvfBridgeError",
    "ImportOptions", "ImportPlan", "plan_import", "face_partition_numbers", "NotRegularFileError",
    "read_regular_file", "read_mtl_colors", "MAX_MTL_BYTES", "MAX_VERTEX_GROUPS", "MODE_SLIDER", "BLEND_SLIDER",
]
