"""Display orientation: every grid is shown in the radiological convention."""

from __future__ import annotations

import numpy as np
import pytest

from cases.orientation import (
    direction_letters,
    display_aspect,
    display_orientation,
    plane_of,
    to_display,
)


def _affine(col, row, normal, spacing=(1.0, 1.0, 1.0)) -> np.ndarray:
    a = np.eye(4)
    a[:3, 0] = np.asarray(col, float) * spacing[0]
    a[:3, 1] = np.asarray(row, float) * spacing[1]
    a[:3, 2] = np.asarray(normal, float) * spacing[2]
    a[:3, 3] = (-90.0, 100.0, -40.0)
    return a


def _rot(axis: int, degrees: float) -> np.ndarray:
    t = np.deg2rad(degrees)
    c, s = np.cos(t), np.sin(t)
    i, j = [k for k in range(3) if k != axis]
    m = np.eye(3)
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m


R, L, A, P, S, I = (1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)  # noqa: E741
_OBLIQUE = _rot(0, 20) @ _rot(2, 15)

GRIDS = {
    # name: (affine, plane, expected screen (right, down) as RAS directions)
    "RAS axial (NIfTI default)": (_affine(R, A, S), "axial"),
    "LAS axial (nibabel anatomical.nii)": (_affine(L, A, S), "axial"),
    "LPS axial (DICOM default)": (_affine(L, P, S), "axial"),
    "RPI axial": (_affine(R, P, I), "axial"),
    "axial, rows along x": (_affine(A, R, I), "axial"),
    "axial, rows along x, mirrored": (_affine(P, R, S), "axial"),
    "oblique axial": (
        _affine(_OBLIQUE @ np.array(L), _OBLIQUE @ np.array(P), _OBLIQUE @ np.array(S)),
        "axial",
    ),
    "coronal DICOM": (_affine(L, I, A), "coronal"),
    "coronal upside down": (_affine(R, S, P), "coronal"),
    "sagittal DICOM": (_affine(P, I, L), "sagittal"),
    "sagittal transposed": (_affine(S, A, R), "sagittal"),
    "anisotropic LAS": (_affine(L, A, S, spacing=(0.9, 1.2, 5.0)), "axial"),
}
SCREEN = {
    "axial": (np.array(L), np.array(P)),
    "coronal": (np.array(L), np.array(I)),
    "sagittal": (np.array(P), np.array(I)),
}


def _world_maps(affine: np.ndarray, ny: int = 7, nx: int = 9) -> np.ndarray:
    """RAS coordinates of every pixel of stored slice 0: shape (3, ny, nx)."""
    y, x = np.mgrid[0:ny, 0:nx]
    vox = np.stack([x, y, np.zeros_like(x), np.ones_like(x)]).reshape(4, -1).astype(float)
    return (affine @ vox)[:3].reshape(3, ny, nx)


@pytest.mark.parametrize("name", list(GRIDS))
def test_displayed_slice_follows_the_radiological_convention(name):
    affine, plane = GRIDS[name]
    orientation = display_orientation(affine)
    assert orientation.plane == plane == plane_of(affine)
    world = _world_maps(affine)
    shown = np.stack([to_display(w, orientation) for w in world])
    right, down = SCREEN[plane]
    # One step right on the screen moves toward screen-right's patient direction, one step
    # down toward screen-down's, whatever order the voxels were stored in.
    step_right = shown[:, :, 1:] - shown[:, :, :-1]
    step_down = shown[:, 1:, :] - shown[:, :-1, :]
    assert np.all(np.tensordot(right, step_right, axes=1) > 0.5)
    assert np.all(np.tensordot(down, step_down, axes=1) > 0.5)
    # The edge letters say the same.
    main = {
        "top": direction_letters(-down),
        "bottom": direction_letters(down),
        "left": direction_letters(-right),
        "right": direction_letters(right),
    }
    for edge, letter in main.items():
        assert getattr(orientation, edge)[0] == letter, (edge, orientation)


def test_the_default_dicom_and_phantom_grid_is_shown_as_stored():
    orientation = display_orientation(_affine(L, P, S))
    assert orientation.identity
    assert (orientation.top, orientation.bottom, orientation.left, orientation.right) == (
        "A",
        "P",
        "R",
        "L",
    )


def test_las_is_shown_upside_down_of_storage():
    orientation = display_orientation(_affine(L, A, S))
    assert (orientation.hflip, orientation.vflip, orientation.rotation) == (False, True, 0)
    image = np.arange(12).reshape(3, 4)
    assert np.array_equal(to_display(image, orientation), image[::-1])


def test_oblique_edges_name_two_directions():
    orientation = display_orientation(
        _affine(_rot(2, 30) @ np.array(L), _rot(2, 30) @ np.array(P), S)
    )
    assert len(orientation.top) == 2 and orientation.top[0] == "A"


def test_to_display_turns_a_stack_like_each_slice():
    orientation = display_orientation(_affine(A, R, I))
    assert orientation.transposed
    stack = np.random.default_rng(0).random((4, 5, 6))
    shown = to_display(stack, orientation)
    assert shown.shape == (4, 6, 5)
    for z in range(4):
        assert np.array_equal(shown[z], to_display(stack[z], orientation))


def test_display_aspect_swaps_with_a_turn():
    straight = display_orientation(_affine(L, A, S))
    turned = display_orientation(_affine(A, R, I))
    assert display_aspect((2.0, 1.0), straight) == 2.0
    assert display_aspect((2.0, 1.0), turned) == 0.5


def test_matches_cornerstone_viewport_semantics():
    """Cornerstone maps a pixel p to screen R(rotation) · F(flips) · (p - centre)."""
    for affine, _plane in GRIDS.values():
        o = display_orientation(affine)
        theta = np.deg2rad(o.rotation)
        turn = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        flip = np.diag([-1.0 if o.hflip else 1.0, -1.0 if o.vflip else 1.0])
        m = np.rint(turn @ flip).astype(int)
        image = np.zeros((5, 7))
        image[1, 5] = 1  # y=1, x=5
        shown = to_display(image, o)
        centre_in = np.array([(7 - 1) / 2, (5 - 1) / 2])
        out_w, out_h = shown.shape[1], shown.shape[0]
        centre_out = np.array([(out_w - 1) / 2, (out_h - 1) / 2])
        x, y = m @ (np.array([5, 1]) - centre_in) + centre_out
        assert shown[round(y), round(x)] == 1
