"""The cache folder is not trusted input: links in it are never written through or read, folders
and files that others could have written are not used, cached entry points are loaded only as
the installed distributions declare them, and cached networks only as srpipe recorded them."""

import json
import os
import shutil
import stat

import cv2
import numpy as np
import pytest

from srpipe import cache
from srpipe.cache import CacheWarning
from srpipe.images import image_paths

from conftest import run_srpipe
from plugin_helpers import fake_plugin

USER_DATA = b"the user's own file\n"


def plugins_listed(cache_dir, site=None, env=None):
    """``srpipe plugins --json`` with this cache folder: (rows by name, standard error)."""
    env = {"SRPIPE_CACHE_DIR": str(cache_dir), **({"PYTHONPATH": str(site)} if site else {}), **(env or {})}
    done = run_srpipe("plugins", "--json", env=env)
    assert done.returncode == 0, done.stderr.decode()
    return {row["name"]: row for row in json.loads(done.stdout)}, done.stderr.decode()


def user_file(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(USER_DATA)
    return path


# --- links, owners and modes ---------------------------------------------------------------------

@pytest.mark.parametrize("where", ["file", "folder"])
def test_a_link_in_the_cache_never_has_its_target_written(tmp_path, where):
    kept = tmp_path / "cache" / "plugins" / "entry-points.json"
    if where == "file":
        target = user_file(tmp_path / "notes.txt")
        kept.parent.mkdir(parents=True)
        kept.symlink_to(target)
    else:  # the plugins folder itself, pointing at a folder of the user's with a file of that name
        target = user_file(tmp_path / "mine" / "entry-points.json")
        (tmp_path / "cache").mkdir()
        (tmp_path / "cache" / "plugins").symlink_to(target.parent)
    _, stderr = plugins_listed(tmp_path / "cache")
    assert target.read_bytes() == USER_DATA
    assert "is a link; srpipe does not use it as a cache" in stderr
    if where == "file":  # the link itself is replaced by the cache file
        assert stat.S_ISREG(kept.lstat().st_mode) and stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert len(stderr.splitlines()) == 1


@pytest.mark.parametrize("loose", ["root", "plugins"])
def test_a_cache_folder_others_can_write_to_is_not_used(tmp_path, loose):
    root = tmp_path / "cache"
    (root / "plugins").mkdir(parents=True)
    (root if loose == "root" else root / "plugins").chmod(0o777)
    _, stderr = plugins_listed(root)
    assert not (root / "plugins" / "entry-points.json").exists()  # nothing written there
    assert stderr.count("Warning: ") == 1 and "can be written by other users (mode 777" in stderr


def test_a_cache_root_given_as_a_link_is_used_where_it_leads(tmp_path):
    """$SRPIPE_CACHE_DIR (or ~/.cache/srpipe) may be a link, to a larger disk: the user's own
    choice; only what lies inside the cache is checked."""
    (tmp_path / "disk").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "disk")
    _, stderr = plugins_listed(tmp_path / "link")
    assert stderr == ""
    assert (tmp_path / "disk" / "plugins" / "entry-points.json").is_file()


def test_a_refused_folder_is_named_once_a_run(tmp_path):
    """An image run looks in several cache folders (entry points, network card, OpenVINO):
    one warning about the root, not one per look."""
    root = tmp_path / "cache"
    root.mkdir()
    root.chmod(0o775)
    image = tmp_path / "in.png"
    cv2.imwrite(str(image), np.zeros((16, 16, 3), np.uint8))
    done = run_srpipe("upscale", image, "-m", "espcn", "-o", tmp_path / "out.png",
                      env={"SRPIPE_CACHE_DIR": str(root)})
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr.decode().count("can be written by other users") == 1


def test_a_cache_file_others_can_write_to_is_not_read_and_is_replaced(tmp_path):
    root = tmp_path / "cache"
    plugins_listed(root)
    kept = root / "plugins" / "entry-points.json"
    kept.chmod(0o666)
    _, stderr = plugins_listed(root)
    assert f"{kept} can be written by other users" in stderr
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600  # written again, as this user's own


@pytest.mark.skipif(os.getuid() != 0, reason="making files of another user's needs root")
@pytest.mark.parametrize("foreign", ["root", "file"])
def test_a_cache_of_another_users_is_not_used(tmp_path, foreign):
    root = tmp_path / "cache"
    plugins_listed(root)
    kept = root / "plugins" / "entry-points.json"
    os.chown(root if foreign == "root" else kept, 65534, 65534)
    before = kept.stat()
    _, stderr = plugins_listed(root)
    assert "belongs to another user" in stderr
    if foreign == "root":
        assert kept.stat().st_ino == before.st_ino  # not written again
    else:
        assert kept.stat().st_uid == 0


