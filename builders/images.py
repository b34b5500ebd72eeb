"""Checking, resizing and encoding images, so every stored image is one a model can read.

A download that PIL cannot fully decode is refused here (and so reported, never stored).

Every stored image is sized as the authors' loader sizes it (g-luo/task_vectors_are_cross_modal,
`src/xpatch_dataset.py`, `open_image`): exactly 224 px wide, height `int((224 / w) * h)` (that
float expression, truncated: a floor for positive sizes), resampled with PIL's default filter for
RGB images, bicubic. Smaller images are enlarged too: Wikimedia serves thumbnails at standard
widths (250, 330, ...) and never scales an original up, so an image narrower than 224 px comes
back at its own size, and the models must still see what the paper's models saw.
"""

from __future__ import annotations

import re
import warnings
from io import BytesIO

from PIL import Image, UnidentifiedImageError

TARGET_WIDTH = 224


class CorruptImageError(ValueError):
    pass


class ImageTooLargeError(CorruptImageError):
    """More pixels than PIL's `Image.MAX_IMAGE_PIXELS`: a decompression bomb, refused from its
    header, before any pixel is decoded."""


def _too_large(exc: Exception) -> ImageTooLargeError:
    """The one-line refusal of an image over the pixel limit (PIL's bomb error or warning)."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    size = f"{int(found.group(1)):,} pixels" if found else "its size"
    return ImageTooLargeError(
        f"image too large: {size} declared, over the limit of {Image.MAX_IMAGE_PIXELS:,} pixels "
        "(PIL's Image.MAX_IMAGE_PIXELS; a decompression bomb?)"
    )


def open_verified(data: bytes) -> Image.Image:
    """Decode bytes fully, or raise CorruptImageError (verify() alone misses truncation).

    The one place images are opened from outside: an image of more than `Image.MAX_IMAGE_PIXELS`
    pixels raises ImageTooLargeError (PIL only warns up to twice that and then raises its own
    DecompressionBombError; both become this one error, before decoding).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(BytesIO(data)) as probe:
                probe.verify()
            image = Image.open(BytesIO(data))
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _too_large(exc) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        detail = str(exc).split(" <", 1)[0]  # drop PIL's "<_io.BytesIO object at 0x...>"
        raise CorruptImageError(f"corrupt image bytes ({detail})") from exc
    if image.width < 1 or image.height < 1:
        raise CorruptImageError("corrupt image bytes: empty image")
    return image


def check_image(data: bytes) -> None:
    """A `validate` hook for HttpClient.get: raises on bytes that are not a readable image."""
    open_verified(data)


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB on a white background: flags rendered from SVG are often transparent PNGs."""
    if image.mode == "RGB":
        return image
    rgba = image.convert("RGBA")
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


# PIL's default for `Image.resize` on RGB images since Pillow 7, which the authors' call relied on.
RESAMPLE = Image.Resampling.BICUBIC


def scaled_size(width: int, height: int, target: int = TARGET_WIDTH) -> tuple[int, int]:
    """(target, height) as the authors compute it: `int((target / width) * height)`.

    Written in their order of operations, not as `height * target // width`: the two differ by
    one pixel when the float product lands just below a whole number, and the point is to
    match their images exactly. At least 1 px high (theirs would fail on a 0 px height).
    """
    return target, max(1, int((target / width) * height))


def fit_width(image: Image.Image, width: int = TARGET_WIDTH) -> Image.Image:
    """The image scaled up or down to `width` px wide, aspect kept (see `scaled_size`)."""
    size = scaled_size(image.width, image.height, width)
    if size == image.size:
        return image
    return image.resize(size, RESAMPLE)


def normalise(data: bytes, width: int = TARGET_WIDTH) -> tuple[bytes, str]:
    """Verified, RGB, exactly `width` wide; JPEG stays JPEG (photos), the rest becomes PNG.

    Returns (encoded bytes, file extension).
    """
    image = open_verified(data)
    source_format = image.format
    out = fit_width(to_rgb(image), width)
    buffer = BytesIO()
    if source_format == "JPEG":
        out.save(buffer, format="JPEG", quality=95)
        return buffer.getvalue(), "jpg"
    out.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue(), "png"
