# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The .nvf import and export options: plain dataclasses, the keywords of
`import_nvf` / `export_nvf` (operators build them from their properties,
scripts pass them directly). Stdlib only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class ImportOptions:
    """What `import_nvf` creates and how it converts coordinates.

    scale: centimetres -> Blender units (0.01: metres). convert_axes: +Y up ->
    +Z up ((x, y, z) -> (x, -z, y)). The other flags switch parts off; a part
    that was not imported is carried over unchanged from the original file on
    export.
    """

    scale: float = 0.01
    convert_axes: bool = True
    shape_keys: bool = True
    landmarks: bool = True
    partitions: bool = True
    mtl_colors: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"scale": float(self.scale), "convert_axes": bool(self.convert_axes),
                "shape_keys": bool(self.shape_keys), "landmarks": bool(self.landmarks),
                "partitions": bool(self.partitions), "mtl_colors": bool(self.mtl_colors)}

    @classmethod
    def from_dict(cls, values: Any) -> "ImportOptions":
        # `values`: the options as stored in a custom property (whatever a script left there).
        defaults = cls()
        def get(key: str, default: Any) -> Any:
            try:
                return values[key]
            except (KeyError, TypeError, IndexError):
                return default
        return cls(scale=float(get("scale", defaults.scale)),
                   convert_axes=bool(get("convert_axes", defaults.convert_axes)),
                   shape_keys=bool(get("shape_keys", True)), landmarks=bool(get("landmarks", True)),
                   partitions=bool(get("partitions", True)), mtl_colors=bool(get("mtl_colors", True)))


@dataclass
class ExportOptions:
    """How `export_nvf` converts coordinates.

    use_import_settings: for a mesh imported from .nvf, invert that import's
    own scale/axis conversion (recommended; `scale`/`convert_axes` then only
    apply to other meshes). scale: Blender units per centimetre as imported
    (0.01: the mesh is in metres). convert_axes: Blender +Z up -> NVIDIA +Y up.
    apply_transform: bake the object's world transform into the exported
    geometry (an imported face that was only moved/rotated as an object keeps
    its exact values when this is off).
    """

    use_import_settings: bool = True
    scale: float = 0.01
    convert_axes: bool = True
    apply_transform: bool = True