def test_a_fifo_in_the_cache_is_refused_without_waiting(tmp_path):
    kept = tmp_path / "cache" / "plugins" / "entry-points.json"
    kept.parent.mkdir(parents=True)
    os.mkfifo(kept)
    _, stderr = plugins_listed(tmp_path / "cache")
    assert "is not a regular file" in stderr and stat.S_ISREG(kept.stat().st_mode)


def training_images(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "a.png"), (np.random.default_rng(0).random((24, 32, 3)) * 255).astype(np.uint8))
    return images


def test_training_caches_take_the_same_checks(tmp_path):
    from srpipe.default_plugins.espcn.data import cached_pairs

    images = training_images(tmp_path)
    folder = tmp_path / "training"
    want = cached_pairs(image_paths(images), 2, (1.0,), folder)
    [kept] = folder.glob("*.npz")
    kept.unlink()
    target = user_file(tmp_path / "notes.txt")
    kept.symlink_to(target)
    with pytest.warns(CacheWarning, match="is a link"):
        got = cached_pairs(image_paths(images), 2, (1.0,), folder)
    assert target.read_bytes() == USER_DATA and stat.S_ISREG(kept.lstat().st_mode)
    assert all(np.array_equal(a, b) for pair, again in zip(want, got) for a, b in zip(pair, again))

    kept.unlink()
    folder.chmod(0o777)  # a training --cache-dir others can write to: neither read nor written
    with pytest.warns(CacheWarning, match="can be written by other users"):
        cached_pairs(image_paths(images), 2, (1.0,), folder)
    assert list(folder.iterdir()) == []


def test_a_damaged_training_cache_is_made_again(tmp_path):
    from srpipe.default_plugins.espcn.data import cached_pairs

    images = training_images(tmp_path)
    want = cached_pairs(image_paths(images), 2, (1.0,), tmp_path / "training")
    [kept] = (tmp_path / "training").glob("*.npz")
    kept.write_bytes(kept.read_bytes()[:100])
    got = cached_pairs(image_paths(images), 2, (1.0,), tmp_path / "training")
    assert all(np.array_equal(a, b) for pair, again in zip(want, got) for a, b in zip(pair, again))


# --- entry points ------------------------------------------------------------------------------

def _poisoned(kept, row):
    """The cache file with ``row`` added to the entry points of each setup it keeps."""
    setups = json.loads(kept.read_text())
    for entry in setups.values():
        entry["entry_points"].append(row)
    kept.write_text(json.dumps(setups))


@pytest.mark.parametrize("poison", ["as in the issue", "in a real metadata folder", "in a folder off sys.path",
                                    "in a shadowed folder", "as another value", "with another version"])
def test_a_poisoned_entry_point_cache_loads_nothing_it_adds(tmp_path, poison):
    site = fake_plugin(tmp_path / "site", "first", "")
    first = str(site / "first-1.0.dist-info")
    elsewhere = tmp_path / "elsewhere" / "evil-6.6.6.dist-info"
    elsewhere.mkdir(parents=True)
    (elsewhere / "entry_points.txt").write_text("[srpipe]\nevil = this\n")
    (elsewhere / "METADATA").write_text("Metadata-Version: 2.1\nName: evil\nVersion: 6.6.6\n")
    shadowed = tmp_path / "later" / "first-0.9.dist-info"  # on sys.path, after the first of its name
    shadowed.mkdir(parents=True)
    (shadowed / "entry_points.txt").write_text("[srpipe]\nevil = this\n")
    (shadowed / "METADATA").write_text("Metadata-Version: 2.1\nName: first\nVersion: 0.9\n")
    path = os.pathsep.join([str(site), str(tmp_path / "later")])
    row = {"as in the issue": ["evil", "this", "6.6.6"],
           "in a real metadata folder": ["evil", "this", "6.6.6", first],
           "in a folder off sys.path": ["evil", "this", "6.6.6", str(elsewhere)],
           "in a shadowed folder": ["evil", "this", "0.9", str(shadowed)],
           "as another value": ["first", "this", "1.0", first],
           "with another version": ["first", "first", "6.6.6", first]}[poison]

    root = tmp_path / "cache"
    plugins_listed(root, path)
    kept = root / "plugins" / "entry-points.json"
    _poisoned(kept, row)  # the stamp is the true one: only the entry points lie
    done = run_srpipe("plugins", "--json", env={"SRPIPE_CACHE_DIR": str(root), "PYTHONPATH": path})
    assert done.returncode == 0 and b"Zen of Python" not in done.stdout  # ``this`` prints it when imported
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert "evil" not in rows and rows["first"]["version"] == "1.0"
    assert row not in next(iter(json.loads(kept.read_text()).values()))["entry_points"]  # written again


