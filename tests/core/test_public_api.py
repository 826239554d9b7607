"""What plugins import from srpipe keeps importing.

- Every srpipe name the README and docs/ show resolves at the place shown: the imports of their
  python blocks and the dotted names in their text (`srpipe.models.ModelSpec`), so a doc that
  names a module or function that is not there fails here.
- The module paths of the earlier layout (srpipe/moved.py; docs/plugins.md, "Moved names")
  still import until srpipe 0.3, each name with a DeprecationWarning naming its new place;
  srpipe's own code and start-up never use them.
- A third-party plugin written against the earlier layout (``from srpipe.nn.espcn import
  ESPCN, ESPCNConfig``) loads through its entry point and runs.
"""

import ast
import importlib
import json
import re
import subprocess
import sys

import pytest

import srpipe
from srpipe.moved import MOVED, REMOVED_IN, MovedModuleFinder
from srpipe.testing import make_test_video

from conftest import REPO, run_srpipe
from plugin_helpers import fake_plugin

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
GUIDE = REPO / "docs" / "plugins.md"
MOVED_SECTION = "## Moved names"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)
DOTTED_NAME = re.compile(r"`@?(srpipe(?:\.[A-Za-z_]\w*)+)(?:\([^`]*\))?`")  # `srpipe.a.b`, `srpipe.a.b(...)`


def section(text: str, heading: str) -> tuple[int, int]:
    """Where the section under ``heading`` starts and ends in ``text`` ((0, 0) if it has none)."""
    start = text.find(f"\n{heading}\n")
    if start < 0:
        return 0, 0
    end = text.find("\n## ", start + 1)
    return start, end if end >= 0 else len(text)


def documented_names() -> list[tuple[str, str]]:
    """(document, dotted name) of every srpipe name the README and docs/ show, but for the old
    paths that docs/plugins.md's "Moved names" lists on purpose."""
    found = set()
    for doc in DOCS:
        text = doc.read_text()
        start, end = section(text, MOVED_SECTION)
        text = text[:start] + text[end:]
        where = str(doc.relative_to(REPO))
        for block in PYTHON_BLOCK.finditer(text):
            for node in ast.walk(ast.parse(block[1])):
                if isinstance(node, ast.ImportFrom) and node.module.split(".")[0] == "srpipe":
                    found.update((where, f"{node.module}.{alias.name}") for alias in node.names)
                elif isinstance(node, ast.Import):
                    found.update((where, alias.name) for alias in node.names if alias.name.split(".")[0] == "srpipe")
                elif isinstance(node, ast.Attribute) and re.fullmatch(r"srpipe(\.\w+)+", ast.unparse(node)):
                    found.add((where, ast.unparse(node)))  # @srpipe.hookimpl after "import srpipe"
        found.update((where, match[1]) for match in DOTTED_NAME.finditer(text))
    return sorted(found)


