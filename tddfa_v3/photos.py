# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Photos in: reading a file or an array into H x W x 3 RGB uint8, with the size limits
(the smallest side, the widest aspect, decompression bombs) and reduced decoding of huge photos.

Imports numpy; Pillow lazily (`require_pil_image`). No torch.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .dependencies import require_pil_image
from .errors import PhotoError, ReconstructionError

U8 = npt.NDArray[np.uint8]


def photo_name(photo: Any, index: int = 0) -> str:
    """A short label for messages and output names: the file name, else ``photo<index>``."""
    if isinstance(photo, (str, os.PathLike)):
        return Path(photo).name
    return f"photo{index}"


#: The smallest photo side and the most elongated shape reconstruction accepts (anything
#: beyond cannot hold a face, and breaks the detector's resize).
MIN_PHOTO_SIDE = 8
MAX_PHOTO_ASPECT = 20.0

#: Photos of up to this many pixels are read at full size, exactly as the reference reads
#: them (every phone photo); larger ones are decoded reduced by an integer factor to at most
#: this many (the detector works on 512 x 512, the crops are 224 x 224).
MAX_PHOTO_PIXELS = 50_000_000

#: The decompression-bomb limit: the most pixels decoded before reducing. JPEGs are decoded
#: at 1/2, 1/4 or 1/8 scale straight from the file (Pillow's draft mode), so this bounds their
#: size after that scale; other formats are decoded whole (Pillow keeps 4 bytes a pixel for
#: colour), so this keeps that decode, and the whole read, under 1 GB.
MAX_DECODE_PIXELS = 160_000_000

_OPEN_LOCK = threading.Lock()


def check_photo_size(width: int, height: int, name: str = "the photo") -> None:
    """PhotoError unless a `width` x `height` photo can be reconstructed: the one place
    that says a photo is too small or too elongated (files, arrays, Blender images)."""
    short, long = min(width, height), max(width, height)
    if short < MIN_PHOTO_SIDE or long > MAX_PHOTO_ASPECT * short:
        raise PhotoError(
            f"{name} is {width} x {height} pixels, which cannot hold a face to reconstruct: a photo needs at "
            f"least {MIN_PHOTO_SIDE} pixels on each side and at most {MAX_PHOTO_ASPECT:g} times as wide as "
            "high (or as high as wide)")