HELLO_PLUGIN = """
import click
from srpipe import hookimpl


@hookimpl
def register_commands(cli):
    @cli.command("hbhello")
    def hbhello():
        click.echo("hello from hbplug")
"""


@pytest.mark.parametrize("tamper", ["left out", "moved", "one left out of two"])
def test_a_tampered_entry_point_cache_takes_no_plugin_away(tmp_path, tamper):
    """The cache's entry points emptied, its stamp the true one, left an installed plugin
    unloaded: its command was unknown. Nor may the cache change which of two entry points of
    one name loads, by their order. Any disagreement means a scan, which gives them all."""
    site = fake_plugin(tmp_path / "site", "hbplug", HELLO_PLUGIN)
    fake_plugin(site, "other", "")
    (site / "other-1.0.dist-info" / "entry_points.txt").write_text("[srpipe]\nhbplug = other\n")
    root = tmp_path / "cache"
    env = {"SRPIPE_CACHE_DIR": str(root), "PYTHONPATH": str(site)}
    scanned = run_srpipe("hbhello", env=env)  # the scan, and the cache file it writes
    assert scanned.returncode == 0 and scanned.stdout == b"hello from hbplug\n", scanned.stderr.decode()
    assert b"has the name of a plugin already loaded" in scanned.stderr  # other's, found second
    kept = root / "plugins" / "entry-points.json"
    setups = json.loads(kept.read_text())
    for entry in setups.values():
        entry["entry_points"] = {"left out": [], "moved": entry["entry_points"][::-1],
                                 "one left out of two": entry["entry_points"][1:]}[tamper]
    kept.write_text(json.dumps(setups))
    done = run_srpipe("hbhello", env=env)
    assert (done.returncode, done.stdout, done.stderr) == (0, scanned.stdout, scanned.stderr), done.stderr.decode()
    assert json.loads(kept.read_text()) != setups  # written again from the scan


# --- cached networks -----------------------------------------------------------------------------

def test_cached_networks_not_as_recorded_are_converted_again(tmp_path, monkeypatch):
    """A network (or its card) that is not what srpipe wrote under its key, as another network
    of the same shapes, or the x3 one and its card under the x2 key (with their records too: those
    matched their bytes, and the x3 network ran as the x2), is converted again."""
    from srpipe.default_plugins.espcn.openvino_backend import OPENVINO
    from srpipe.default_plugins.espcn.shipped import shipped_weights
    from srpipe.default_plugins.espcn.upscaler import ESPCNUpscaler

    monkeypatch.setenv("SRPIPE_CACHE_DIR", str(tmp_path / "cache"))
    luma = (np.random.default_rng(0).random((1, 40, 50)) * 255).astype(np.uint8)

    def run(weights):
        upscaler = ESPCNUpscaler(weights, backend=OPENVINO)
        return upscaler, upscaler.upscale(luma, bit_depth=8, full_range=False)

    x2, x2_video, x3 = shipped_weights(2), shipped_weights(2, "video"), shipped_weights(3)
    _, want = run(x2)
    for weights in (x2_video, x3):
        run(weights)

    def cached(weights, folder):
        return sorted((tmp_path / "cache" / folder).glob(f"{cache.file_digest(weights)}-*"))

    # another network of the same shapes; the x3 one and its card; and the x3 one with its records
    for source, folders in ((x2_video, ["openvino"]), (x3, ["openvino", "networks"]),
                            (x3, ["openvino", "networks", "records/openvino", "records/networks"])):
        for folder in folders:
            for theirs, ours in zip(cached(source, folder), cached(x2, folder), strict=True):
                shutil.copyfile(theirs, ours)
        with pytest.warns(CacheWarning, match="did not match srpipe's record of it; it is made again"):
            upscaler, got = run(x2)
        assert upscaler.network is not None and upscaler.scale == 2 and np.array_equal(got, want)
        upscaler, got = run(x2)
        assert upscaler.network is None and np.array_equal(got, want)  # the cache is whole again


