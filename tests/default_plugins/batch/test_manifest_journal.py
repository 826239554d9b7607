"""The batch manifest: one journal line per finished file however large the tree, exact resume
after a kill at any moment, old manifests still read, links in its place not followed and other
special files refused; only outputs the batch really wrote count as its own."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from srpipe.default_plugins.batch import engine
from srpipe.default_plugins.batch.engine import (
    JOURNAL,
    MANIFEST,
    BatchSettings,
    Job,
    Manifest,
    note_writing,
    run_batch,
)
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


def test_links_in_the_manifests_place_are_neither_read_nor_written_through(tmp_path):
    """A link named like the manifest or the journal is not read (its target could claim a
    user's file as the batch's own), and the fold replaces the link, never its target."""
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    out.mkdir()
    make_test_image(inputs / "a.jpg")
    (out / "a.png").write_bytes(b"the user's own")
    claims = tmp_path / "claims.json"
    claims.write_text('{"files": {}, "outputs": ["a.png"]}')
    journal = tmp_path / "journal"
    journal.write_text('{"output": "a.png"}\n')
    (out / MANIFEST).symlink_to(claims)
    (out / JOURNAL).symlink_to(journal)

    done = run_srpipe("batch", inputs, out, "--json")
    assert json.loads(done.stdout)["files"][0]["status"] == "exists", done.stderr.decode()
    assert (out / "a.png").read_bytes() == b"the user's own"
    assert claims.read_text() == '{"files": {}, "outputs": ["a.png"]}'
    assert journal.read_text() == '{"output": "a.png"}\n'
    assert not (out / MANIFEST).is_symlink() and not os.path.lexists(out / JOURNAL)
    assert not Manifest(out).wrote("a.png")


def make_fifo(path):
    os.mkfifo(path)


@pytest.mark.parametrize("name", [MANIFEST, JOURNAL])
@pytest.mark.parametrize("kind, make", [("FIFO", make_fifo), ("folder", os.mkdir)])
def test_a_special_file_in_the_manifests_place_is_refused_up_front(tmp_path, name, kind, make):
    """Reading or writing a FIFO there would wait forever, a folder cannot be replaced: one
    line naming it, before any file is upscaled."""
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    out.mkdir()
    make_test_image(inputs / "a.jpg")
    make(out / name)
    done = subprocess.run([sys.executable, "-m", "srpipe", "batch", inputs, out], capture_output=True, timeout=60)
    stderr = done.stderr.decode()
    assert done.returncode == 1 and stderr.startswith("Error: ") and stderr.count("\n") == 1, stderr
    assert f"{out / name} is a {kind}" in stderr and "remove it" in stderr
    assert os.listdir(out) == [name]


def test_a_claim_is_withdrawn_when_its_output_is_not_written(tmp_path):
    """A user's file put at an output while the batch runs (the batch claimed it, then found it
    there and failed that file): the next run leaves it alone."""
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    make_test_image(inputs / "a.jpg")
    make_test_image(inputs / "b.jpg")

    def users_file_appears(job):
        if job.rel.name == "b.jpg":
            (out / "b.png").write_bytes(b"MINE")

    report = run_batch(inputs, out, on_start=users_file_appears)
    assert [(f.input, f.status) for f in report.files] == [("a.jpg", "done"), ("b.jpg", "failed")]
    assert "already exists" in report.files[1].error

    report = run_batch(inputs, out)
    assert [(f.input, f.status) for f in report.files] == [("a.jpg", "skipped"), ("b.jpg", "exists")]
    assert (out / "b.png").read_bytes() == b"MINE"


def test_a_claim_is_withdrawn_when_its_job_never_ran(tmp_path):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    make_test_image(inputs / "a.jpg")
    make_test_image(inputs / "b.jpg")

    def users_file_appears_then_ctrl_c(job):
        (out / "b.png").write_bytes(b"MINE")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(inputs, out, on_start=users_file_appears_then_ctrl_c)

    report = run_batch(inputs, out)
    assert {f.input: f.status for f in report.files} == {"a.jpg": "done", "b.jpg": "exists"}
    assert (out / "b.png").read_bytes() == b"MINE"


def test_a_withdrawn_claim_stays_withdrawn_after_a_kill(tmp_path):
    """Journal replay: the claim and its withdrawal, with no fold in between."""
    (tmp_path / "ours.png").write_bytes(b"ours")
    manifest = Manifest(tmp_path)
    manifest.claim(["ours.png"])
    manifest.record(Path("ours.jpg"), STAMP, tmp_path / "ours.png", "ours.png", KEY, 1)
    manifest.close()
    manifest = Manifest(tmp_path)
    manifest.claim(["ours.png", "theirs.png"])
    (tmp_path / "theirs.png").write_bytes(b"the user's, found there")
    manifest.release(["ours.png", "theirs.png"])  # both failed: only this run's claim is withdrawn
    # killed here: the journal is replayed by the next run
    again = Manifest(tmp_path)
    assert again.wrote("ours.png") and not again.wrote("theirs.png")


def test_an_output_a_worker_began_stays_the_batchs_when_its_result_never_came(tmp_path):
    """Ctrl-C or a kill of the batch after a worker began an output (and perhaps put it in place)
    but before its result reached the batch: the worker's journal line keeps the output the
    batch's, so the next run redoes it without -y; a claim no worker began is withdrawn."""
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    manifest = Manifest(out)
    manifest.claim(["sub/written.png", "never.png"])
    (out / "sub" / "written.png").write_bytes(b"the worker's output")
    note_writing(Job(Path("sub/written.jpg"), tmp_path / "written.jpg", out / "sub" / "written.png",
                     "sub/written.png", BatchSettings()))
    (out / "never.png").write_bytes(b"a user's file that appeared")
    manifest.close()  # the batch ends with neither result recorded

    again = Manifest(out)
    assert again.wrote("sub/written.png") and not again.wrote("never.png")


@pytest.mark.parametrize("damage", ["{not json", "[" * 100_000])  # the second: deeper than json.loads goes
def test_a_damaged_manifest_is_read_as_none(tmp_path, damage):
    (tmp_path / MANIFEST).write_text(damage)
    manifest = Manifest(tmp_path)
    assert manifest.entries == {} and manifest.outputs == set()
