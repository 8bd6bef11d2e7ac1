#!/bin/sh
# Regenerates the image fixtures and their reference decodes (see README.md). Not run by CI: the files are committed.
# Needs libjpeg-turbo-progs (cjpeg, djpeg, jpegtran), ImageMagick 6 (convert), netpbm (pnmtopng) and python3.
set -eu
cd "$(dirname "$0")"
CONVERT=${CONVERT:-convert}
# Source: 16x12 RGB, smooth gradients plus one hard edge (so JPEG blocks carry real AC coefficients).
python3 - <<'PY'
w, h = 16, 12
px = bytearray()
for y in range(h):
    for x in range(w):
        edge = 80 if (x >= 8 and y >= 6) else 0
        px += bytes(((x * 15 + edge) % 256, (y * 20 + 10) % 256, (255 - x * 8 - y * 6 + edge) % 256))
open("source.ppm", "wb").write(b"P6\n16 12\n255\n" + bytes(px))
# 16-bit RGB samples (big-endian) whose low bytes differ from their high bytes: the 16-bit PNG's content and reference.
raw = bytearray()
for y in range(h):
    for x in range(w):
        for v in (x * 4099 + y * 31, 65535 - y * 5003 - x * 7, (x * y * 977 + 12345) % 65536):
            raw += v.to_bytes(2, "big")
open("rgb16.ref.ppm", "wb").write(b"P6\n16 12\n65535\n" + bytes(raw))
PY
# JPEG: baseline RGB, greyscale, progressive (lossless transcode of the baseline), Adobe CMYK from ImageMagick.
cjpeg -quality 90 -outfile rgb.jpg source.ppm
djpeg -pnm -outfile rgb.ref.ppm rgb.jpg
djpeg -grayscale -pnm -outfile rgb.ref-y.pgm rgb.jpg
# The same with TensorFlow's IDCT (JDCT_IFAST), the exact reference for the libturbojpeg path.
djpeg -dct fast -pnm -outfile rgb.ref-fast.ppm rgb.jpg
djpeg -dct fast -grayscale -pnm -outfile rgb.ref-fast-y.pgm rgb.jpg
djpeg -dct fast -pnm -outfile grey.ref-fast.pgm grey.jpg
cjpeg -grayscale -quality 90 -outfile grey.jpg source.ppm
djpeg -pnm -outfile grey.ref.pgm grey.jpg
jpegtran -progressive -outfile progressive.jpg rgb.jpg
djpeg -pnm -outfile progressive.ref.ppm progressive.jpg
djpeg -dct fast -pnm -outfile progressive.ref-fast.ppm progressive.jpg
"$CONVERT" source.ppm -colorspace CMYK -quality 90 cmyk.jpg
"$CONVERT" cmyk.jpg -colorspace sRGB cmyk.ref.ppm
# PNG: RGBA (alpha = horizontal ramp), grey+alpha (colour type 4), 16-bit RGB (colour type 2, depth 16).
"$CONVERT" source.ppm \( -size 12x16 gradient:white-black -rotate 90 \) -alpha off -compose CopyOpacity -composite PNG32:rgba.png
"$CONVERT" rgba.png -depth 8 RGBA:rgba.ref.rgba
"$CONVERT" source.ppm -colorspace Gray \( -size 12x16 gradient:white-black -rotate 90 \) -alpha off -compose CopyOpacity -composite \
    -define png:color-type=4 -define png:bit-depth=8 grey-alpha.png
"$CONVERT" grey-alpha.png -depth 8 RGBA:grey-alpha.ref.rgba
# ImageMagick 6.9 altered 16-bit samples on the way to PNG here, so netpbm's pnmtopng writes this one (no time chunks).
pnmtopng rgb16.ref.ppm > rgb16.png
