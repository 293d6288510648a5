# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fitting layer against targets whose answer is known (fitting.ground_truth): a model
posed with random mode coefficients and expression weights, re-sampled to another topology
(a front grid cast onto the face), cropped to the front, with noise and outliers, moved by a
random similarity. Errors are in the model's units (centimetres)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("scipy", reason="the fitting layer needs SciPy")

from nv3dmm_face_tools import io_nv3dmm  # noqa: E402
from nv3dmm_face_tools.io_nv3dmm.demo_model import build_demo_model  # noqa: E402

from nv3dmm_face_tools import fitting  # noqa: E402
from nv3dmm_face_tools.fitting.basis import model_basis  # noqa: E402
from nv3dmm_face_tools.fitting.geometry import closest_on_triangles, similarity  # noqa: E402
from nv3dmm_face_tools.fitting.ground_truth import GroundTruth, make_target, surface_distance  # noqa: E402
from nv3dmm_face_tools.fitting.solve import active_set_quadratic, bounded_quadratic  # noqa: E402


@pytest.fixture(scope="module")
def demo() -> io_nv3dmm.FaceModel:
    return build_demo_model()


@pytest.fixture(scope="module")
def face_model2(nvf_samples: Path) -> io_nv3dmm.FaceModel:
    path = nvf_samples / "face_model2.nvf"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    return io_nv3dmm.read(path)


#: Spread of the random mode coefficients per model (times the eigenvalue's square root).
#: The issue's thresholds are set against face_model2, where predicting the mean shape
#: scores about 0.32 cm; the demo model's synthetic modes are about three times larger, so
#: its targets use a third of the spread to be as far from its mean (0.3-0.9 cm with the
#: expressions). With the full spread its unseen back of the head alone errs ~0.37 cm.
SPREAD = {"demo": 0.35, "face_model2": 1.0}


@pytest.fixture(params=["demo", "face_model2"])
def model(request: pytest.FixtureRequest) -> io_nv3dmm.FaceModel:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


@pytest.fixture()
def spread(request: pytest.FixtureRequest, model: io_nv3dmm.FaceModel) -> float:
    return SPREAD[request.node.callspec.params["model"]]


def _errors(model: io_nv3dmm.FaceModel, truth: GroundTruth, fit: fitting.Fit) -> tuple[float, float, float]:
    """(mean distance of the covered vertices to the true surface, mean vertex error over all
    vertices, the mean vertex error of predicting the mean shape), model units."""
    basis = model_basis(model)
    fitted = truth.to_model(fit.vertices)
    skin_faces = basis.triangles[np.isin(basis.triangles, basis.skin).all(axis=1)]
    covered = np.flatnonzero(truth.covered)
    on_surface = float(surface_distance(fitted[covered], truth.truth, skin_faces).mean())
    everywhere = float(np.linalg.norm(fitted - truth.truth, axis=1).mean())
    baseline = float(np.linalg.norm(basis.mean - truth.truth, axis=1).mean())
    return on_surface, everywhere, baseline


# ------------------------------------------------------------------------- building blocks

def test_similarity_recovers_a_known_transform() -> None:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(30, 3))
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rotation = q * np.sign(np.linalg.det(q))
    scale, rot, shift = similarity(points, 2.5 * points @ rotation.T + [1.0, -2.0, 3.0])
    assert scale == pytest.approx(2.5)
    np.testing.assert_allclose(rot, rotation, atol=1e-12)
    np.testing.assert_allclose(shift, [1.0, -2.0, 3.0], atol=1e-12)
    with pytest.raises(fitting.FittingError, match="collinear"):
        similarity(np.outer(np.arange(5.0), [1.0, 2.0, 3.0]), np.outer(np.arange(5.0), [1.0, 0.0, 0.0]))


