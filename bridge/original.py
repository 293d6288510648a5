# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The original .nvf file kept on an imported mesh, shared by import and export.

The import stores the file's bytes on the mesh (`nvf_source`, a bytes ID
property that survives .blend save/reload) with the import options; the
exporter (and fitting, animation) read them back as an `Original`: the bytes,
the parsed model, the options and the import plan they gave. A small cache
keyed by the import's random token saves re-reading the file and re-planning
on every export. May import bpy (inside `is_imported`; types for typing), numpy, the format
(`io_nv3dmm`) and the bridge's `import_plan`, `naming`, `options`, `errors`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..io_nv3dmm import FaceModel, NvfError, read
from .bpy_typed import has_id_property, id_property
from .errors import NvfBridgeError
from .import_plan import ImportPlan, plan_import
from .naming import PROP_IMPORT, PROP_SOURCE
from .options import ImportOptions

if TYPE_CHECKING:
    from bpy.types import Mesh, Object

#: The first bytes of every NVIDIA 3DMM face model file.
NVF_MAGIC = b"NFAC"


@dataclass
class Original:
    """The file an imported mesh came from: bytes, model, import options, and
    what the import made of it (read-only arrays shared through a cache)."""

    data: bytes
    model: FaceModel
    options: ImportOptions
    plan: ImportPlan


#: Parsed originals by (import token, length, options): exporting an import
#: again skips re-reading the file and recomputing the import plan. The token
#: is a random id stored with the import options; a hit is only used when its
#: bytes equal the mesh's, so a stale or copied token can never give wrong data.
_CACHE: "OrderedDict[tuple[str, int, tuple[Any, ...]], Original]" = OrderedDict()
_CACHE_SIZE = 4


def _cache_key(token: str, data: bytes, options: ImportOptions) -> tuple[str, int, tuple[Any, ...]]:
    return (token, len(data), tuple(sorted(options.as_dict().items())))


def remember_original(token: str, original: Original) -> None:
    """Caches what an import with this token (stored on its mesh) was made from."""
    key = _cache_key(token, original.data, original.options)
    _CACHE[key] = original
    _CACHE.move_to_end(key)
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)


def is_imported(obj: Object) -> bool:
    """Whether `obj` is a mesh object imported from an .nvf file (it keeps the file); cheap
    enough for a property's poll: nothing is read."""
    import bpy

    return obj.type == 'MESH' and isinstance(obj.data, bpy.types.Mesh) and has_id_property(obj.data, PROP_SOURCE)


def original_of(mesh: Mesh) -> Original | None:
    """The original file kept on an imported mesh, or None for any other mesh.

    Raises NvfBridgeError if the kept bytes no longer read (a damaged property).
    """
    value = id_property(mesh, PROP_SOURCE)
    if not isinstance(value, (bytes, bytearray)) or value[:4] != NVF_MAGIC:
        return None
    data = bytes(value)
    settings = id_property(mesh, PROP_IMPORT)
    options = ImportOptions.from_dict(settings)
    token = str(settings.get("token", "")) if hasattr(settings, "get") else ""
    key = _cache_key(token, data, options)
    cached = _CACHE.get(key)
    if cached is not None and cached.data == data:
        _CACHE.move_to_end(key)
        return cached
    try:
        model = read(data)
    except NvfError as exc:
        raise NvfBridgeError(f"the original .nvf kept on mesh '{mesh.name}' is damaged: {exc}") from exc
    original = Original(data=data, model=model, options=options, plan=plan_import(model, options))
    remember_original(token, original)
    return original
