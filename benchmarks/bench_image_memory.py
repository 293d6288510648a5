# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Peak memory of reading a photo for reconstruction, per image size and format.

    python benchmarks/bench_image_memory.py [--sizes 4000x3000,8000x6000,12000x12000] [--formats png,jpg]
                                            [--keep DIR]

For each photo (generated: a smooth gradient with noise, so the encoders do
real work) a fresh Python process reads it and runs the image-side steps of a
reconstruction (`preprocess.load_photo`, the detector canvas, the landmark crop
and the 224 x 224 alignment around a face-sized box in the middle); the
process's peak resident memory (VmHWM, Linux) is printed next to its baseline
(the same process after its imports, before reading) and next to a plain full
decode (Pillow open + convert("RGB") + numpy array, how photos were read
before large ones were decoded reduced), measured the same way in the same run.
Target: peak <= 1 GB for any input image.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {tools!r})  # tools/, for checkout_addon
from checkout_addon import import_checkout
import numpy as np
from PIL import Image
import_checkout()
from nv3dmm_face_tools.tddfa_v3 import preprocess as P
from nv3dmm_face_tools.tddfa_v3.assets import five_point_template
mode, path = sys.argv[1], sys.argv[2]
def rss_mb():
    # VmHWM: this process's peak since exec (ru_maxrss would include the parent's at fork).
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
base = rss_mb()
start = time.perf_counter()
if mode == "full":
    Image.MAX_IMAGE_PIXELS = None
    with Image.open(path) as im:
        image = np.array(im.convert("RGB"), dtype=np.uint8)
else:
    image = P.load_photo(path)
    height, width = image.shape[:2]
    canvas, pads = P.detector_canvas(image)
    side = min(width, height) / 4
    box = np.array([width / 2 - side / 2, height / 2 - side / 2, width / 2 + side / 2, height / 2 + side / 2])
    P.landmark_crop(image, box)
    template = np.array([[-0.31, 0.29, 0.9], [0.31, 0.29, 0.9], [0.0, 0.0, 1.2], [-0.25, -0.33, 0.9],
                         [0.25, -0.33, 0.9]])
    points = np.array([[box[0] + side * 0.3, side * 0.35 + box[1]], [box[0] + side * 0.7, side * 0.35 + box[1]],
                       [box[0] + side * 0.5, side * 0.55 + box[1]], [box[0] + side * 0.35, side * 0.75 + box[1]],
                       [box[0] + side * 0.65, side * 0.75 + box[1]]], dtype=np.float32)
    flipped = points.copy()
    flipped[:, 1] = height - 1 - flipped[:, 1]
    P.align_photo(image, flipped, template)
print(json.dumps({{"base": base, "peak": rss_mb(), "seconds": time.perf_counter() - start,
                   "shape": list(image.shape)}}))
"""


def make_photo(path: Path, width: int, height: int) -> None:
    import numpy as np
    from PIL import Image

    rows = []
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 24, (256, width, 3), dtype=np.uint8)
    for top in range(0, height, 256):
        count = min(256, height - top)
        y = np.arange(top, top + count, dtype=np.float32)[:, None]
        x = np.arange(width, dtype=np.float32)[None, :]
        red = (x * 200.0 / width + 20).astype(np.uint8)
        green = np.broadcast_to((y * 200.0 / height + 20).astype(np.uint8), (count, width))
        blue = np.full((count, width), 120, np.uint8)
        rows.append(np.dstack([np.broadcast_to(red, (count, width)), green, blue]) + noise[:count])
    image = Image.fromarray(np.concatenate(rows))
    rows.clear()
    image.save(path, **({"quality": 85} if path.suffix == ".jpg" else {"compress_level": 1}))


def measure(mode: str, path: Path) -> dict[str, float]:
    code = _CHILD.format(tools=str(REPO_ROOT / "tools"))
    done = subprocess.run([sys.executable, "-c", code, mode, str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        lines = (done.stderr.strip() or done.stdout.strip() or "?").splitlines()
        return {"error": lines[-1]}  # type: ignore[dict-item]
    parsed: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return parsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4000x3000,8000x6000,12000x12000")
    parser.add_argument("--formats", default="png,jpg")
    parser.add_argument("--keep", metavar="DIR", help="write the photos here (else a temporary folder)")
    args = parser.parse_args()
    sizes = [tuple(int(v) for v in item.lower().split("x")) for item in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(args.keep) if args.keep else Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        print(f"{'photo':<22s} {'read as':>13s} {'base MB':>8s} {'peak MB':>8s} {'photo MB':>9s} "
              f"{'full decode peak MB':>20s} {'ratio':>6s} {'s':>6s}")
        for width, height in sizes:
            for fmt in args.formats.split(","):
                path = folder / f"photo_{width}x{height}.{fmt}"
                if not path.exists():
                    make_photo(path, width, height)
                ours = measure("ours", path)
                full = measure("full", path)
                label = f"{width}x{height} {fmt.upper()}"
                if "error" in ours:
                    print(f"{label:<22s} refused: {ours['error']}")
                    continue
                shape = ours["shape"]
                read_as = f"{shape[1]}x{shape[0]}"  # type: ignore[index]
                full_peak = full.get("peak")
                ratio = f"{ours['peak'] / full_peak:.2f}" if isinstance(full_peak, float) else "-"
                full_text = f"{full_peak:.0f}" if isinstance(full_peak, float) else str(full.get("error"))[:20]
                print(f"{label:<22s} {read_as:>13s} {ours['base']:8.0f} {ours['peak']:8.0f} "
                      f"{ours['peak'] - ours['base']:9.0f} {full_text:>20s} {ratio:>6s} {ours['seconds']:6.2f}")
    print("target: peak <= 1024 MB for any photo (photo MB = peak - base: what the photo itself costs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