def test_closest_point_on_triangles_matches_dense_sampling() -> None:
    rng = np.random.default_rng(1)
    count = 400
    a, b, c = (rng.normal(size=(count, 3)) for _ in range(3))
    points = rng.normal(size=(count, 3)) * 2.0
    bary = closest_on_triangles(points, a, b, c)
    assert np.all(bary >= -1e-12) and np.allclose(bary.sum(1), 1.0)
    found = np.linalg.norm(bary[:, :1] * a + bary[:, 1:2] * b + bary[:, 2:] * c - points, axis=1)
    u, v = np.meshgrid(np.linspace(0, 1, 61), np.linspace(0, 1, 61))
    inside = (u + v) <= 1.0
    u, v = u[inside], v[inside]
    samples = (a[:, None] * (1 - u - v)[None, :, None] + b[:, None] * u[None, :, None]
               + c[:, None] * v[None, :, None])
    sampled = np.linalg.norm(samples - points[:, None], axis=2).min(axis=1)
    assert np.all(found <= sampled + 1e-9)           # never worse than any sample
    assert np.all(sampled - found <= 0.05)           # and the samples come close to it


def test_bounded_quadratic_matches_scipy() -> None:
    from scipy.optimize import lsq_linear
    rng = np.random.default_rng(2)
    for trial in range(5):
        a = rng.normal(size=(200, 40))
        a[:, 1] = a[:, 0] + 0.01 * a[:, 1]           # nearly collinear columns
        b = a @ np.clip(rng.normal(0.3, 0.6, 40), 0, 1) + 0.05 * rng.normal(size=200)
        lower = np.r_[np.full(5, -np.inf), np.zeros(35)]
        upper = np.r_[np.full(5, np.inf), np.ones(35)]
        ours = bounded_quadratic(a.T @ a, a.T @ b, lower, upper)
        reference = lsq_linear(a, b, bounds=(lower, upper), method="bvls", tol=1e-14).x
        np.testing.assert_allclose(ours, reference, atol=1e-7)


def test_active_set_quadratic_matches_scipy_cold_and_warm() -> None:
    """The per-frame solver of fit_expressions: the same minimiser from no start, from a
    start near the answer (the next video frame) and from one at the wrong bounds."""
    from scipy.optimize import lsq_linear
    rng = np.random.default_rng(3)
    for trial in range(8):
        a = rng.normal(size=(200, 40))
        a[:, 1] = a[:, 0] + 0.01 * a[:, 1]
        b = a @ np.clip(rng.normal(0.3, 0.6, 40), 0, 1) + 0.05 * rng.normal(size=200)
        lower = np.r_[np.full(5, -np.inf), np.zeros(35)]
        upper = np.r_[np.full(5, np.inf), np.ones(35)]
        reference = lsq_linear(a, b, bounds=(lower, upper), method="bvls", tol=1e-14).x
        near = np.clip(reference + rng.normal(0, 0.1, 40), lower, upper)
        flipped = np.where(np.isfinite(lower), np.where(reference > 0.5, 0.0, 1.0), 0.0)
        for start in (None, near, flipped):
            ours = active_set_quadratic(a.T @ a, a.T @ b, lower, upper, start=start)
            np.testing.assert_allclose(ours, reference, atol=1e-7)


def test_skin_leaves_out_eyes_and_mouth_socket(demo: io_nv3dmm.FaceModel) -> None:
    basis = model_basis(demo)
    assert demo.partitions is not None
    triangles = np.asarray(demo.shape.triangles)
    for part in demo.partitions[1:]:
        used = np.unique(triangles[part.face_start:part.face_start + part.face_count])
        assert not np.isin(used, basis.skin).any(), part.name
    assert np.isin(basis.landmark_vertices, basis.skin).all()


# ------------------------------------------------------------------------- fit_model

@pytest.mark.parametrize("seed", [0, 1])
def test_dense_fit_recovers_the_face(model: io_nv3dmm.FaceModel, spread: float, seed: int) -> None:
    truth = make_target(model, seed, coefficient_scale=spread)
    fit = fitting.fit_model(model, truth.vertices, truth.triangles, truth.landmarks)
    on_surface, everywhere, baseline = _errors(model, truth, fit)
    assert baseline > 0.15                # the target is far from the mean shape
    assert on_surface <= 0.05, on_surface
    assert everywhere <= 0.15, everywhere
    assert everywhere < 0.6 * baseline, (everywhere, baseline)
    # (The scale itself is not asserted: a model whose modes can grow the whole face trades
    # scale for mode coefficients; the vertices are what must be right.)
    assert set(fit.expression_weights) == set(model.blend_shapes.names)   # type: ignore[union-attr]
    assert all(0.0 <= w <= 1.0 for w in fit.expression_weights.values())
    # Errors are reported in the target's units; outliers are among the unmatched.
    assert fit.mean_dense_error / truth.scale < 0.1
    assert fit.correspondence is not None and fit.correspondence.valid[truth.covered].mean() > 0.8


