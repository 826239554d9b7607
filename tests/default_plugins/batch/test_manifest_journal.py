"""The batch manifest: one journal line per finished file however large the tree, exact resume
after a kill at any moment, old manifests still read, links and FIFOs in its place not followed."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from srpipe.default_plugins.batch import engine
from srpipe.default_plugins.batch.engine import JOURNAL, MANIFEST, BatchSettings, Manifest
from srpipe.testing import make_test_image

from conftest import run_srpipe

KEY = BatchSettings().key()
STAMP = {"size": 1234, "mtime_ns": 1_700_000_000_000_000_000}


def record(manifest, out, i):
    name = f"dir/file{i:05d}.png"  # names of one length: every journal line has the same size
    manifest.record(Path(name), STAMP, out / "o.png", name, KEY, 1)


def count_rewrites(monkeypatch):
    """The full rewrites of the manifest's JSON, counted."""
    rewrites = []
    real = engine.write_atomically

    def counting(path, data):
        rewrites.append(len(data))
        real(path, data)

    monkeypatch.setattr(engine, "write_atomically", counting)
    return rewrites


def test_each_file_costs_one_journal_line_at_any_size(tmp_path, monkeypatch):
    rewrites = count_rewrites(monkeypatch)
    (tmp_path / "o.png").write_bytes(b"x" * 100)
    manifest = Manifest(tmp_path)
    journal = tmp_path / JOURNAL
    record(manifest, tmp_path, 0)
    assert rewrites == []  # not the whole manifest per file
    line = journal.stat().st_size
    sizes = []
    for i in range(1, 20_000):
        record(manifest, tmp_path, i)
        if (i + 1) % 2_000 == 0:
            sizes.append(journal.stat().st_size)
    # bytes written per record: the same for the 20,000th file as for the 1st
    assert [b - a for a, b in zip([line, *sizes], sizes)][1:] == [2_000 * line] * 9
    assert sizes[-1] == 20_000 * line and rewrites == []
    manifest.close()  # the end of a batch: one rewrite, no journal left
    assert len(rewrites) == 1 and not journal.exists()
    again = Manifest(tmp_path)
    assert len(again.entries) == 20_000 and again.entries["dir/file19999.png"]["output"] == "dir/file19999.png"
    assert len(rewrites) == 1  # nothing to fold


KILLED_RUN = """
import os, signal, sys
from pathlib import Path
from srpipe.default_plugins.batch.engine import BatchSettings, Manifest

out = Path(sys.argv[1])
manifest = Manifest(out)
manifest.claim(["a.png", "b.png", "c.png"])
for name in ("a.png", "b.png"):
    (out / name).write_bytes(b"upscaled " + name.encode())
    manifest.record(Path(name), {"size": 1, "mtime_ns": 2}, out / name, name, BatchSettings().key(), 1)
(out / "c.png").write_bytes(b"written, then killed before it was recorded")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_kill_at_any_moment_resumes_exactly(tmp_path):
    done = subprocess.run([sys.executable, "-c", KILLED_RUN, str(tmp_path)], capture_output=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    journal = tmp_path / JOURNAL
    with open(journal, "ab") as file:  # killed while appending the next line
        file.write(b'{"done": "d.png", "entry": {"inp')
    kept = journal.read_bytes()

    manifest = Manifest(tmp_path)  # the torn line is ignored; the journal is folded in
    assert sorted(manifest.entries) == ["a.png", "b.png"]
    assert manifest.wrote("c.png")  # its own output: redone without -y, not left alone as someone else's
    assert not journal.exists() and json.loads((tmp_path / MANIFEST).read_text())["outputs"] == \
        ["a.png", "b.png", "c.png"]

    journal.write_bytes(kept)  # killed after the fold wrote the JSON, before it removed the journal
    manifest = Manifest(tmp_path)
    assert sorted(manifest.entries) == ["a.png", "b.png"] and manifest.wrote("c.png")
    (tmp_path / "o.png").write_bytes(b"x")
    record(manifest, tmp_path, 7)  # appending goes on after the torn line
    (tmp_path / "c.png").unlink()
    manifest.close()
    manifest = Manifest(tmp_path)
    assert sorted(manifest.entries) == ["a.png", "b.png", "dir/file00007.png"]
    assert not manifest.wrote("c.png")  # gone: a file that appears there later is not the batch's


def test_a_killed_batch_replaces_its_own_unrecorded_output(tmp_path):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    out.mkdir()
    make_test_image(inputs / "a.jpg")
    (out / "a.png").write_bytes(b"renamed into place, then the batch was killed")
    (out / JOURNAL).write_text('{"output": "a.png"}\n')  # what the killed batch had claimed
    done = run_srpipe("batch", inputs, out, "--json")
    assert json.loads(done.stdout)["files"][0]["status"] == "done", done.stderr.decode()
    assert sorted(os.listdir(out)) == [MANIFEST, "a.png"]


def test_old_manifests_are_read(tmp_path):
    """A manifest of earlier versions: the JSON alone, no "outputs", no journal."""
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    make_test_image(inputs / "a.jpg")
    make_test_image(inputs / "b.jpg")
    assert run_srpipe("batch", inputs, out, "-q").returncode == 0
    data = json.loads((out / MANIFEST).read_text())
    old = {"format": "srpipe-batch/1", "files": data["files"]}
    (out / MANIFEST).write_text(json.dumps(old, indent=1))
    os.utime(inputs / "b.jpg", ns=(1, 1))
    done = run_srpipe("batch", inputs, out, "--json", "-q")
    report = json.loads(done.stdout)
    assert {f["input"]: f["status"] for f in report["files"]} == {"a.jpg": "skipped", "b.jpg": "done"}


def test_links_and_fifos_in_the_manifests_place_are_not_followed(tmp_path):
    (tmp_path / "o.png").write_bytes(b"x")
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text('{"files": {}}')
    out = tmp_path / "out"
    out.mkdir()
    (out / MANIFEST).symlink_to(elsewhere)
    os.mkfifo(out / JOURNAL)  # reading it would wait for a writer forever
    manifest = Manifest(out)
    record(manifest, tmp_path, 1)
    manifest.close()
    assert elsewhere.read_text() == '{"files": {}}'
    assert not (out / MANIFEST).is_symlink() and list(Manifest(out).entries) == ["dir/file00001.png"]
