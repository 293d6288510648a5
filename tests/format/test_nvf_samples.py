# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Real .nvf files (NVF_SAMPLES): byte-exact round trips and face_model2.nvf's known figures.

Skipped, with the reason, when NVF_SAMPLES is unset (a fresh clone without the
shared fixtures); the synthetic tests cover the same code paths.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest

from nv3dmm_face_tools import io_nv3dmm as nvf


def _sample_files(folder: Path) -> list[Path]:
    files = sorted(folder.glob("*.nvf"))
    if not files:
        pytest.skip(f"no *.nvf files in {folder}")
    return files


def test_every_sample_round_trips_byte_for_byte(nvf_samples: Path, tmp_path: Path) -> None:
    for path in _sample_files(nvf_samples):
        data = path.read_bytes()
        model = nvf.read(path)
        assert nvf.to_bytes(model) == data, path.name
        out = tmp_path / path.name
        nvf.write(model, out)
        assert out.read_bytes() == data, path.name
        # A model re-read from our own output is equal too.
        assert nvf.to_bytes(nvf.read(out)) == data


def test_every_sample_topology_matches_nvidia_rule(nvf_samples: Path) -> None:
    for path in _sample_files(nvf_samples):
        model = nvf.read(path)
        if model.topology is None:
            continue
        rebuilt = nvf.build_topology(model.shape.triangles)
        np.testing.assert_array_equal(rebuilt.adjacent_faces, model.topology.adjacent_faces, err_msg=path.name)
        np.testing.assert_array_equal(rebuilt.edge_vertices, model.topology.edge_vertices, err_msg=path.name)


@pytest.fixture(scope="module")
def face_model2(nvf_samples: Path) -> Path:
    path = nvf_samples / "face_model2.nvf"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    return path


def test_face_model2_figures(face_model2: Path) -> None:
    data = face_model2.read_bytes()
    assert len(data) == 3_876_152
    digest = hashlib.sha256(data).hexdigest()
    assert digest.startswith("8c889250") and digest.endswith("193ab3")
    assert struct.unpack_from("<I", data, 12)[0] == 3_876_084
    model = nvf.read(data)
    assert model.vertex_count == 2056 and model.mode_count == 100 and model.triangle_count == 4048
    assert np.all(model.shape.eigenvalues == 1.0)
    assert model.color is None and model.texcoords is None
    assert model.ibug is not None and model.ibug.pairs.shape == (68, 2)
    np.testing.assert_array_equal(model.ibug.right_contour, np.arange(1, 9))
    np.testing.assert_array_equal(model.ibug.left_contour, np.arange(10, 18))
    assert model.blend_shapes is not None
    assert tuple(model.blend_shapes.names) == nvf.MAXINE_EXPRESSIONS
    assert model.blend_shapes.deltas.shape == (53, 2056, 3)
    assert model.model_contours is not None
    assert model.model_contours.right is not None and model.model_contours.right.shape == (16,)
    assert model.model_contours.left is not None and model.model_contours.left.shape == (16,)
    assert model.topology is not None and model.topology.adjacent_faces.shape == (6103, 2)
    assert int((model.topology.adjacent_faces == 0).sum()) == 62
    assert model.nvlm is not None and model.nvlm.pairs.shape == (86, 2)
    np.testing.assert_array_equal(model.nvlm.right_contour, np.arange(1, 17))
    np.testing.assert_array_equal(model.nvlm.left_contour, np.arange(18, 34))
    parts = model.partitions
    assert parts is not None and len(parts) == 9
    assert [p.name for p in parts] == ["Face", "Sclera", "Iris", "Sclera", "Iris", "Sclera", "Iris", "Sclera",
                                       "MouthSocket"]
    assert all(p.name == p.material and p.smoothing_group == -1 for p in parts)
    assert all(p.vertex_start == 3 * p.face_start and p.vertex_count == 3 * p.face_count for p in parts)
    assert sum(p.face_count for p in parts) == 4048
    assert model.toc == [("MODL", 16), ("IBUG", 2_516_628), ("BLND", 2_516_964), ("MCTR", 3_826_144),
                         ("TOPO", 3_826_232), ("NVLM", 3_875_080), ("PRTS", 3_875_520)]
    assert model.unknown_chunks == []


def test_face_model2_rebuilt_from_scratch_matches(face_model2: Path) -> None:
    """Dropping every layout detail and the TOPO still reproduces NVIDIA's file."""
    data = face_model2.read_bytes()
    model = nvf.read(data)
    model.source_layout = None
    model.topology = None
    model.toc = None
    assert nvf.to_bytes(model) == data


def test_face_model2_edits_stay_consistent(face_model2: Path) -> None:
    model = nvf.read(face_model2)
    assert model.blend_shapes is not None and model.partitions is not None
    names = model.blend_shapes.names
    keep = [i for i, n in enumerate(names) if not n.startswith("eyeLook")]
    model.blend_shapes = nvf.BlendShapes(names=[names[i] for i in keep], deltas=model.blend_shapes.deltas[keep])
    model.partitions = model.partitions[:1]
    data = nvf.to_bytes(model)
    back = nvf.read(data)
    assert back.blend_shapes is not None and len(back.blend_shapes.names) == 45
    assert back.partitions is not None and len(back.partitions) == 1
    assert back.toc is not None
    for tag, offset in back.toc:
        assert data[offset:offset + 4] == tag.encode()
