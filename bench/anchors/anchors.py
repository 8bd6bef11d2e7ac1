"""The Python side of the standing comparison (bench/anchors/README.md).

A worker driven over stdin by `Samplers.Bench anchors` (and `jpeg-decoders`): each line names a stage, a repeat
count and the stage's arguments, if any; the worker
runs the stage that many times and prints the median and the best time in seconds. Set-up (tables, temp files)
happens once per stage, before the first timed run. It uses numpy (Debian's python3-numpy), and Pillow for the JPEG
and SimCLR stages (python3-pil); it installs nothing.
Stages mirror what the .NET side measures, done the way a numpy user (or TensorFlow Similarity's sampler) does it.
"""
import os
import random
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

STATE = {}
TEMP = tempfile.mkdtemp(prefix="samplers-anchor-")


def setup_tensor():
    x = np.random.default_rng(1).integers(0, 256, size=(256, 224, 224, 3), dtype=np.uint8)
    out = np.empty((256, 3, 224, 224), dtype=np.float32)
    out.fill(0)
    scale = np.float32(1.0 / 255.0)

    def run():
        # uint8 NHWC -> float32 NCHW x (1/255) in one ufunc call into a reused buffer.
        np.multiply(x.transpose(0, 3, 1, 2), scale, out=out, dtype=np.float32, casting="unsafe")
    return run


def big_table():
    # 1 GiB of 224x224x3 uint8 rows, in memory and as a raw file read through np.memmap (in the page cache).
    if "big" not in STATE:
        row = 224 * 224 * 3
        rows = (1 << 30) // row
        table = np.empty((rows, 224, 224, 3), dtype=np.uint8)
        flat = table.reshape(rows, row)
        for i in range(rows):
            flat[i, :] = i & 0xFF
        path = os.path.join(TEMP, "table.u8")
        table.tofile(path)
        mapped = np.memmap(path, dtype=np.uint8, mode="r", shape=table.shape)
        np.sum(mapped[:, 0, 0, 0])  # fault the mapping in once
        with open(path, "rb") as f:  # and read the file, so its pages are cached
            while f.read(1 << 24):
                pass
        STATE["big"] = (table, mapped)
    return STATE["big"]


def setup_gather(which):
    table, mapped = big_table()
    src = table if which == "memory" else mapped
    rng = np.random.default_rng(7)
    sets = [rng.integers(0, table.shape[0], size=256) for _ in range(16)]
    dest = np.empty((256,) + table.shape[1:], dtype=np.uint8)
    dest.fill(0)
    turn = [0]

    def run():
        idx = sets[turn[0] % len(sets)]
        turn[0] += 1
        np.take(src, idx, axis=0, out=dest)
    return run


def mnist(mapped):
    key = "mnist-mapped" if mapped else "mnist"
    if key not in STATE:
        n = 60000
        x = (np.arange(n, dtype=np.int64)[:, None] * np.ones((1, 784), dtype=np.int64) & 0xFF).astype(np.uint8)
        y = (np.arange(n) % 10).astype(np.int64)
        if mapped:
            path = os.path.join(TEMP, "mnist.u8")
            x.tofile(path)
            x = np.memmap(path, dtype=np.uint8, mode="r", shape=(n, 784))
            np.sum(x[:, 0])
        per_class = {c: list(np.flatnonzero(y == c)) for c in range(10)}
        STATE[key] = (x, y, per_class)
    return STATE[key]


def setup_sampler(classes, per_class_count, mapped=False):
    x, y, per_class = mnist(mapped)
    class_list = list(per_class)
    rnd = random.Random(1)

    def run():
        # TensorFlow Similarity's MultiShotMemorySampler.generate_batch, reduced to its numpy core:
        # random.sample of the classes, random.sample of each class's examples, then one fancy-index gather.
        idxs = []
        for c in rnd.sample(class_list, classes):
            idxs.extend(rnd.sample(per_class[c], per_class_count))
        bx = x[idxs]
        by = y[idxs]
        return bx, by
    return run