def test_dense_fit_without_residual_and_without_landmarks(demo: io_nv3dmm.FaceModel) -> None:
    truth = make_target(demo, 3, scale_range=(1.0, 1.0))
    plain = fitting.fit_model(demo, truth.vertices, truth.triangles, truth.landmarks,
                              fitting.FitOptions(residual=False))
    assert not plain.residual.any()
    assert _errors(demo, truth, plain)[0] <= 0.05
    # No landmarks: a start from the target's size and centre (the target faces +Z, turned
    # at most 30 degrees), noted in the fit.
    bare = fitting.fit_model(demo, truth.vertices, truth.triangles)
    assert any("no landmarks" in note for note in bare.notes)
    assert _errors(demo, truth, bare)[0] <= 0.1


def test_landmarks_alone(model: io_nv3dmm.FaceModel, spread: float) -> None:
    for seed in (0, 1):
        truth = make_target(model, seed, coefficient_scale=spread)
        fit = fitting.fit_model(model, None, None, truth.landmarks)
        _, everywhere, baseline = _errors(model, truth, fit)
        assert everywhere <= 0.2, everywhere
        assert everywhere < 0.6 * baseline
        assert len(fit.landmark_errors) == model_basis(model).landmark_numbers.size
        assert np.isnan(fit.dense_errors).all() and fit.correspondence is None


def test_a_target_in_the_models_own_topology_is_taken_vertex_for_vertex(demo: io_nv3dmm.FaceModel) -> None:
    truth = make_target(demo, 4, own_topology=True, outliers=0.0)
    fit = fitting.fit_model(demo, truth.vertices, truth.triangles)
    assert np.isfinite(fit.dense_errors).all()          # every vertex has its counterpart
    assert np.linalg.norm(truth.to_model(fit.vertices) - truth.truth, axis=1).mean() <= 0.05


# ------------------------------------------------------------------------- fit_expressions

def test_expressions_on_a_remeshed_target(model: io_nv3dmm.FaceModel, spread: float) -> None:
    for seed in (10, 11):
        truth = make_target(model, seed, expressions=10, coefficient_scale=spread)
        fit = fitting.fit_expressions(model, truth.coefficients, truth.vertices, truth.triangles, truth.landmarks)
        np.testing.assert_array_equal(fit.coefficients, truth.coefficients)
        error = np.linalg.norm(truth.to_model(fit.vertices) - truth.truth, axis=1).mean()
        assert error <= 0.1, error


def test_expression_weights_in_the_models_own_topology(face_model2: io_nv3dmm.FaceModel) -> None:
    """Posed and noisy, vertices one to one: the weights themselves are recovered. (Only on a
    real model: the demo model's synthetic blend shapes are linearly dependent, e.g.
    mouthLeft = -mouthRight, so its weights are not unique; see the next test.)"""
    model = face_model2
    fitter = fitting.ExpressionFitter(model, np.zeros(model.mode_count))
    errors = []
    for seed in range(4):
        truth = make_target(model, 20 + seed, own_topology=True, outliers=0.0, expressions=12,
                            coefficients=np.zeros(model.mode_count))
        fit = fitter.fit(truth.vertices, truth.triangles)
        errors.append(np.abs(fit.weights - truth.weights))
        assert fit.scale == pytest.approx(truth.scale, rel=1e-3)
        np.testing.assert_allclose(fit.rotation, truth.rotation, atol=2e-3)
    errors_all = np.concatenate(errors)
    assert errors_all.mean() <= 0.02, errors_all.mean()
    assert errors_all.max() <= 0.1, errors_all.max()


def test_own_topology_expressions_of_the_demo_model(demo: io_nv3dmm.FaceModel) -> None:
    blend = np.asarray(demo.blend_shapes.deltas, dtype=np.float64).reshape(53, -1)  # type: ignore[union-attr]
    assert np.linalg.matrix_rank(blend, tol=1e-3) < 53          # why the weights are not asserted
    fitter = fitting.ExpressionFitter(demo, np.zeros(demo.mode_count))
    for seed in range(2):
        truth = make_target(demo, 25 + seed, own_topology=True, outliers=0.0, expressions=12,
                            coefficients=np.zeros(demo.mode_count))
        fit = fitter.fit(truth.vertices, truth.triangles)
        assert np.linalg.norm(truth.to_model(fit.vertices) - truth.truth, axis=1).mean() <= 0.02