def reduction_factor(width: int, height: int, max_pixels: int | None = None) -> int:
    """The smallest integer f with ceil(W / f) * ceil(H / f) <= max_pixels (default
    `MAX_PHOTO_PIXELS`; 1: read as is)."""
    if max_pixels is None:
        max_pixels = MAX_PHOTO_PIXELS
    factor = 1
    while -(-width // factor) * -(-height // factor) > max_pixels:
        factor += 1
    return factor


def as_rgb_uint8(array: npt.ArrayLike, what: str = "the photo") -> U8:
    """An image array as contiguous H x W x 3 uint8 RGB.

    Accepts H x W (grayscale), H x W x 1, H x W x 3 (RGB) and H x W x 4 (RGBA:
    alpha dropped, as Pillow's ``convert("RGB")`` does); uint8 as is, uint16
    scaled by 1/257, bool to 0/255, floats in [0, 1] scaled by 255.
    """
    image = np.asarray(array)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise PhotoError(f"{what} has shape {image.shape}; expected H x W, H x W x 3 (RGB) or H x W x 4 (RGBA)")
    if image.shape[2] == 4:
        image = image[:, :, :3]
    check_photo_size(int(image.shape[1]), int(image.shape[0]), what)
    if image.dtype == np.uint8:
        pass
    elif image.dtype == np.bool_:
        image = image.astype(np.uint8) * 255
    elif image.dtype == np.uint16:
        image = np.round(image.astype(np.float64) / 257.0).astype(np.uint8)
    elif np.issubdtype(image.dtype, np.floating):
        finite = np.isfinite(image)
        if not finite.all() or image.min() < 0.0 or image.max() > 1.0:
            raise PhotoError(f"{what} is a float image with values outside [0, 1]; "
                             "pass uint8 RGB or floats in [0, 1]")
        image = np.round(image.astype(np.float64) * 255.0).astype(np.uint8)
    else:
        raise PhotoError(f"{what} has pixel type {image.dtype}; expected uint8, uint16 or floats in [0, 1]")
    return np.ascontiguousarray(image)


def load_photo(photo: str | os.PathLike[str] | npt.ArrayLike) -> U8:
    """A photo as H x W x 3 uint8 RGB, from a file path or an array.

    Files are read with Pillow; the EXIF orientation of JPEG/TIFF/WebP files
    is applied (a phone portrait comes out upright), 16-bit images are reduced
    to 8 bits, grayscale is expanded to RGB and alpha is dropped. A file of
    more than `MAX_PHOTO_PIXELS` pixels is decoded reduced by an integer
    factor (JPEG straight from the file); one that would need more than
    `MAX_DECODE_PIXELS` decoded is refused. Every problem with the file is a
    one-line `PhotoError`.
    """
    if not isinstance(photo, (str, os.PathLike)):
        return as_rgb_uint8(photo)
    path = Path(photo)
    if not path.is_file():
        raise PhotoError(f"Photo not found: {path}")
    Image = require_pil_image()
    from PIL import UnidentifiedImageError

    name = path.name
    try:
        with _OPEN_LOCK, warnings.catch_warnings():
            # Pillow's own bomb check counts pixels before any reduced decoding; ours
            # (MAX_DECODE_PIXELS, below) counts what is really decoded.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                opened = Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = limit
        try:
            return _decode(opened, name)
        finally:
            _close(opened)
    except ReconstructionError:
        raise
    except UnidentifiedImageError as exc:
        raise PhotoError(f"{name} is not an image Pillow can read (use JPEG, PNG, TIFF, BMP or WebP)") from exc
    except MemoryError as exc:
        raise PhotoError(f"{name} needs more memory to decode than this computer has free; "
                         "save a smaller copy of the photo") from exc
    except Exception as exc:  # Pillow's decoders raise OSError, ValueError, SyntaxError, struct.error...
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PhotoError(f"Cannot read the photo {name}: {detail} (the file is damaged or not a "
                         "supported image)") from exc


def _decode(opened: Any, name: str) -> U8:
    """Decode an opened Pillow image (reduced when huge) into H x W x 3 uint8 RGB."""
    from PIL import Image, ImageOps

    width, height = opened.size
    check_photo_size(width, height, name)
    factor = reduction_factor(width, height)
    if factor > 1 and opened.format == "JPEG":
        # Decoded straight at 1/2, 1/4 or 1/8 scale, the largest not above `factor`
        # (Pillow picks the scale from the whole-number ratio of the sizes).
        opened.draft(None, (max(1, width // factor), max(1, height // factor)))
    decoded_w, decoded_h = opened.size
    if decoded_w * decoded_h > MAX_DECODE_PIXELS:
        raise PhotoError(
            f"{name} is {width} x {height} pixels ({width * height / 1e6:.0f} megapixels): decoding it would take "
            f"more than the {MAX_DECODE_PIXELS // 1_000_000} megapixels allowed for a {opened.format or 'image'} file "
            f"(a decompression-bomb guard); save a copy of at most {MAX_PHOTO_PIXELS // 1_000_000} megapixels")
    opened.load()
    image = opened
    factor = reduction_factor(decoded_w, decoded_h)
    if factor > 1:
        if image.mode in ("P", "PA", "1"):
            image = image.convert("RGBA" if "A" in image.mode or "transparency" in image.info else "RGB")
        elif image.mode.startswith("I;16"):
            image = image.convert("I")
        reduced = image.reduce(factor)
        _close(image)       # the whole decode goes now, before anything else is allocated
        _close(opened)
        image = reduced
    image = ImageOps.exif_transpose(image) or image
    if image.mode in ("I;16", "I;16B", "I;16L", "I") or image.mode == "F":
        return as_rgb_uint8(_gray_to_uint8(image), what=name)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.array(image, dtype=np.uint8)


def _close(image: Any) -> None:
    """Close a Pillow image, freeing its pixels (a second close is harmless)."""
    try:
        image.close()
    except (ValueError, OSError, AttributeError):
        pass


def _gray_to_uint8(image: Any) -> U8:
    """16/32-bit integer or float grayscale as uint8, scaled rather than clipped (Pillow's
    convert would clip), in row blocks so a big image never exists as float64 whole."""
    data = np.asarray(image)
    if image.mode == "F":
        peak = 1.0 if float(data.max()) <= 1.0 else 255.0
    else:
        peak = 65535.0 if image.mode.startswith("I;16") or int(data.max()) > 255 else 255.0
    gray = np.empty(data.shape, dtype=np.uint8)
    for row in range(0, data.shape[0], 1024):
        block = data[row:row + 1024].astype(np.float64)
        gray[row:row + 1024] = np.clip(np.round(block * (255.0 / peak)), 0, 255).astype(np.uint8)
    return gray
