"""Every command the README and docs/ show: those that use bundled files (samples/, docs/comparison.png)
or no file at all run, as written, in a scratch folder holding copies of those files (the clip
shortened to its first 6 frames, so that the lot takes well under a minute); the others, which
name the reader's own files, must at least parse: their commands and options exist and their
values are valid."""

import re
import shlex
import shutil
import subprocess
import sys
from fractions import Fraction

import av
import click
import pytest

from conftest import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BUNDLED = ("samples/", "docs/comparison.png")
# Commands that need no file: listings, help, versions, a network's layer table.
FILE_FREE = re.compile(r"srpipe( models( list| backends)?| plugins| inspect [\w-]+| live --list-cameras)?( --json)?"
                       r"|srpipe( [\w-]+)* --help|srpipe --version")
SHELL_OPERATORS = ("|", ">", ">>", "<", "&&", "||", ";")
SAMPLE_FRAMES = 6


def documented_commands():
    """(where, words) of every ``srpipe`` line in a fenced bash block of the README and docs/."""
    found = []
    for doc in DOCS:
        block = None
        for number, line in enumerate(doc.read_text().splitlines(), 1):
            if line.startswith("```"):
                block = None if block is not None else line[3:].strip()
                continue
            if block in ("bash", "sh") and line.strip().startswith("srpipe "):
                words = shlex.split(line, comments=True)
                piped = next((i for i, word in enumerate(words) if word in SHELL_OPERATORS), None)
                found.append((f"{doc.relative_to(REPO)}:{number}", words[:piped], piped is not None))
    return found


def runnable(words, piped):
    text = " ".join(words)
    return not piped and (any(word.startswith(BUNDLED) for word in words) or FILE_FREE.fullmatch(text) is not None)


COMMANDS = documented_commands()
RUN = [(where, words) for where, words, piped in COMMANDS if runnable(words, piped)]
PARSE = [(where, words) for where, words, piped in COMMANDS if not runnable(words, piped)]


def test_the_docs_show_commands_of_both_kinds():
    assert len(RUN) >= 20 and len(PARSE) >= 20  # a guard against the extraction finding nothing
    readme = [words for where, words in RUN if where.startswith("README.md")]
    assert ["srpipe", "upscale", "samples/bigbuckbunny.mp4"] in readme


def shortened_sample(target):
    """The bundled clip's first frames, re-encoded (x264, same size and rate) with the audio
    of the same span copied: a cut of the original packets would leave holes in its timestamps."""
    with av.open(str(REPO / "samples" / "bigbuckbunny.mp4")) as source, av.open(str(target), "w") as out:
        video = source.streams.video[0]
        audio = source.streams.audio[0] if source.streams.audio else None
        stream = out.add_stream("libx264", rate=video.average_rate)
        stream.width, stream.height, stream.pix_fmt = video.width, video.height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "20"}
        copied = out.add_stream_from_template(audio) if audio is not None else None
        end = None
        for index, frame in enumerate(source.decode(video=0)):
            if index == SAMPLE_FRAMES:
                end = frame.pts * Fraction(video.time_base)
                break
            frame.pict_type = 0
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        if copied is not None:
            source.seek(0)
            for packet in source.demux(audio):
                if packet.dts is None or packet.pts * Fraction(packet.time_base) >= end:
                    continue
                packet.stream = copied
                out.mux(packet)


@pytest.fixture(scope="module")
def bundled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bundled")
    (folder / "samples").mkdir()
    (folder / "docs").mkdir()
    shortened_sample(folder / "samples" / "bigbuckbunny.mp4")
    shutil.copy(REPO / "docs" / "comparison.png", folder / "docs" / "comparison.png")
    return folder


@pytest.mark.parametrize("where, words", RUN, ids=[where for where, _ in RUN])
def test_documented_command_runs(where, words, bundled, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(bundled, work)
    done = subprocess.run([sys.executable, "-m", "srpipe", *words[1:]], cwd=work, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=300)
    assert done.returncode == 0, f"{where}: {' '.join(words)}\n{done.stderr}"


def parse(words):
    """Parse a command line as srpipe would, down to its last subcommand, without running it."""
    from srpipe.cli import build_cli

    command = build_cli()
    context = command.make_context("srpipe", list(words[1:]))
    while isinstance(command, click.Group):
        rest = [*getattr(context, "_protected_args", []), *context.args]
        name, command, rest = command.resolve_command(context, rest)
        context = command.make_context(name, rest, parent=context)
    return context


@pytest.mark.parametrize("where, words", PARSE, ids=[where for where, _ in PARSE])
def test_documented_command_parses(where, words):
    try:
        parse(words)
    except click.ClickException as exc:
        pytest.fail(f"{where}: {' '.join(words)}: {exc.format_message()}")


def anchors(doc):
    """The ``#anchor``s a page has: its headings as GitHub names them, and explicit ``<a id>``s."""
    text = re.sub(r"^```.*?^```", "", doc.read_text(), flags=re.S | re.M)  # a shell comment is no heading
    found, seen = set(), {}
    for heading in re.findall(r"^#+\s+(.+)$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return found | set(re.findall(r'<a id="([^"]+)"', text))


def test_links_to_a_place_in_a_page_land():
    broken = []
    for doc in DOCS:
        for page, anchor in re.findall(r"\]\(([^)\s#]*)#([^)\s]+)\)", doc.read_text()):
            target = doc.parent / page if page else doc
            if not target.is_file() or anchor not in anchors(target):
                broken.append(f"{doc.relative_to(REPO)}: {page}#{anchor}")
    assert not broken, "\n".join(broken)


def test_the_readme_in_order_batches_only_the_bundled_files():
    """Run top to bottom, no upscale writes beside its input (no -o) into a folder that a later
    batch reads: that batch would upscale those outputs again."""
    readme = [words for where, words in RUN if where.startswith("README.md")]
    for at, words in enumerate(readme):
        if words[1] == "upscale" and "-o" not in words:
            folder = words[2].rpartition("/")[0] + "/"
            later = [w for w in readme[at:] if w[1] == "batch" and folder.startswith(w[2].rstrip("/") + "/")]
            assert not later, f"{' '.join(words)} writes into {folder}, which {' '.join(later[0])} reads later"