def photo(w, h, seed):
    # A 500x375-style RGB photo stand-in: two gradients and fine noise (the .NET side uses a similar one).
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.empty((h, w, 3), dtype=np.uint8)
    img[..., 0] = (xx * 255 // max(1, w - 1)).astype(np.uint8)
    img[..., 1] = (yy * 255 // max(1, h - 1)).astype(np.uint8)
    img[..., 2] = rng.integers(0, 256, size=(h, w), dtype=np.uint8)
    return img


def setup_simclr():
    # A SimCLR view as a PIL user writes it (torchvision's RandomResizedCrop, RandomHorizontalFlip, ColorJitter(0.8, 0.8,
    # 0.8, 0.2) with p 0.8 in random order, RandomGrayscale(0.2), then ToTensor's float32 / 255), on one core.
    import math
    from PIL import Image, ImageEnhance
    src = Image.fromarray(photo(500, 375, 3), "RGB")
    rnd = random.Random(1)
    log_lo, log_hi = math.log(3 / 4), math.log(4 / 3)

    def hue(img, delta):
        h, s, v = img.convert("HSV").split()
        shifted = (np.asarray(h, dtype=np.uint8).astype(np.int16) + int(delta * 255)) % 256
        return Image.merge("HSV", (Image.fromarray(shifted.astype(np.uint8), "L"), s, v)).convert("RGB")

    def run():
        w0, h0 = src.size
        box = (0, 0, w0, h0)
        for _ in range(10):
            area = w0 * h0 * rnd.uniform(0.08, 1.0)
            ratio = math.exp(rnd.uniform(log_lo, log_hi))
            w = int(round(math.sqrt(area * ratio)))
            h = int(round(math.sqrt(area / ratio)))
            if 0 < w <= w0 and 0 < h <= h0:
                top, left = rnd.randint(0, h0 - h), rnd.randint(0, w0 - w)
                box = (left, top, left + w, top + h)
                break
        view = src.resize((224, 224), Image.BICUBIC, box=box)
        if rnd.random() < 0.5:
            view = view.transpose(Image.FLIP_LEFT_RIGHT)
        if rnd.random() < 0.8:
            order = [0, 1, 2, 3]
            rnd.shuffle(order)
            for op in order:
                if op == 0:
                    view = ImageEnhance.Brightness(view).enhance(rnd.uniform(0.2, 1.8))
                elif op == 1:
                    view = ImageEnhance.Contrast(view).enhance(rnd.uniform(0.2, 1.8))
                elif op == 2:
                    view = ImageEnhance.Color(view).enhance(rnd.uniform(0.2, 1.8))
                else:
                    view = hue(view, rnd.uniform(-0.2, 0.2))
        if rnd.random() < 0.2:
            view = view.convert("L").convert("RGB")
        return np.asarray(view, dtype=np.float32) * np.float32(1 / 255)
    return run


def setup_jpeg(path, scale, as_array="0", dump=None):
    # PIL (Pillow over the system's libjpeg-turbo): open, draft for DCT scaling (PIL picks the largest of 1/1, 1/2,
    # 1/4, 1/8 that keeps the image at least the asked size), decode; as_array adds numpy's copy out of PIL's image.
    from PIL import Image  # only here: the other stages need numpy alone
    import io
    with open(path, "rb") as f:
        data = f.read()
    scale = int(scale)

    def run():
        im = Image.open(io.BytesIO(data))
        if scale > 1:
            im.draft("RGB", ((im.size[0] + scale - 1) // scale, (im.size[1] + scale - 1) // scale))
        im.load()
        if as_array == "1" or dump:
            a = np.asarray(im)
            if dump:
                with open(dump, "wb") as f:
                    f.write(a.tobytes())
            return a
        return im
    return run


STAGES = {
    "simclr-view": setup_simclr,
    "jpeg": setup_jpeg,
    "tensor-copy": setup_tensor,
    "gather-memory": lambda: setup_gather("memory"),
    "gather-mapped": lambda: setup_gather("mapped"),
    "mnist-10x2": lambda: setup_sampler(10, 2),
    "mnist-10x32": lambda: setup_sampler(10, 32),
    "mnist-10x128": lambda: setup_sampler(10, 128),
    "mnist-mapped-10x2": lambda: setup_sampler(10, 2, mapped=True),
}


def main():
    runs = {}
    try:
        for line in sys.stdin:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "quit":
                break
            stage, reps, extra = parts[0], int(parts[1]), parts[2:]
            key = " ".join([stage] + extra)
            if key not in runs:
                runs[key] = STAGES[stage](*extra)
                runs[key]()  # once untimed: first-touch of the output buffers
            run = runs[key]
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                run()
                times.append(time.perf_counter() - t0)
            print(f"{statistics.median(times):.9f} {min(times):.9f}", flush=True)
    finally:
        shutil.rmtree(TEMP, ignore_errors=True)


if __name__ == "__main__":
    main()
