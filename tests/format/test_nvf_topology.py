# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""build_topology: NVIDIA's TOPO rule, on small meshes worked by hand and on the real file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nv3dmm_face_tools import io_nv3dmm as nvf
from nv3dmm_face_tools.io_nv3dmm import NvfError


def test_two_triangles_by_hand() -> None:
    # Square 0-1-2-3 split along 0-2: triangles (0,1,2) and (0,2,3), counter-clockwise.
    top = nvf.build_topology(np.array([[0, 1, 2], [0, 2, 3]]))
    # Edges in first-met order: (0,1) (1,2) (2,0) (2,3) (3,0).
    assert top.edge_vertices.tolist() == [[1, 2], [2, 3], [1, 3], [3, 4], [1, 4]]
    # Edge 0-2: triangle 1 runs 2->0 (larger to smaller) so it comes first; triangle 2 runs 0->2.
    assert top.adjacent_faces.tolist() == [[0, 1], [0, 1], [1, 2], [0, 2], [0, 2]]
    assert top.adjacent_faces.dtype == np.uint16 and top.edge_vertices.dtype == np.uint16


def test_interior_edge_order_depends_on_direction_not_on_first_meeting() -> None:
    # Triangle 1 runs edge 1-2 upward (1->2), triangle 2 downward (2->1): triangle 2 goes first.
    top = nvf.build_topology(np.array([[0, 1, 2], [2, 1, 3]]))
    record = top.edge_vertices.tolist().index([2, 3])
    assert top.adjacent_faces[record].tolist() == [2, 1]


def test_non_manifold_and_inconsistent_winding_are_handled() -> None:
    # Three triangles on edge 0-1 (non-manifold): the first two met are kept.
    top = nvf.build_topology(np.array([[0, 1, 2], [1, 0, 3], [0, 1, 4]]))
    record = top.edge_vertices.tolist().index([1, 2])
    assert top.adjacent_faces[record].tolist() == [2, 1]
    # Two triangles running edge 0-1 the same way: stored in the order met.
    top = nvf.build_topology(np.array([[0, 1, 2], [0, 1, 3]]))
    record = top.edge_vertices.tolist().index([1, 2])
    assert top.adjacent_faces[record].tolist() == [1, 2]


def test_empty_and_bad_input() -> None:
    top = nvf.build_topology(np.zeros((0, 3), np.uint16))
    assert top.adjacent_faces.shape == (0, 2) and top.edge_vertices.shape == (0, 2)
    with pytest.raises(NvfError, match="shape"):
        nvf.build_topology(np.zeros((4, 4), np.uint16))
    with pytest.raises(NvfError, match="integers"):
        nvf.build_topology(np.zeros((4, 3), np.float32))
    with pytest.raises(NvfError, match="0..65534"):
        nvf.build_topology(np.array([[0, 1, 65535]]))


def test_closed_mesh_has_no_boundary_and_euler_characteristic_two() -> None:
    # An octahedron.
    triangles = np.array([[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4],
                          [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]])
    top = nvf.build_topology(triangles)
    assert not (top.adjacent_faces == 0).any()
    assert 6 - len(top.edge_vertices) + 8 == 2


def test_demo_model_is_manifold() -> None:
    from nv3dmm_face_tools.io_nv3dmm.demo_model import build_demo_model

    model = build_demo_model(shape_modes=0, blend_shape_names=[])
    top = nvf.build_topology(model.shape.triangles)
    tris = model.shape.triangles.astype(np.int64)
    edges = np.sort(np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    assert counts.max() == 2                                  # no edge has more than two faces
    assert len(top.edge_vertices) == len(counts)
    assert int((top.adjacent_faces[:, 0] == 0).sum()) == int((counts == 1).sum())


def test_reproduces_face_model2(nvf_samples: Path) -> None:
    path = nvf_samples / "face_model2.nvf"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    model = nvf.read(path)
    assert model.topology is not None
    top = nvf.build_topology(model.shape.triangles)
    np.testing.assert_array_equal(top.adjacent_faces, model.topology.adjacent_faces)
    np.testing.assert_array_equal(top.edge_vertices, model.topology.edge_vertices)
    assert len(top.edge_vertices) == 6103 and int((top.adjacent_faces == 0).sum()) == 62