def test_cached_network_files_that_are_links_are_not_followed(tmp_path, monkeypatch):
    from srpipe.default_plugins.espcn.openvino_backend import OPENVINO
    from srpipe.default_plugins.espcn.shipped import shipped_weights
    from srpipe.default_plugins.espcn.upscaler import ESPCNUpscaler

    monkeypatch.setenv("SRPIPE_CACHE_DIR", str(tmp_path / "cache"))
    luma = (np.random.default_rng(0).random((1, 40, 50)) * 255).astype(np.uint8)
    want = ESPCNUpscaler(shipped_weights(2), backend=OPENVINO).upscale(luma, bit_depth=8, full_range=False)
    kept = [*(tmp_path / "cache" / "networks").iterdir(), *(tmp_path / "cache" / "openvino").iterdir()]
    assert len(kept) == 3  # the card, the graph and its weights
    targets = []
    for i, path in enumerate(kept):
        targets.append(user_file(tmp_path / f"notes{i}.txt"))
        path.unlink()
        path.symlink_to(targets[-1])
    with pytest.warns(CacheWarning, match="is a link"):
        upscaler = ESPCNUpscaler(shipped_weights(2), backend=OPENVINO)
    assert np.array_equal(upscaler.upscale(luma, bit_depth=8, full_range=False), want)
    assert all(target.read_bytes() == USER_DATA for target in targets)
    assert all(stat.S_ISREG(path.lstat().st_mode) for path in kept)


def test_a_swapped_network_on_the_command_line_is_one_warning_and_a_good_run(tmp_path, cli_run, monkeypatch):
    """The issue's case: the x3 network and card under the x2 key made every later
    ``-m espcn -s 2`` fail; now that run converts again, says so once, and succeeds."""
    from srpipe.default_plugins.espcn.shipped import default_weights
    from srpipe.testing import make_test_video

    clip = make_test_video(tmp_path / "in.mp4", frames=2)
    env = {"SRPIPE_CACHE_DIR": str(tmp_path / "cache")}
    # --exact: the video weights at x2 too (default_weights), not the fast network
    args = ("-m", "espcn", "--backend", "openvino", "--exact", "-q", "--overwrite")

    def upscale(scale):
        return run_srpipe("upscale", clip, "-s", scale, *args, "-o", tmp_path / f"out{scale}.mp4", env=env)

    with monkeypatch.context() as patch:  # the cache filled in this process; the runs on it below are processes
        patch.setenv("SRPIPE_CACHE_DIR", env["SRPIPE_CACHE_DIR"])
        for scale in (2, 3):
            assert cli_run("upscale", clip, "-s", scale, *args, "-o", tmp_path / f"out{scale}.mp4").exit_code == 0
    for folder in ("openvino", "networks"):
        theirs, ours = ([*(tmp_path / "cache" / folder).glob(f"{cache.file_digest(default_weights(s))}-*")]
                        for s in (3, 2))
        for source, destination in zip(sorted(theirs), sorted(ours), strict=True):
            shutil.copyfile(source, destination)
    done = upscale(2)
    assert done.returncode == 0, done.stderr.decode()
    [line] = done.stderr.decode().splitlines()
    assert line.startswith("Warning: the cached network card for checkpoint ") and "made again" in line
    assert upscale(2).stderr == b""


def test_a_cached_onnx_export_not_as_recorded_is_exported_again(tmp_path, monkeypatch):
    from srpipe.default_plugins.espcn.network import ESPCN, ESPCNConfig
    from srpipe.default_plugins.espcn.onnxruntime_backend import ONNXRUNTIME
    from srpipe.default_plugins.espcn.upscaler import ESPCNUpscaler
    from srpipe.nn.checkpoint import make_checkpoint

    monkeypatch.setenv("SRPIPE_CACHE_DIR", str(tmp_path / "cache"))
    config = ESPCNConfig(scale=2, features=(8,), kernels=(3, 3), activation="prelu")
    ours, theirs = (make_checkpoint(ESPCN(config)) for _ in range(2))  # the same shapes, other weights
    x = np.random.default_rng(0).random((1, 1, 20, 30), dtype=np.float32)
    want = ESPCNUpscaler(ours, backend=ONNXRUNTIME).run_tiled(x)
    [kept] = (tmp_path / "cache" / "onnx").iterdir()
    kept.rename(tmp_path / "ours.onnx")
    ESPCNUpscaler(theirs, backend=ONNXRUNTIME)
    [other] = (tmp_path / "cache" / "onnx").iterdir()
    other.rename(kept)  # their export under our name
    with pytest.warns(CacheWarning, match="ONNX export of network .* did not match"):
        got = ESPCNUpscaler(ours, backend=ONNXRUNTIME).run_tiled(x)
    assert np.array_equal(got, want)
    assert kept.read_bytes() == (tmp_path / "ours.onnx").read_bytes()
