"""scripts/make_eval_set.py: the clips it builds (every kind of motion, rendered screens, real
video, night noise) from small generated sources, read as `srpipe eval --video` reads them;
the test and val splits kept apart; the sources checked; a rebuild gives the same set."""

import hashlib
import importlib.util
import io
import sys
import tarfile
import zipfile

import av
import numpy as np
import pytest
from PIL import Image

from srpipe.default_plugins.espcn.video_eval import clips_by_category, luma_frames
from srpipe.testing import make_test_video

from conftest import REPO

spec = importlib.util.spec_from_file_location("make_eval_set", REPO / "scripts" / "make_eval_set.py")
evalset = sys.modules["make_eval_set"] = importlib.util.module_from_spec(spec)  # dataclasses look it up
spec.loader.exec_module(evalset)
Clip, Source = evalset.Clip, evalset.Source
FRAMES = 4


def make_deb(path, members):
    """A Debian package as dpkg-deb writes one: an ar archive whose data.tar.xz holds ``members``."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    with open(path, "wb") as deb:
        deb.write(b"!<arch>\n")
        for name, content in (("debian-binary", b"2.0\n"), ("control.tar.xz", b"x"), ("data.tar.xz", data.getvalue())):
            deb.write(f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(content):<10}`\n".encode())
            deb.write(content + b"\n" * (len(content) % 2))


@pytest.fixture
def sources(tmp_path):
    """A folder of sources as a user has it: an RGB photo and a grey texture inside a wheel, line
    art with transparency unpacked at its path in the package, a real clip inside a .deb; and
    their table."""
    folder = tmp_path / "sources"
    (folder / "pkg" / "data").mkdir(parents=True)
    rng = np.random.default_rng(0)
    files = {}
    for name, mode, size in (("photo.png", "RGB", (96, 72)), ("texture.png", "L", (80, 64)),
                             ("art.png", "RGBA", (72, 60))):
        pixels = rng.integers(0, 256, (size[1], size[0], len(mode)), dtype=np.uint8)
        png = io.BytesIO()
        Image.fromarray(pixels.squeeze(), mode).save(png, format="png")
        files[name] = png.getvalue()
    make_test_video(tmp_path / "clip.mp4", width=96, height=64, frames=8, audio=False)
    files["clip.mp4"] = (tmp_path / "clip.mp4").read_bytes()
    with zipfile.ZipFile(folder / "pkg-1.0-py3-none-any.whl", "w") as wheel:
        for name in ("photo.png", "texture.png"):
            wheel.writestr(f"pkg/data/{name}", files[name])
    (folder / "pkg" / "data" / "art.png").write_bytes(files["art.png"])
    make_deb(folder / "pkg_1.0_all.deb", {"pkg/data/clip.mp4": files["clip.mp4"]})
    table = {name.split(".")[0]: Source(f"pkg/data/{name}", "pkg 1.0", "CC0", f"{name}'s author",
                                        hashlib.sha256(data).hexdigest()) for name, data in files.items()}
    table.update({key: evalset.SOURCES[key] for key in ("terminal", "page", "editor", "cartoon-hills",
                                                        "cartoon-street")})
    return folder, table


CLIPS = [
    Clip("test", "faces", "photo-pan", "photo", "pan", (48, 32), {"start": (4, 4), "velocity": (0.6, -0.3)}),
    Clip("test", "faces", "photo-zoom", "photo", "zoom", (40, 32), {"centre": (48, 36), "scales": (1, 0.8)}),
    Clip("test", "textures", "texture-fixed", "texture", "fixed", (48, 40), {"start": (8, 8)}),
    Clip("test", "night", "texture-night", "texture", "pan", (32, 24), {"start": (2, 2), "velocity": (1.5, 0.5)},
         night=(100, 0.2)),
    Clip("test", "camera", "clip", "clip", "video", (44, 28), {"first": 2, "shrink": 2}),
    Clip("test", "text", "terminal", "terminal", "render", (96, 64)),
    Clip("test", "text", "page", "page", "render", (64, 48)),
    Clip("test", "animation", "cartoon", "cartoon-hills", "render", (64, 48)),
    Clip("val", "animation", "art-pan", "art", "pan", (48, 40), {"start": (10, 8), "velocity": (-1.0, 0.5)}),
    Clip("val", "text", "editor", "editor", "render", (64, 48)),
    Clip("val", "animation", "street", "cartoon-street", "render", (64, 48)),
]


def build(folder, table, out):
    evalset.build(out, evalset.source_reader(folder, table), CLIPS, table, frames=FRAMES, log=lambda _: None)


def test_every_clip_is_built_where_eval_finds_it_with_its_frames_and_size(sources, tmp_path):
    folder, table = sources
    out = tmp_path / "set"
    build(folder, table, out)
    for split in ("test", "val"):
        found = clips_by_category(out / split)
        ours = [c for c in CLIPS if c.split == split]
        expected = {c.category: sorted(out / d.path for d in ours if d.category == c.category) for c in ours}
        assert found == expected
    for clip in CLIPS:
        with av.open(str(out / clip.path)) as container:
            frames = [frame for frame in container.decode(video=0)]
        assert len(frames) == FRAMES, clip.name
        assert {(f.width, f.height) for f in frames} == {clip.size}, clip.name
        lumas = [f.to_ndarray(format="gray") for f in frames]
        assert all(luma.std() > 1 for luma in lumas), f"{clip.name}: a flat frame"
        if clip.motion != "fixed":  # everything else moves from the first frame to the last
            assert np.abs(lumas[0].astype(int) - lumas[-1]).mean() > 1, clip.name
    notes = (out / "ATTRIBUTION.md").read_text()
    assert all(f"| {key} |" in notes for key in {c.source for c in CLIPS})
    assert "art.png's author" in notes and "CC0" in notes and "synthetic" in notes
    assert not list(tmp_path.glob(".set.*"))  # no staging folder left


def test_the_splits_share_no_source_in_the_real_table_and_a_table_that_mixes_them_is_refused():
    evalset.check_clips(evalset.CLIPS)
    for split in ("test", "val"):
        assert {c.category for c in evalset.CLIPS if c.split == split} == set(evalset.CATEGORIES)
    assert all(evalset.SOURCES[c.source].licence for c in evalset.CLIPS)
    leaking = [*CLIPS, Clip("val", "faces", "photo-again", "photo", "pan", (16, 16),
                            {"start": (0, 0), "velocity": (1, 1)})]
    with pytest.raises(evalset.BuildError, match="photo are in both test and val"):
        evalset.check_clips(leaking, {**evalset.SOURCES, "photo": evalset.SOURCES["astronaut"],
                                      "texture": evalset.SOURCES["grass"], "art": evalset.SOURCES["horse"],
                                      "clip": evalset.SOURCES["bikes"]})


def test_a_rebuild_gives_the_same_clips_in_place_of_the_old(sources, tmp_path):
    folder, table = sources
    out = tmp_path / "set"
    build(folder, table, out)
    first = {c.name: [luma.tobytes() for luma in luma_frames(out / c.path)] for c in CLIPS}
    (out / "test" / "extra").mkdir()  # replaced whole: nothing of the old set stays
    build(folder, table, out)
    assert {c.name: [luma.tobytes() for luma in luma_frames(out / c.path)] for c in CLIPS} == first
    assert not (out / "test" / "extra").exists()


def test_a_folder_it_did_not_make_is_left_alone(sources, tmp_path):
    folder, table = sources
    out = tmp_path / "mine"
    out.mkdir()
    (out / "holiday.mp4").write_bytes(b"keep me")
    with pytest.raises(evalset.BuildError, match="not an evaluation set made by this script"):
        build(folder, table, out)
    assert (out / "holiday.mp4").read_bytes() == b"keep me"


def test_a_changed_or_missing_source_is_named(sources, tmp_path):
    folder, table = sources
    (folder / "pkg" / "data" / "art.png").write_bytes(b"not the picture")
    with pytest.raises(evalset.BuildError, match=r"pkg/data/art.png in .* is not the file this set was made from"):
        build(folder, table, tmp_path / "set")
    (folder / "pkg" / "data" / "art.png").unlink()
    with pytest.raises(evalset.BuildError, match=r"pkg/data/art.png \(pkg 1.0\) is not in .*--download"):
        build(folder, table, tmp_path / "set")
    assert not (tmp_path / "set").exists()


def test_the_command_line_reports_a_missing_sources_folder_in_one_line(tmp_path, capsys):
    assert evalset.main(["--sources", str(tmp_path / "nowhere"), "--out", str(tmp_path / "set")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("Error: --sources") and "--download" in err


def test_a_view_that_leaves_its_source_is_refused(sources, tmp_path):
    folder, table = sources
    panning_off = Clip("test", "faces", "off", "photo", "pan", (48, 32), {"start": (46, 4), "velocity": (1, 0)})
    with pytest.raises(evalset.BuildError, match="off.mp4: the view leaves its 96x72 source"):
        evalset.build(tmp_path / "set", evalset.source_reader(folder, table), [panning_off], table, frames=FRAMES)
    magnifying = Clip("test", "faces", "in", "photo", "zoom", (40, 32), {"centre": (48, 36), "scales": (1.2, 1)})
    with pytest.raises(evalset.BuildError, match="in.mp4: a zoom scale over 1 would invent detail"):
        evalset.build(tmp_path / "set", evalset.source_reader(folder, table), [magnifying], table, frames=FRAMES)
    assert not (tmp_path / "set").exists()


@pytest.mark.parametrize("archive", ["pkg-1.0-py3-none-any.whl", "pkg_1.0_all.deb"])
def test_a_damaged_package_is_named_in_one_line(sources, archive):
    folder, table = sources
    whole = (folder / archive).read_bytes()
    (folder / archive).write_bytes(whole[:len(whole) // 2])
    with pytest.raises(evalset.BuildError, match=f"{archive} cannot be read .*; remove it or download it again"):
        evalset.source_reader(folder, table)
