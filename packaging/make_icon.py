"""Draw the Natter icon and write it as PNG, .ico (Windows) and .icns (macOS).

This file is the icon's source: the mark is described geometrically (a
rounded teal tile, a white speech bubble with three dots, a paler bubble
behind it) and every size is drawn from that description with signed
distance fields, so small sizes are anti-aliased, not scaled down. Only the
standard library is used (zlib, struct): no Pillow, no ImageMagick.

    python packaging/make_icon.py            # (re)write packaging/icons/
    python packaging/make_icon.py --check    # exit 1 if the files are stale

The output is deterministic, so the generated files are committed and the
PyInstaller specs use them as they are; tests run ``--check``.
"""
from __future__ import annotations

import argparse
import math
import os
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "icons")

# Colours (sRGB 0-255).
TOP = (45, 212, 191)       # tile gradient, top
BOTTOM = (14, 116, 144)    # tile gradient, bottom
DOTS = (13, 110, 120)
WHITE = (255, 255, 255)
SHADOW = (8, 60, 70)

# Geometry in units of the icon's side (0..1, y grows downwards).
TILE = (0.04, 0.04, 0.96, 0.96, 0.22)             # x0, y0, x1, y1, corner radius
BACK = (0.40, 0.16, 0.86, 0.50, 0.11)
BACK_TAIL = ((0.70, 0.46), (0.80, 0.46), (0.84, 0.60))
FRONT = (0.13, 0.33, 0.72, 0.73, 0.13)
FRONT_TAIL = ((0.22, 0.68), (0.38, 0.68), (0.17, 0.87))
DOT_R = 0.047
DOT_Y = 0.53
DOT_XS = (0.28, 0.425, 0.57)

# Sizes each container carries. ICO: PNG entries (Windows Vista and later).
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# ICNS: PNG-bearing element types and their pixel sizes (@2x types included).
ICNS_TYPES = (("icp4", 16), ("icp5", 32), ("ic11", 32), ("icp6", 64), ("ic12", 64),
              ("ic07", 128), ("ic13", 256), ("ic08", 256), ("ic14", 512), ("ic09", 512))
PNG_SIZES = (48, 128)        # loose PNGs (hicolor theme, Tk iconphoto); natter.png is the 256 px one


# --- signed distance functions (negative inside), all in icon units -------

def sd_round_rect(px, py, box):
    x0, y0, x1, y1, r = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    hx, hy = (x1 - x0) / 2 - r, (y1 - y0) / 2 - r
    qx, qy = abs(px - cx) - hx, abs(py - cy) - hy
    outside = math.hypot(max(qx, 0.0), max(qy, 0.0))
    return outside + min(max(qx, qy), 0.0) - r


def sd_triangle(px, py, tri):
    """Exact distance to a triangle (polygon version of Inigo Quilez's sdPolygon)."""
    d = float("inf")
    sign = 1.0
    n = len(tri)
    for i in range(n):
        ax, ay = tri[i]
        bx, by = tri[i - 1]
        ex, ey = bx - ax, by - ay
        wx, wy = px - ax, py - ay
        t = max(0.0, min(1.0, (wx * ex + wy * ey) / (ex * ex + ey * ey)))
        dx, dy = wx - ex * t, wy - ey * t
        d = min(d, dx * dx + dy * dy)
        c1, c2, c3 = py >= ay, py < by, ex * wy > ey * wx
        if (c1 and c2 and c3) or (not c1 and not c2 and not c3):
            sign = -sign
    return sign * math.sqrt(d)


def sd_bubble(px, py, box, tail):
    return min(sd_round_rect(px, py, box), sd_triangle(px, py, tail))


def sd_dots(px, py):
    return min(math.hypot(px - x, py - DOT_Y) for x in DOT_XS) - DOT_R


def _cover(d, px_size):
    """Coverage of a pixel by a shape at signed distance d (one-pixel ramp)."""
    return max(0.0, min(1.0, 0.5 - d / px_size))


