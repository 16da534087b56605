"""Draws the signed-in user's avatar, ``static/img/izzy.png``, with no imaging library.

The PNG is committed; ``python -m bookinfo.productpage.avatar`` rewrites it, and a unit test
checks that the committed file is what this module draws. The picture: a sailboat (the shape of
Istio's logo) in white on a blue disc, antialiased by supersampling.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

AVATAR_PATH = Path(__file__).parent / "static" / "img" / "izzy.png"
SIZE = 96
SUPERSAMPLE = 4

Point = tuple[float, float]
# Shapes in unit coordinates (0..1, y down).
BIG_SAIL: tuple[Point, ...] = ((0.50, 0.18), (0.50, 0.66), (0.26, 0.66))
SMALL_SAIL: tuple[Point, ...] = ((0.55, 0.32), (0.72, 0.66), (0.55, 0.66))
HULL: tuple[Point, ...] = ((0.24, 0.71), (0.76, 0.71), (0.66, 0.80), (0.34, 0.80))
DISC = (70, 107, 176)  # Istio blue
WHITE = (255, 255, 255)


def _inside(polygon: tuple[Point, ...], x: float, y: float) -> bool:
    """Even-odd rule."""
    inside = False
    count = len(polygon)
    for i in range(count):
        (x1, y1), (x2, y2) = polygon[i], polygon[(i + 1) % count]
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def _pixel(px: int, py: int, size: int) -> tuple[int, int, int, int]:
    disc = white = 0
    for sy in range(SUPERSAMPLE):
        for sx in range(SUPERSAMPLE):
            x = (px + (sx + 0.5) / SUPERSAMPLE) / size
            y = (py + (sy + 0.5) / SUPERSAMPLE) / size
            if (x - 0.5) ** 2 + (y - 0.5) ** 2 > 0.25:
                continue
            disc += 1
            if any(_inside(shape, x, y) for shape in (BIG_SAIL, SMALL_SAIL, HULL)):
                white += 1
    if disc == 0:
        return (0, 0, 0, 0)
    # Colour from the samples inside the disc; alpha from the disc's coverage of the pixel.
    rgb = tuple(
        round((c * (disc - white) + w * white) / disc) for c, w in zip(DISC, WHITE, strict=True)
    )
    return (rgb[0], rgb[1], rgb[2], round(255 * disc / SUPERSAMPLE**2))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def render_avatar(size: int = SIZE) -> bytes:
    """The avatar as PNG bytes (8-bit RGBA, no interlace), the same bytes on every run."""
    rows = bytearray()
    for py in range(size):
        rows.append(0)  # filter type "none"
        for px in range(size):
            rows.extend(_pixel(px, py, size))
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + _chunk(b"IEND", b"")
    )


if __name__ == "__main__":
    AVATAR_PATH.write_bytes(render_avatar())
