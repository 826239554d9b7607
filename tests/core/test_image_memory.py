"""Still images in bounded memory: no full-size float copies, a plan that covers the measured
peak, and free memory that counts a container's limit (cgroup v1 and v2). A model that works in
tiles and bands of rows (ESPCN) is planned by them, for pictures and for video."""

import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest

import srpipe.memory
from srpipe.errors import SrpipeError
from srpipe.frames import PLANE_FORMATS
from srpipe.images import ImageSource
from srpipe.memory import (
    GIB,
    available_memory,
    cgroup_memory_free,
    default_max_pixels,
    fit_batch_size,
    refuse_unless_fits,
    working_bytes,
)
from srpipe.sizing import SizePlan
from srpipe.testing import make_test_video

MIB = 1 << 20


def photo(path, width, height, mode="rgb", bit_depth=8):
    """A picture with a photo's grain: its PNG is about as large as its samples, the most an
    encoded image takes."""
    top = 255 if bit_depth == 8 else 65535
    channels = {"grey": 1, "rgb": 3, "rgba": 4, "rgba-hidden": 4}[mode]
    y, x = np.mgrid[0:height, 0:width]
    ramp = (x + 2 * y)[..., None] * (np.arange(channels) + 1) % top
    grain = np.random.default_rng(1).integers(0, top // 8, (height, width, channels))
    samples = np.clip(ramp + grain, 0, top).astype(np.uint8 if bit_depth == 8 else np.uint16)
    if mode == "rgba-hidden":  # transparent but for a middle band: colour to fill under it (pipeline)
        samples[..., 3] = 0
        samples[height // 3:height * 2 // 3, :, 3] = top
    cv2.imwrite(str(path), samples[..., 0] if channels == 1 else samples)
    return path


def run_measured(*args):
    """``srpipe ARGS`` in a subprocess: (exit code, standard error, its own peak resident memory
    in bytes), measured by the bench's launcher (this test process's memory not counted)."""
    from srpipe.default_plugins.bench.bench import run_whole_process

    with tempfile.TemporaryDirectory() as folder:
        run = run_whole_process([sys.executable, "-m", "srpipe", *map(str, args)], Path(folder))
    return run.code, run.stderr, int(run.peak_mib * MIB)


def loaded(model, scale, images=True, exact=False, video=None):
    """The upscaler ``srpipe upscale -m MODEL -s SCALE --device cpu`` runs (on images: its stand-in there;
    on the H.264 file ``video``: the stand-in for its quantizer; ``exact``: with ``--exact``)."""
    from srpipe.backends import load_upscaler
    from srpipe.memory import MAX_PIXELS_CAP
    from srpipe.plugins import collect_backends, collect_models, get_plugin_manager
    from srpipe.video import mean_quantizer

    pm = get_plugin_manager()
    models = collect_models(pm)
    spec = models.get(model, kind="upscaler")
    if images:
        spec = models.for_images(spec, scale, None)
    if video is not None:
        spec = models.for_quantizer(spec, scale, None, lambda: mean_quantizer(str(video), MAX_PIXELS_CAP))
    return load_upscaler(spec, collect_backends(pm), scale=scale, device="cpu", weights=None, backend="auto",
                         exact=exact)


def working_memory(model, scale, images=True):
    """What the upscaler for ``model`` says it works in (its traits)."""
    from srpipe.models import UpscalerTraits

    return UpscalerTraits.of(loaded(model, scale, images))


def plan(image, model_scale, scale, output, working):
    source = ImageSource(str(image))
    size = (source.width * model_scale, source.height * model_scale)
    if scale != model_scale:
        size = SizePlan(scale).size(source.width, source.height, PLANE_FORMATS["yuv444p16le"])
    return source.memory_needed(model_scale, size, str(output), working)


@pytest.mark.parametrize("mode, bit_depth, model, scale, model_scale, width, within", [
    ("rgb", 8, "bicubic", 4, 4, 1000, 2),
    ("rgba", 16, "bicubic", 3.5, 4, 1000, 2),
    ("rgba-hidden", 8, "bicubic", 2, 2, 1500, 2),
    ("grey", 8, "lanczos", 3, 3, 2000, 2),  # one plane: a larger picture, for the same memory
    ("rgb", 8, "espcn", 3.5, 4, 1000, None),  # a small picture: a whole tile and band are planned
    # 3 MP: the plan was 4x the need when ESPCN's working memory was counted per pixel, untiled
    ("rgb", 8, "espcn", 2, 2, 2000, 2.5),
])
def test_peak_memory_of_an_image_run_is_within_its_plan(tmp_path, mode, bit_depth, model, scale, model_scale, width,
                                                         within):
    """The child's peak, less that of the same command on a tiny picture (the interpreter, the
    libraries and the model), stays within what the plan said before decoding, and the plan is
    not far above it either (``within`` times), where the picture is not small beside a tile."""
    image = photo(tmp_path / "p.png", width, width * 3 // 4, mode, bit_depth)
    tiny = photo(tmp_path / "tiny.png", 40, 30, mode, bit_depth)
    common = ("-m", model, "-s", scale, "-q", "--device", "cpu")
    working = working_memory(model, model_scale)  # also prepares a network for the children, as a user's cache has
    code, stderr, peak = run_measured("upscale", image, "-o", tmp_path / "out.png", *common)
    assert code == 0, stderr
    assert stderr == ""  # no batch talk for one picture
    code, stderr, baseline = run_measured("upscale", tiny, "-o", tmp_path / "tiny_out.png", *common)
    assert code == 0, stderr
    planned = plan(image, model_scale, scale, tmp_path / "out.png", working)
    print(f"peak {(peak - baseline) / MIB:.0f} MiB, plan {planned / MIB:.0f} MiB")
    assert peak - baseline <= planned, f"peak {(peak - baseline) / MIB:.0f} MiB over the plan's {planned / MIB:.0f}"
    if within:
        assert planned <= within * (peak - baseline)


def test_a_tiled_model_plans_a_photo_by_its_tiles_not_its_pixels(tmp_path, monkeypatch):
    """ESPCN upscales a picture in tiles and bands of rows: a 12 MP photo at x2 needs well under
    1 GiB beside its planes (730 MiB measured), so with 4 GiB free it runs; it was refused,
    planned at 6.6 GiB by the untiled network's activations per pixel. A quarter of that
    memory still refuses it."""
    image = tmp_path / "p.png"
    cv2.imwrite(str(image), np.zeros((3000, 4000, 3), np.uint8))
    upscaler = loaded("espcn", 2)
    monkeypatch.setattr(srpipe.memory, "available_memory", lambda: 4 * GIB)
    ImageSource(str(image)).check_memory(upscaler, None, str(tmp_path / "out.png"))
    monkeypatch.setattr(srpipe.memory, "available_memory", lambda: GIB)
    with pytest.raises(SrpipeError, match="a 4000x3000 image upscaled x2 needs about"):
        ImageSource(str(image)).check_memory(upscaler, None, str(tmp_path / "out.png"))


def test_peak_memory_of_a_video_run_through_a_tiled_model_is_within_its_plan(tmp_path):
    """A 640x360 clip at x2 in batches of 8 (the default): what ESPCN's run takes beyond bicubic's
    on the same clip (each peak less that of its run on a tiny clip; the decoder's and encoder's
    memory, which grows with the cores, is the same in both) stays within what the plan counts for
    the model's working memory in that batch, and not far below it: the untiled network's
    activations per pixel, for all 8 frames (ESPCN works on 4 at a time), planned 2.5 times it.
    With --exact: every frame whole, on the backend the figures were measured for (tile reuse
    runs pieces of frames, well within the plan for whole ones)."""
    from srpipe.models import UpscalerTraits

    clip = make_test_video(tmp_path / "clip.mp4", width=640, height=360, frames=24, audio=False)
    tiny = make_test_video(tmp_path / "tiny.mp4", width=64, height=48, frames=24, audio=False)
    need, planned, traits = {}, {}, {}
    for model in ("espcn", "bicubic"):
        # prepares what the children run (the clip's stand-in: espcn-midbitrate), so that they do not convert it
        traits[model] = UpscalerTraits.of(loaded(model, 2, images=False, exact=True, video=clip))
        common = ("-m", model, "-s", 2, "-q", "--device", "cpu", "--batch-size", 8, "--exact")
        code, stderr, peak = run_measured("upscale", clip, "-o", tmp_path / f"{model}.mp4", *common)
        assert code == 0 and "--batch-size" not in stderr, stderr  # run in the batch planned
        code, stderr, baseline = run_measured("upscale", tiny, "-o", tmp_path / f"{model}_tiny.mp4", *common)
        assert code == 0, stderr
        need[model] = peak - baseline
        planned[model] = working_bytes(traits[model], 8, 640, 360, 2)
    model_need, model_plan = need["espcn"] - need["bicubic"], planned["espcn"] - planned["bicubic"]
    print(f"ESPCN beyond bicubic: peak {model_need / MIB:.0f} MiB, plan {model_plan / MIB:.0f} MiB")
    assert model_need <= model_plan, f"peak {model_need / MIB:.0f} MiB over the plan's {model_plan / MIB:.0f}"
    # torch's memory for a tile varies from run to run (1000-1600 bytes a pixel): its plan takes the most;
    # OpenVINO's bfloat16 takes less scratch memory where the CPU has no AMX (half the plan, give or take
    # a few MiB from run to run, on an AMD Zen 4)
    assert model_plan <= (2.5 if traits["espcn"].backend.startswith("openvino") else 3) * model_need


@pytest.mark.filterwarnings("ignore:--batch-size lowered")
def test_a_tiled_model_leaves_the_batch_of_large_frames_where_memory_allows():
    """A 4K frame at x2 through ESPCN takes a tile's and a band's working memory (and ESPCN works
    on 4 frames of a batch at a time), not the untiled network's per pixel for every frame of the
    batch (3.7 GiB a frame, so 4 GiB free refused it): with 4 GiB free it runs, in batches of
    several frames (8 on this 2-core machine took 2.9 GiB beside the interpreter)."""
    upscaler = loaded("espcn", 2, images=False)
    assert fit_batch_size(3840, 2160, 2, 8, 1, upscaler, available=4 * GIB) >= 3


def test_an_image_upscaled_x4_takes_no_float_copies_of_its_output(tmp_path):
    """A float64 copy is 8 bytes a sample, 24 a pixel: the run took 98 bytes a pixel of the output
    (a 12 MP photo at x4 took 14 GiB). What must be held: the 16-bit Y'CbCr planes (6 bytes),
    the 8-bit image OpenCV encodes (3) and its PNG (at most 3)."""
    image = photo(tmp_path / "p.png", 1000, 750)
    tiny = photo(tmp_path / "tiny.png", 40, 30)
    code, stderr, peak = run_measured("upscale", image, "-o", tmp_path / "out.png", "-s", 4, "-q")
    assert code == 0, stderr
    _, _, baseline = run_measured("upscale", tiny, "-o", tmp_path / "tiny_out.png", "-s", 4, "-q")
    assert peak - baseline < 16 * (4000 * 3000) + 32 * MIB  # and a band's float copies


def fake_cgroup(tmp_path, version, group, limits):
    """A /proc/self/cgroup naming ``group`` and a cgroup mount whose folders (relative to the
    mount's memory hierarchy) hold ``limits``: {folder: (limit, usage, reclaimable page cache)}."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    proc = tmp_path / "proc-cgroup"
    proc.write_text(f"0::{group}\n" if version == 2 else f"5:cpu,cpuacct:/\n4:memory:{group}\n0::/\n")
    mount = tmp_path / "cgroup"
    names = srpipe.memory._CGROUP_FILES[version]
    for folder, (limit, usage, cache) in limits.items():
        where = (mount if version == 2 else mount / "memory") / folder
        where.mkdir(parents=True, exist_ok=True)
        (where / names[0]).write_text(f"{limit}\n")
        (where / names[1]).write_text(f"{usage}\n")
        (where / "memory.stat").write_text(f"anon 5\n{names[2]} {cache}\nactive_file 7\n")
    return str(proc), str(mount)


def test_cgroup_v2_limit_is_the_tightest_of_the_group_and_those_above_it(tmp_path):
    proc, mount = fake_cgroup(tmp_path, 2, "/user.slice/app.scope", {
        "": ("max", 9 * GIB, 0),
        "user.slice": (4 * GIB, 3 * GIB, GIB),  # 1 GiB of reclaimable page cache is not in use
        "user.slice/app.scope": ("max", 3 * GIB, GIB),
    })
    assert cgroup_memory_free(proc, mount) == 2 * GIB


def test_cgroup_v1_limit_of_a_container_whose_group_is_the_mount_root(tmp_path):
    """Docker without a cgroup namespace: /proc says /docker/ID, the mount's root is that group."""
    proc, mount = fake_cgroup(tmp_path, 1, "/docker/0123abcd", {"": (GIB, 768 * MIB, 256 * MIB)})
    assert cgroup_memory_free(proc, mount) == 512 * MIB


def test_no_cgroup_limit_means_no_cgroup_figure(tmp_path):
    proc, mount = fake_cgroup(tmp_path, 1, "/", {"": (9223372036854771712, GIB, 0)})  # v1's "no limit"
    assert cgroup_memory_free(proc, mount) is None
    proc, mount = fake_cgroup(tmp_path / "v2", 2, "/", {"": ("max", GIB, 0)})
    assert cgroup_memory_free(proc, mount) is None
    assert cgroup_memory_free(str(tmp_path / "missing"), mount) is None


@pytest.fixture
def container(tmp_path, monkeypatch):
    """This process in a (fake) cgroup v2 container with ``free`` bytes left under its limit."""

    def limit(free):
        proc, mount = fake_cgroup(tmp_path / "fake", 2, "/", {"": (free + GIB, GIB, 0)})
        monkeypatch.setattr(srpipe.memory, "PROC_CGROUP", proc)
        monkeypatch.setattr(srpipe.memory, "CGROUP_MOUNT", mount)

    return limit


def test_free_memory_counts_the_container_limit(container):
    container(300 * MIB)
    assert available_memory() == 300 * MIB


def test_image_too_large_for_the_container_is_refused_before_decoding(tmp_path, cli_run, container):
    """Without the container's limit, MemAvailable (the machine's) let the run start and the
    kernel killed it part way; now it is refused up front, saying what it needs."""
    image = photo(tmp_path / "p.png", 1000, 750)
    container(200 * MIB)
    result = cli_run("upscale", image, "-o", tmp_path / "out.png", "-s", 4)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("Error: ") and "p.png: a 1000x750 image upscaled x4 needs about" in result.stderr
    assert "of the 0.2 GiB free under this container's memory limit" in result.stderr
    assert "smaller --scale" in result.stderr and "raise the limit" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake", "p.png"]
    # at x2 it fits
    result = cli_run("upscale", image, "-o", tmp_path / "out.png", "-s", 2)
    assert result.exit_code == 0, result.stderr
    assert cv2.imread(str(tmp_path / "out.png")).shape == (1500, 2000, 3)


def test_an_image_where_memory_is_short_has_no_batch_size_to_lower(tmp_path, cli_run, monkeypatch, recwarn):
    """An image is one frame: with 1 GiB free it runs, and nothing says --batch-size was lowered."""
    image = photo(tmp_path / "p.png", 1000, 750)
    monkeypatch.setattr(srpipe.memory, "available_memory", lambda: GIB)
    result = cli_run("upscale", image, "-o", tmp_path / "out.png", "-s", 2)
    assert result.exit_code == 0, result.stderr
    assert "--batch-size" not in result.stderr and not [w for w in recwarn if "--batch-size" in str(w.message)]


def test_no_memory_left_is_known_and_refuses(tmp_path):
    """A container at its limit leaves 0 bytes: that is a figure, not 'unknown', and fits nothing."""
    with pytest.raises(SrpipeError, match="needs about"):
        refuse_unless_fits(1, "a 2x2 image upscaled x2", available=0)
    with pytest.raises(SrpipeError, match="needs about"):
        fit_batch_size(64, 48, 2, 8, 1, object(), available=0)
    assert default_max_pixels(available=0) == 1

    not_text = tmp_path / "cgroup"
    not_text.write_bytes(b"0::/\xff\xfe\n")
    assert cgroup_memory_free(str(not_text), str(tmp_path)) is None
