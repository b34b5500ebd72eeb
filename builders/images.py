"""Checking, resizing and encoding images, so every stored image is one a model can read.

A download that PIL cannot fully decode is refused here (and so reported, never stored). The
paper's images are 224 px wide; Wikimedia now serves thumbnails at standard widths (250, 330,
...), so a wider thumbnail is scaled down to 224 keeping its aspect ratio.
"""

from __future__ import annotations

from io import BytesIO

from PIL import Image, UnidentifiedImageError

TARGET_WIDTH = 224


class CorruptImageError(ValueError):
    pass


def open_verified(data: bytes) -> Image.Image:
    """Decode bytes fully, or raise CorruptImageError (verify() alone misses truncation)."""
    try:
        with Image.open(BytesIO(data)) as probe:
            probe.verify()
        image = Image.open(BytesIO(data))
        image.load()
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


def fit_width(image: Image.Image, width: int = TARGET_WIDTH) -> Image.Image:
    if image.width <= width:
        return image
    height = max(1, round(image.height * width / image.width))
    return image.resize((width, height), Image.Resampling.LANCZOS)


def normalise(data: bytes, width: int = TARGET_WIDTH) -> tuple[bytes, str]:
    """Verified, RGB, at most `width` wide; JPEG stays JPEG (photos), the rest becomes PNG.

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