def resolve(dotted: str):
    """What ``dotted`` names: its longest importable module, then attributes down from it."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:end]))
            break
        except ModuleNotFoundError as exc:
            if exc.name != ".".join(parts[:end]):  # a module that is there lacks a dependency: say so
                raise
    for part in parts[end:]:
        found = getattr(found, part)
    return found


NAMES = documented_names()


def test_the_docs_show_names_of_every_kind():
    """A guard against an extraction that finds nothing."""
    assert len(NAMES) >= 40
    assert {("docs/plugins.md", "srpipe.models.ModelSpec"), ("docs/plugins.md", "srpipe.hookimpl"),
            ("docs/plugins.md", "srpipe.nn.registry.NetworkSpec")} <= set(NAMES)


@pytest.mark.parametrize("where, name", NAMES, ids=[f"{where}:{name}" for where, name in NAMES])
def test_each_documented_name_is_where_the_docs_say(where, name):
    moved = [old for old in MOVED if name == old or name.startswith(f"{old}.")]
    assert not moved, f"{where} shows {name}, at a path that moved ({moved[0]} -> {MOVED[moved[0]][0]})"
    resolve(name)


# The moved paths ---------------------------------------------------------------------------------

# Names plugins and scripts took from the earlier layout (its built-in backends, its scripts/),
# one or more from each old module: (old module, name, new module)
MOVED_NAMES = [
    ("srpipe.nn.espcn", "ESPCN", "srpipe.default_plugins.espcn.network"),
    ("srpipe.nn.espcn", "ESPCNConfig", "srpipe.default_plugins.espcn.network"),
    ("srpipe.nn.espcn", "Convolved", "srpipe.default_plugins.espcn.network"),
    ("srpipe.nn.espcn_config", "ESPCNConfig", "srpipe.default_plugins.espcn.config"),
    ("srpipe.nn.onnx_export", "export_convolved", "srpipe.default_plugins.espcn.onnx_export"),
    ("srpipe.nn.onnx_export", "network_digest", "srpipe.default_plugins.espcn.onnx_export"),
    ("srpipe.nn.classifier_nets", "SmallCNN", "srpipe.default_plugins.classifier.networks"),
    ("srpipe.nn.classifier_nets", "LeNetConfig", "srpipe.default_plugins.classifier.networks"),
    ("srpipe.sr.upscaler", "ESPCNUpscaler", "srpipe.default_plugins.espcn.upscaler"),
    ("srpipe.sr.upscaler", "default_weights", "srpipe.default_plugins.espcn.shipped"),
    ("srpipe.sr.upscaler", "shipped_weights", "srpipe.default_plugins.espcn.shipped"),
    ("srpipe.sr.evaluate", "evaluate_folder", "srpipe.default_plugins.espcn.evaluate"),
    ("srpipe.sr.evaluate", "make_lr", "srpipe.default_plugins.espcn.evaluate"),
    ("srpipe.sr.metrics", "psnr", "srpipe.default_plugins.espcn.metrics"),
    ("srpipe.sr.imresize", "imresize", "srpipe.default_plugins.espcn.imresize"),
    ("srpipe.sr.video_eval", "evaluate_video", "srpipe.default_plugins.espcn.video_eval"),
    ("srpipe.sr.training", "main", "srpipe.default_plugins.espcn.training"),
    ("srpipe.classifier.model", "load_classifier", "srpipe.default_plugins.classifier.model"),
    ("srpipe.classifier.convert", "to_model_input", "srpipe.nn.inputs"),
    ("srpipe.inspect.plotting", "save_figure", "srpipe.plotting"),
    ("srpipe.live.camera", "open_camera", "srpipe.default_plugins.live.camera"),
    ("srpipe.batch", "find_inputs", "srpipe.default_plugins.batch.engine"),
    ("srpipe.chunks", "index_video", "srpipe.default_plugins.batch.chunks"),
    ("srpipe.ray_engine", "worker_layout", "srpipe.default_plugins.batch.ray_engine"),
    ("srpipe.bench", "generated_clip", "srpipe.default_plugins.bench.bench"),
    ("srpipe.cli.upscale", "upscale", "srpipe.default_plugins.upscale"),
    ("srpipe.cli.train_espcn", "train_espcn", "srpipe.default_plugins.espcn.commands"),
    ("srpipe.cli.classify", "classify", "srpipe.default_plugins.classifier.commands"),
    ("srpipe.cli.models", "models", "srpipe.default_plugins.catalog.models"),
    ("srpipe.cli.bench", "DEVICE_CHOICES", "srpipe.device"),
]


def moved_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught if "moved to" in str(w.message)]


def test_espcn_and_its_config_still_import_from_srpipe_nn_espcn():
    """The plugin of the issue: ``from srpipe.nn.espcn import ESPCN, ESPCNConfig``."""
    with pytest.warns(DeprecationWarning) as caught:
        from srpipe.nn.espcn import ESPCN, ESPCNConfig
    from srpipe.default_plugins.espcn.network import ESPCN as new_espcn
    from srpipe.default_plugins.espcn.network import ESPCNConfig as new_config

    assert ESPCN is new_espcn and ESPCNConfig is new_config
    assert moved_warnings(caught) == [
        f"srpipe.nn.espcn.{name} moved to srpipe.default_plugins.espcn.network.{name}; import it from there "
        f"(srpipe.nn.espcn goes in srpipe {REMOVED_IN})" for name in ("ESPCN", "ESPCNConfig")]
    assert {w.filename for w in caught if "moved to" in str(w.message)} == {__file__}  # the importing line


def test_an_imported_old_module_warns_when_a_name_is_used():
    import srpipe.nn.espcn

    with pytest.warns(DeprecationWarning, match=r"srpipe\.nn\.espcn\.Convolved moved to srpipe\.default_plugins"):
        srpipe.nn.espcn.Convolved
    with pytest.raises(ImportError, match="cannot import name 'NoSuchName' from 'srpipe.nn.espcn'"):
        from srpipe.nn.espcn import NoSuchName  # noqa: F401
    with pytest.raises(ModuleNotFoundError):
        import srpipe.nn.no_such_module  # noqa: F401


@pytest.mark.parametrize("old, name, new", MOVED_NAMES, ids=[f"{old}.{name}" for old, name, _ in MOVED_NAMES])
def test_a_moved_name_comes_from_its_new_place_with_a_warning(old, name, new):
    module = importlib.import_module(old)
    with pytest.warns(DeprecationWarning) as caught:
        value = getattr(module, name)
    assert value is getattr(importlib.import_module(new), name)
    assert moved_warnings(caught) == [f"{old}.{name} moved to {new}.{name}; import it from there "
                                      f"({old} goes in srpipe {REMOVED_IN})"]


@pytest.mark.parametrize("old", MOVED)
def test_every_old_path_imports_and_its_new_places_exist(old):
    module = importlib.import_module(old)
    assert isinstance(module.__spec__.loader, MovedModuleFinder)  # a stand-in, never a real module
    for new in MOVED[old]:
        importlib.import_module(new)


def test_an_old_package_reaches_its_old_modules():
    """``srpipe.sr`` was a package: its modules import through it as they did."""
    import srpipe.default_plugins.espcn.upscaler  # noqa: F401  loaded already, as a run of espcn leaves it
    from srpipe.sr import upscaler

    assert upscaler.__name__ == "srpipe.sr.upscaler"
    with pytest.warns(DeprecationWarning, match="srpipe.default_plugins.espcn.upscaler.ESPCNUpscaler"):
        upscaler.ESPCNUpscaler


def guide_moves() -> dict[str, tuple[str, ...]]:
    """old module -> new modules, as docs/plugins.md's "Moved names" table lists them. A row
    ``srpipe.sr.*`` -> ``srpipe.default_plugins.espcn.*`` stands for ``srpipe.sr`` and each
    module under it that no row of its own names."""
    text = GUIDE.read_text()
    start, end = section(text, MOVED_SECTION)
    named, patterns = {}, []
    for line in text[start:end].splitlines():
        if line.startswith("| `srpipe"):
            old_cell, new_cell = line.strip("|").split("|")[:2]
            news = tuple(re.findall(r"`(srpipe[\w.]*\*?)`", new_cell))
            for old in re.findall(r"`(srpipe[\w.]*\*?)`", old_cell):
                if old.endswith(".*"):
                    patterns.append((old[:-2], news[0][:-2]))
                else:
                    named[old] = news
    moves = dict(named)
    for old in MOVED:
        for prefix, new_prefix in patterns:
            if old not in named and (old == prefix or old.startswith(f"{prefix}.")):
                moves[old] = (new_prefix + old[len(prefix):],)
    return moves


def test_the_guide_lists_every_moved_path_where_it_went():
    assert guide_moves() == MOVED
    text = GUIDE.read_text()
    start, end = section(text, MOVED_SECTION)
    assert f"removed in srpipe {REMOVED_IN}" in " ".join(text[start:end].split())


def test_the_old_paths_go_when_their_release_comes():
    """When srpipe's version reaches REMOVED_IN, delete srpipe/moved.py, its install() in
    srpipe/__init__.py, the guide's "Moved names" and these tests."""
    assert tuple(map(int, srpipe.__version__.split(".")[:2])) < tuple(map(int, REMOVED_IN.split(".")))