def _over(dst, rgb, alpha):
    """Composite a straight-alpha colour over dst = [r, g, b, a] (floats 0..1)."""
    if alpha <= 0.0:
        return
    r, g, b, a = dst
    out_a = alpha + a * (1 - alpha)
    k = a * (1 - alpha)
    dst[0] = (rgb[0] / 255 * alpha + r * k) / out_a
    dst[1] = (rgb[1] / 255 * alpha + g * k) / out_a
    dst[2] = (rgb[2] / 255 * alpha + b * k) / out_a
    dst[3] = out_a


def render(size: int) -> bytes:
    """RGBA rows (no filter bytes) of the icon at size x size pixels."""
    px = 1.0 / size
    small = size <= 24        # the back bubble only muddles the tiniest sizes
    shadow_dy, blur = 0.025, 0.05
    rows = bytearray()
    for j in range(size):
        y = (j + 0.5) * px
        t = max(0.0, min(1.0, (y - TILE[1]) / (TILE[3] - TILE[1])))
        tile_rgb = tuple(TOP[i] + (BOTTOM[i] - TOP[i]) * t for i in range(3))
        for i in range(size):
            x = (i + 0.5) * px
            pix = [0.0, 0.0, 0.0, 0.0]
            _over(pix, tile_rgb, _cover(sd_round_rect(x, y, TILE), px))
            if pix[3] > 0.0:
                if not small and 0.10 < y < 0.66 and x > 0.34:
                    _over(pix, WHITE, 0.45 * _cover(sd_bubble(x, y, BACK, BACK_TAIL), px))
                if 0.28 < y < 0.96 and 0.06 < x < 0.80:
                    ds = sd_bubble(x, y - shadow_dy, FRONT, FRONT_TAIL)
                    if ds < blur:
                        _over(pix, SHADOW, 0.28 * min(1.0, (blur - ds) / blur) ** 2)
                    _over(pix, WHITE, _cover(sd_bubble(x, y, FRONT, FRONT_TAIL), px))
                    if abs(y - DOT_Y) < DOT_R + 2 * px:
                        _over(pix, DOTS, _cover(sd_dots(x, y), px))
            rows += bytes(round(c * 255) for c in pix)
    return bytes(rows)


# --- containers ------------------------------------------------------------

def png(size: int, rgba: bytes) -> bytes:
    stride = size * 4
    raw = b"".join(b"\x00" + rgba[r * stride:(r + 1) * stride] for r in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


def ico(pngs: dict[int, bytes]) -> bytes:
    sizes = sorted(pngs)
    out = struct.pack("<HHH", 0, 1, len(sizes))
    offset = 6 + 16 * len(sizes)
    body = b""
    for s in sizes:
        data = pngs[s]
        dim = 0 if s >= 256 else s        # 0 means 256 in an ICONDIRENTRY
        out += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(data), offset)
        offset += len(data)
        body += data
    return out + body


def icns(pngs: dict[int, bytes]) -> bytes:
    body = b"".join(kind.encode() + struct.pack(">I", 8 + len(pngs[s])) + pngs[s] for kind, s in ICNS_TYPES)
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def build() -> dict[str, bytes]:
    """File name -> bytes of every generated file."""
    sizes = sorted(set(ICO_SIZES) | {s for _, s in ICNS_TYPES} | set(PNG_SIZES) | {256})
    pngs = {s: png(s, render(s)) for s in sizes}
    files = {"natter.ico": ico({s: pngs[s] for s in ICO_SIZES}), "natter.icns": icns(pngs)}
    for s in PNG_SIZES:
        files[f"natter-{s}.png"] = pngs[s]
    files["natter.png"] = pngs[256]
    return files


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only compare with the files on disk")
    ap.add_argument("--out", default=OUT_DIR, help="folder to write (default %(default)s)")
    a = ap.parse_args(argv)
    files = build()
    stale = []
    for name, data in sorted(files.items()):
        path = os.path.join(a.out, name)
        try:
            with open(path, "rb") as f:
                same = f.read() == data
        except FileNotFoundError:
            same = False
        if same:
            continue
        stale.append(name)
        if not a.check:
            os.makedirs(a.out, exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
    if a.check and stale:
        print(f"stale icon files in {a.out}: {', '.join(stale)}; run python packaging/make_icon.py",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
