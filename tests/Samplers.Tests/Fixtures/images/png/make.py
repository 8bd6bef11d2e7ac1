#!/usr/bin/env python3
"""Writes the 8-bit-or-less PNG fixtures (our test cases the other fixtures miss) and Pillow's decode of each.

The PNG files are written by the small writer below (python's zlib; the filter of every row, the bit depth, tRNS and
Adam7 chosen per file), the references by Pillow (an independent decoder: libz + its own unfilter/unpack/expand).
Run with a python3 that has Pillow (Debian: apt-get install python3-pil; /usr/bin/python3 make.py). Not run by CI.
Each reference is NAME.MODE: Pillow's `Image.open(NAME.png).convert(MODE).tobytes()` (MODE L, LA, RGB or RGBA).
"""
import struct, zlib
from PIL import Image

W, H = 13, 11  # odd sizes: partial bytes at row ends for 1/2/4 bits, every Adam7 pass non-empty but uneven
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def pack_row(samples, depth):
    if depth == 8:
        return bytes(samples)
    out = bytearray((len(samples) * depth + 7) // 8)
    for i, v in enumerate(samples):
        bit = i * depth
        out[bit >> 3] |= v << (8 - depth - (bit & 7))
    return bytes(out)


def filter_rows(rows, bpp, first_filter):
    out, prev = bytearray(), None
    for r, row in enumerate(rows):
        f = (first_filter + r) % 5
        prev = prev or bytes(len(row))
        line = bytearray()
        for i, x in enumerate(row):
            a = row[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            pred = [0, a, b, (a + b) >> 1, paeth(a, b, c)][f]
            line.append((x - pred) & 0xFF)
        out += bytes([f]) + line
        prev = row
    return bytes(out)


def write(name, pixels, colour_type, depth, spp, plte=None, trns=None, interlace=False, first_filter=0):
    """pixels: H rows of W pixels, each a tuple of spp samples (palette: the index)."""
    bpp = max(1, spp * depth // 8)
    raw = b""
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for n, (x0, y0, dx, dy) in enumerate(passes):
        xs, ys = range(x0, W, dx), range(y0, H, dy)
        if not xs or not ys:
            continue
        rows = [pack_row([s for x in xs for s in pixels[y][x]], depth) for y in ys]
        raw += filter_rows(rows, bpp, first_filter + n)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, depth, colour_type, 0, 0, 1 if interlace else 0))
    if plte is not None:
        png += chunk(b"PLTE", bytes(v for rgb in plte for v in rgb))
    if trns is not None:
        png += chunk(b"tRNS", trns)
    z = zlib.compress(raw, 9)
    # Two IDAT chunks, so the decoder's chunk-spanning zlib input is exercised too.
    png += chunk(b"IDAT", z[: len(z) // 2]) + chunk(b"IDAT", z[len(z) // 2 :]) + chunk(b"IEND", b"")
    open(name + ".png", "wb").write(png)


def refs(name, modes, scale_key=None):
    im = Image.open(name + ".png")
    if scale_key:
        # Pillow compares a 1/2/4-bit grey key with the samples after scaling them to 8 bits but leaves the key
        # unscaled; libpng scales both (png_do_expand), so hand Pillow the scaled key.
        im.info["transparency"] *= scale_key
    for mode in modes:
        open(f"{name}.{mode}", "wb").write(im.convert(mode).tobytes())


def grey(depth, seed):
    m = (1 << depth) - 1
    return [[(((x * 7 + y * 13 + seed) * 2654435761 >> 7) & m,) for x in range(W)] for y in range(H)]


for depth in (1, 2, 4):
    write(f"grey{depth}", grey(depth, depth), 0, depth, 1, first_filter=depth)
    refs(f"grey{depth}", ["L", "RGB"])
    write(f"grey{depth}-adam7", grey(depth, depth + 5), 0, depth, 1, interlace=True)
    refs(f"grey{depth}-adam7", ["L", "RGB"])

# Grey and RGB with a tRNS colour key (libpng's png_set_tRNS_to_alpha: alpha 0 where the sample equals the key).
g = grey(8, 3)
write("grey8-trns", g, 0, 8, 1, trns=struct.pack(">H", g[0][0][0]))
refs("grey8-trns", ["L", "LA", "RGB", "RGBA"])
g2 = grey(2, 9)
write("grey2-trns-adam7", g2, 0, 2, 1, trns=struct.pack(">H", 1), interlace=True)
refs("grey2-trns-adam7", ["L", "LA", "RGBA"], scale_key=85)
rgb = [[((x * 19) & 255, (y * 23) & 255, ((x ^ y) * 11) & 255) for x in range(W)] for y in range(H)]
rgb[4][5] = rgb[7][2] = rgb[0][0]
write("rgb8-trns", rgb, 2, 8, 3, trns=struct.pack(">HHH", *rgb[0][0]), first_filter=2)
refs("rgb8-trns", ["RGB", "RGBA"])
write("rgb8-adam7", rgb, 2, 8, 3, interlace=True)
refs("rgb8-adam7", ["RGB", "RGBA"])

# Palettes: 2, 4 and 8 bits, with a tRNS shorter than the palette (later entries opaque), one interlaced.
for depth in (2, 4, 8):
    n = 1 << depth
    plte = [((i * 37) & 255, (i * 91 + 7) & 255, (255 - i * 13) & 255) for i in range(n)]
    trns = bytes((i * 50) & 255 for i in range(n // 2 + 1))
    idx = [[(((x * 5 + y * 3) * 2654435761 >> 9) % n,) for x in range(W)] for y in range(H)]
    write(f"palette{depth}-trns", idx, 3, depth, 1, plte=plte, trns=trns, interlace=(depth == 4), first_filter=depth)
    refs(f"palette{depth}-trns", ["RGB", "RGBA"])