def old_paths_imported(path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(name for name in names if any(name == old or name.startswith(f"{old}.") for old in MOVED))
    return found


def test_srpipe_itself_never_imports_an_old_path():
    code = [*(REPO / "srpipe").rglob("*.py"), *(REPO / "scripts").rglob("*.py"), *(REPO / "samples").rglob("*.py"),
            *(path for path in (REPO / "tests").rglob("*.py") if path.name != "test_public_api.py")]
    assert len(code) > 100
    used = {str(path.relative_to(REPO)): old_paths_imported(path) for path in code}
    assert {path: names for path, names in used.items() if names} == {}


def test_start_up_makes_no_stand_in():
    """Building the command line and every registry, as each command starts, imports no old path."""
    code = ("import sys\n"
            "from srpipe.cli import build_cli\n"
            "from srpipe.moved import MOVED\n"
            "from srpipe.nn.registry import collect_networks\n"
            "from srpipe.plugins import collect_backends, collect_models, get_plugin_manager\n"
            "build_cli()\n"
            "pm = get_plugin_manager()\n"
            "collect_models(pm), collect_backends(pm), collect_networks(pm)\n"
            "print(sorted(name for name in MOVED if name in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# A third-party plugin written against the earlier layout ------------------------------------------

OLD_STYLE_BACKEND = '''
"""A backend plugin written against the earlier layout: it takes the network's classes from srpipe.nn.espcn."""
from srpipe import hookimpl
from srpipe.backends import Backend, numpy_io
from srpipe.nn.espcn import ESPCN, ESPCNConfig


def prepare(network, device):
    if not (isinstance(network, ESPCN) and isinstance(network.config, ESPCNConfig)):
        raise TypeError(f"not an ESPCN: {type(network)}")
    return numpy_io(network.convolved)


@hookimpl
def register_backends(register):
    register(Backend(name="old-eager", devices=("cpu",), priority=1, is_available=lambda: True, prepare=prepare,
                     description="written against srpipe.nn.espcn"))
'''


@pytest.fixture
def old_style_site(tmp_path):
    return fake_plugin(tmp_path / "site", "srpipe_old_backend", OLD_STYLE_BACKEND)


def test_a_plugin_importing_old_names_runs_through_its_entry_point(old_style_site, tmp_path):
    clip = make_test_video(tmp_path / "clip.mp4", frames=3, audio=False)
    done = run_srpipe("upscale", clip, "-m", "espcn-x2", "--backend", "old-eager", "--device", "cpu",
                      "-o", tmp_path / "out.mp4", "--json", env={"PYTHONPATH": str(old_style_site)})
    assert done.returncode == 0, done.stderr.decode()
    summary = json.loads(done.stdout)
    assert (summary["backend"], summary["scale"], summary["frames"]) == ("old-eager", 2, 3)
    assert b"DeprecationWarning" not in done.stderr  # the plugin's authors see it in their tests, not its users


def test_a_plugin_importing_old_names_warns_its_own_tests(old_style_site, monkeypatch):
    monkeypatch.syspath_prepend(str(old_style_site))
    try:
        with pytest.warns(DeprecationWarning) as caught:
            plugin = importlib.import_module("srpipe_old_backend")
    finally:
        sys.modules.pop("srpipe_old_backend", None)
    assert [message.split(";")[0] for message in moved_warnings(caught)] == [
        "srpipe.nn.espcn.ESPCN moved to srpipe.default_plugins.espcn.network.ESPCN",
        "srpipe.nn.espcn.ESPCNConfig moved to srpipe.default_plugins.espcn.network.ESPCNConfig"]
    assert {w.filename for w in caught if "moved to" in str(w.message)} == {plugin.__file__}


def test_the_guide_promises_through_the_old_paths_only_what_they_keep():
    """It promised every name taken from an old module, and internal helpers removed since
    (split_holdout, DEGRADATIONS, parse_input_size...) raised ImportError."""
    start, end = section(GUIDE.read_text(), MOVED_SECTION)
    text = " ".join(GUIDE.read_text()[start:end].split())
    kept = re.search(r"kept there until 0\.3: (.*?), from the old modules", text)
    assert kept, "the guide no longer says which names the old paths keep"
    table = {old: new for old, new in re.findall(r"^\| `(srpipe[\w.]+)`[^|]*\| `(srpipe[\w.]+)`", GUIDE.read_text(),
                                                  re.MULTILINE)}
    for name in re.findall(r"`(\w+)`", kept[1]):
        olds = [old for old, new in table.items() for module in MOVED[old] if hasattr(importlib.import_module(module),
                                                                                     name)]
        assert olds, f"the guide promises {name}, which no old module gives"
        with pytest.warns(DeprecationWarning, match=f"{re.escape(olds[0])}.{name} moved to"):
            getattr(importlib.import_module(olds[0]), name)
    gone = re.search(r"`from (srpipe[\w.]+) import (\w+)` raises `ImportError`", text)
    assert gone, "the guide no longer gives a removed helper as an example"
    with pytest.raises(ImportError):
        exec(f"from {gone[1]} import {gone[2]}", {})