def test_later_frames_reuse_the_correspondence(demo: io_nv3dmm.FaceModel) -> None:
    """A video: frame 0 fitted with fit_model, later frames of the same target topology
    resampled through its correspondence and fitted with the identity fixed."""
    first = make_target(demo, 30)
    fit = fitting.fit_model(demo, first.vertices, first.triangles, first.landmarks)
    assert fit.correspondence is not None
    rng = np.random.default_rng(3)
    for frame in range(3):
        weights = np.zeros(len(first.weights))
        chosen = rng.choice(weights.size, 6, replace=False)
        weights[chosen] = rng.uniform(0.1, 0.9, 6)
        later = first.same_topology(demo, weights, seed=frame)
        result = fitting.fit_expressions(demo, fit, later.vertices, later.triangles,
                                         correspondence=fit.correspondence)
        assert result.correspondence is None and result.iterations >= 1
        error = np.linalg.norm(later.to_model(result.vertices) - later.truth, axis=1).mean()
        assert error <= 0.12, error
    # A target of another topology is not resampled with it.
    other = make_target(demo, 31)
    assert not fit.correspondence.matches(other.vertices.shape[0], other.triangles)
    # A fitter that already gathered through the correspondence checks the triangles the
    # gather reads on every frame: one of them changed means closest points instead.
    fitter = fitting.ExpressionFitter(demo, fit)
    assert fitter.fit(later.vertices, later.triangles, correspondence=fit.correspondence).correspondence is None
    placed = fit.correspondence.triangle[fit.correspondence.valid]
    changed = later.triangles.copy()
    changed[placed[0]] = changed[placed[0]][[1, 0, 2]]
    result = fitter.fit(later.vertices, changed, correspondence=fit.correspondence)
    assert result.correspondence is not None
    fewer = later.triangles[:-1]
    assert fitter.fit(later.vertices, fewer, correspondence=fit.correspondence).correspondence is not None


# ------------------------------------------------------------------------- personal_model

def test_personal_model_writes_reads_back_and_nvidia_reads_it(face_model2: io_nv3dmm.FaceModel, tmp_path: Path,
                                                              nvidia_faceio: Any) -> None:
    truth = make_target(face_model2, 40)
    fit = fitting.fit_model(face_model2, truth.vertices, truth.triangles, truth.landmarks)
    personal = fitting.personal_model(face_model2, fit)
    basis = model_basis(face_model2)
    neutral = basis.mean + basis.modes @ fit.coefficients + fit.residual
    np.testing.assert_allclose(personal.shape.mean, neutral, atol=1e-5)
    # The person's neutral face: the truth without its expression.
    no_expression = basis.shape(truth.coefficients, np.zeros(basis.blend_count))
    assert np.linalg.norm(personal.shape.mean - no_expression, axis=1).mean() <= 0.15
    np.testing.assert_array_equal(personal.shape.modes, face_model2.shape.modes)
    assert personal.blend_shapes is not None and face_model2.blend_shapes is not None
    assert personal.blend_shapes.names == list(io_nv3dmm.MAXINE_EXPRESSIONS)
    for name in ("ibug", "nvlm", "model_contours", "topology", "partitions", "texcoords"):
        assert getattr(personal, name) is getattr(face_model2, name)
    path = tmp_path / "me.nvf"
    io_nv3dmm.write(personal, path)
    back = io_nv3dmm.read(path)
    np.testing.assert_array_equal(back.shape.mean, personal.shape.mean)
    np.testing.assert_array_equal(back.blend_shapes.deltas, personal.blend_shapes.deltas)  # type: ignore[union-attr]
    assert back.blend_shapes.names == personal.blend_shapes.names  # type: ignore[union-attr]
    nvidia_faceio.check(path)
    summary = nvidia_faceio.read(path)
    assert "53" in str(summary) or len(personal.blend_shapes.names) == 53


