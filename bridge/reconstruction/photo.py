# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Photos held by Blender: an Image's pixels for the core (`image_to_rgb`), the Image
already showing a file, a photo's EXIF orientation and an upright copy of a photo
Blender would show sideways. May import bpy (inside the functions), Pillow (lazily)
and the core's photo checks.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ...tddfa_v3.errors import PhotoError
from ...tddfa_v3.photos import check_photo_size
from ..bpy_typed import image_pixels
from ..errors import ReconstructionBridgeError
from ..rollback import Created

if TYPE_CHECKING:
    from bpy.types import Image

U8 = npt.NDArray[np.uint8]


def image_to_rgb(image: Image) -> U8:
    """An Image datablock's pixels as an (H, W, 3) uint8 RGB array, top row first."""
    width, height = int(image.size[0]), int(image.size[1])
    if width == 0 or height == 0:
        raise ReconstructionBridgeError(f'the image "{image.name}" has no pixels (is its file missing?)')
    # The core's one size rule and message, before reading the pixels.
    try:
        check_photo_size(width, height, f'the image "{image.name}"')
    except PhotoError as error:
        raise ReconstructionBridgeError(str(error)) from error
    channels = int(image.channels)
    buffer = np.empty(width * height * channels, dtype=np.float32)
    image_pixels(image).foreach_get(buffer)
    pixels = buffer.reshape(height, width, channels)[::-1]
    if channels == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    rgb = np.clip(pixels[:, :, :3], 0.0, 1.0)
    colorspace = image.colorspace_settings
    if image.is_float and (colorspace is None or colorspace.name != "Non-Color"):
        # Float images hold scene-linear values; the networks expect sRGB-encoded photos.
        rgb = np.where(rgb <= 0.0031308, rgb * 12.92, 1.055 * np.power(rgb, 1.0 / 2.4) - 0.055)
    return np.ascontiguousarray(np.round(rgb * 255.0).astype(np.uint8))


def find_image(filepath: str) -> Image | None:
    """An Image datablock already showing `filepath`, if any."""
    import bpy
    wanted = os.path.normcase(os.path.abspath(filepath))
    for image in bpy.data.images:
        if image.filepath and os.path.normcase(os.path.abspath(bpy.path.abspath(image.filepath))) == wanted:
            return image
    return None


def exif_orientation(path: str) -> int:
    """The EXIF orientation of an image file (1 = as stored, 2..8 = flipped / turned), 1 when
    there is none or the file cannot be read here."""
    try:
        from PIL import Image as PILImage
        with PILImage.open(path) as opened:
            value = opened.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - unreadable here: Blender loads (or refuses) it as stored
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def upright_photo_image(path: str, created: Created) -> Image:
    """A new Image of the photo as the core read it (EXIF orientation applied), packed into
    the .blend, for photos that Blender would show sideways or mirrored."""
    import bpy

    from ...tddfa_v3.photos import load_photo
    pixels = load_photo(path)
    height, width = int(pixels.shape[0]), int(pixels.shape[1])
    image = bpy.data.images.new(Path(path).name, width, height, alpha=False)
    created.images.append(image)
    rgba = np.ones((height, width, 4), dtype=np.float32)
    rgba[:, :, :3] = pixels[::-1] * np.float32(1.0 / 255.0)      # Blender stores the bottom row first
    image_pixels(image).foreach_set(rgba.ravel())
    image.pack()
    return image


def photo_image(photo_path: str, created: Created) -> Image:
    """The Image showing the photo file: upright when it has an EXIF turn (Blender shows a
    file as stored; the core turned a phone's sideways portrait upright), else one already
    showing the file, else the file loaded (recorded in `created`)."""
    import bpy

    image = upright_photo_image(photo_path, created) if exif_orientation(photo_path) != 1 \
        else find_image(photo_path)
    if image is None:
        try:
            image = bpy.data.images.load(photo_path)
        except RuntimeError as error:
            raise ReconstructionBridgeError(f"Blender cannot load the photo {photo_path!r}: {error}") from error
        created.images.append(image)
    return image
