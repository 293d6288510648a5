# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The .nvf format's limits: one table, used by the writer and the reader alike.

Whatever `io_nv3dmm.write` accepts, `io_nv3dmm.read` accepts: the writer
refuses (NvfError, before writing anything) a model beyond any of these, and
the reader refuses a file beyond them. The table is documented in
docs/nvf-codec.md ("Limits").

May import: the standard library only.
"""

from __future__ import annotations

#: Vertices: indices (TRNG, LMRK vertices, MCTR) are uint16.
MAX_VERTICES = 65535

#: Triangles of a model with a TOPO (always written for a model built in code):
#: TOPO numbers faces 1-based in uint16.
MAX_TRIANGLES = 65535

#: Named blend shapes in BLND. Maxine's tracker drives 53.
MAX_BLEND_SHAPES = 65535

#: Partitions (PART records) in PRTS.
MAX_PARTITIONS = 65535

#: Bytes of one name (blend shape, partition name or material), UTF-8, NUL excluded.
MAX_NAME_BYTES = 65535

#: Entries of an IBUG right or left contour. NVIDIA's SimpleFaceModelAdapter (the
#: ExpressionApp's) reads them into fixed arrays of 8: a longer contour overruns
#: them and crashes the reader, an empty one makes it fail. Only Maxine's limit:
#: `write(..., maxine=False)` and the reader take any length.
MAX_IBUG_CONTOUR = 8

#: Bytes of a whole file: NVIDIA's reader keeps the file size and TOC offsets in uint32.
MAX_FILE_BYTES = 0xFFFFFFFF

#: Every chunk the reader walks becomes Python objects (offsets, names, records, raw
#: unknown chunks: 150-500 bytes measured), while it may be as small as its 8-byte
#: header. So the chunks a file may hold are bounded by its size: each is charged
#: what it costs the reader in memory against a budget of the file's length plus
#: CHUNK_SLACK, and a file made of millions of empty chunks is refused instead of
#: costing many times its size. The writer charges what it would write the same way
#: (`chunk_cost`), so whatever it writes reads.
CHUNK_SLACK = 2 << 20
#: Any chunk the reader walks (objects, their children, TOC records) and every
#: unknown chunk, wherever it is.
CHUNK_COST = 640
#: A NAME or SHAP inside BLND (a blend shape, both chunks, costs ~350 bytes).
BLEND_CHUNK_COST = 192
#: A PART record (~480 bytes with its Partition).
PART_COST = 512
#: A NAME or MTRL inside a PART.
PART_STRING_COST = 64


def chunk_budget(file_bytes: int) -> int:
    """What the chunks of a file of `file_bytes` may cost in all (see CHUNK_COST)."""
    return file_bytes + CHUNK_SLACK