def test_personal_model_of_the_demo_model_round_trips(demo: io_nv3dmm.FaceModel, tmp_path: Path) -> None:
    truth = make_target(demo, 41)
    fit = fitting.fit_model(demo, truth.vertices, truth.triangles, truth.landmarks)
    personal = fitting.personal_model(demo, fit)
    path = tmp_path / "demo_me.nvf"
    io_nv3dmm.write(personal, path)
    back = io_nv3dmm.read(path)
    np.testing.assert_array_equal(back.shape.mean, personal.shape.mean)
    assert back.blend_shapes is not None and len(back.blend_shapes.names) == 53


def test_deformation_transfer_turns_blend_shapes_with_the_residual(demo: io_nv3dmm.FaceModel) -> None:
    basis = model_basis(demo)
    fit = fitting.fit_model(demo, None, None, make_target(demo, 42).landmarks)
    assert not fit.residual.any()
    same = fitting.personal_model(demo, fit)
    assert same.blend_shapes is demo.blend_shapes          # no residual: nothing to adapt
    # A residual that turns the whole face by 10 degrees about Z turns every offset with it.
    angle = np.radians(10.0)
    turn = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    fitted = basis.mean + basis.modes @ fit.coefficients
    fit.residual = fitted @ turn.T - fitted
    turned = fitting.personal_model(demo, fit)
    assert turned.blend_shapes is not None and demo.blend_shapes is not None
    used = np.unique(basis.triangles)
    expected = np.asarray(demo.blend_shapes.deltas, dtype=np.float64)[:, used] @ turn.T
    np.testing.assert_allclose(turned.blend_shapes.deltas[:, used], expected, atol=1e-4)
    plain = fitting.personal_model(demo, fit, transfer_expressions=False)
    assert plain.blend_shapes is demo.blend_shapes


# ------------------------------------------------------------------------- bad input

def test_bad_inputs_get_clear_errors(demo: io_nv3dmm.FaceModel) -> None:
    truth = make_target(demo, 50)
    nan = truth.vertices.copy()
    nan[3, 1] = np.nan
    cases: list[tuple[dict[str, Any], str]] = [
        (dict(vertices=nan, triangles=truth.triangles), "NaN"),
        (dict(vertices=truth.vertices[:, :2], triangles=truth.triangles), r"shape \(N, 3\)"),
        (dict(vertices=truth.vertices, triangles=truth.triangles + truth.vertices.shape[0]), "outside"),
        (dict(vertices=truth.vertices, triangles=None), "needs its triangles"),
        (dict(vertices=None, triangles=None), "nothing to fit"),
        (dict(vertices=None, triangles=None, landmarks={1: (0, 0, 0), 2: (1, 0, 0)}), "at least 3"),
        (dict(vertices=None, triangles=None, landmarks={30: (0, 0)}), "finite 3D point"),
        (dict(vertices=None, triangles=None, landmarks={"nose": (0, 0, 0)}), "not an iBUG"),
    ]
    for kwargs, message in cases:
        with pytest.raises(fitting.FittingError, match=message):
            fitting.fit_model(demo, kwargs["vertices"], kwargs["triangles"], kwargs.get("landmarks"))
    with pytest.raises(fitting.FittingError, match="dense_sigma"):
        fitting.fit_model(demo, truth.vertices, truth.triangles, options=fitting.FitOptions(dense_sigma=0.0))
    with pytest.raises(fitting.FittingError, match="mode coefficients"):
        fitting.fit_expressions(demo, np.zeros(3), truth.vertices, truth.triangles)
    far = truth.vertices + 1e6
    with pytest.raises(fitting.FittingError, match="does not overlap"):
        fitting.fit_model(demo, far, truth.triangles, {n: p for n, p in list(truth.landmarks.items())[:2]})


def test_landmark_numbers_the_model_lacks_are_ignored_and_noted(face_model2: io_nv3dmm.FaceModel) -> None:
    truth = make_target(face_model2, 51)
    landmarks = dict(truth.landmarks)
    landmarks[1] = landmarks[9]            # face_model2 has no vertex for the contour point 1
    fit = fitting.fit_model(face_model2, None, None, landmarks)
    assert 1 not in fit.landmark_errors and any("[1]" in note for note in fit.notes)
