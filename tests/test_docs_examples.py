# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every example the README and docs/*.md tell a user to run is run here, as
written, so no example can rot (issue 10 item 13).

A fenced code block is marked on the line just before its fence:

    <!-- runnable -->                          run it
    <!-- runnable: needs face_model2.nvf extension -->
                                               run it once these are in place
    <!-- not runnable: REASON -->              never run; REASON says why (e.g. it
                                               needs the real 3DDFA-V3 weights)

Every ```python / ```sh block must carry one of the markers (blocks without a
language, such as command synopses and sample output, are not examples).

Blocks run in one workspace per test session: a copy of the checkout's files
(tracked and untracked, not ignored: what a clone holds), with `.venv` linked
to this Python's environment, and a Blender user folder of its own
(BLENDER_USER_RESOURCES), so nothing outside the workspace changes. `python`
blocks run with the workspace's `.venv/bin/python` reading the block from
stdin in the workspace (as from a script run in the repository root); `sh`
blocks run with bash (-e -u -o pipefail) in the workspace, `.venv/bin` first
on PATH. Blocks of one document run in document order and share the
workspace, so a block may use what an earlier one made.

Needs:
- face_model2.nvf: NVIDIA's model from NVF_SAMPLES, copied into the workspace
  (the block skips, saying why, when NVF_SAMPLES is unset);
- extension: the extension zip built and installed into the workspace's Blender
  user folder with the README's own commands.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
LANGUAGES = {"python": "python", "py": "python", "sh": "sh", "bash": "sh", "shell": "sh", "console": "sh"}
KNOWN_NEEDS = {"face_model2.nvf", "extension"}
#: The README's commands that build and install the extension for the bpy module.
BUILD_COMMAND = ".venv/bin/python tools/build_extension.py"
INSTALL_SNIPPET = "bpy.ops.extensions.package_install_files("

_COMMAND = re.compile(r"^(blender|python\S*|\.venv/bin/\S+|bash|sh|pip\S*)\s")
_FENCE = re.compile(r"^(?P<indent> {0,8})(?P<fence>```+|~~~+)\s*(?P<info>[^`\s]*)")
_RUNNABLE = re.compile(r"^<!--\s*runnable(?:\s*:\s*needs\s+(?P<needs>[^>]*?))?\s*-->\s*$")
_NOT_RUNNABLE = re.compile(r"^<!--\s*not runnable\s*:\s*(?P<why>\S.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    document: Path
    line: int                # 1-based line of the opening fence
    language: str            # "python", "sh", or "" for blocks that are not examples
    code: str
    runnable: bool
    needs: tuple[str, ...]
    why_not: str
    marker_error: str        # a malformed or missing marker, "" when fine

    @property
    def name(self) -> str:
        return f"{self.document.relative_to(REPO_ROOT).as_posix()}:{self.line}"


def parse_blocks(document: Path) -> list[Block]:
    lines = document.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            if _indented_block_starts(lines, i):
                # An indented code block (four spaces after a paragraph, not in a list):
                # in these documents always shell commands.
                end = i
                while end < len(lines) and (lines[end].startswith("    ") or not lines[end].strip()):
                    end += 1
                while not lines[end - 1].strip():
                    end -= 1
                blocks.append(_block(document, lines, i, "sh", "\n".join(l[4:] for l in lines[i:end]) + "\n"))
                i = end
                continue
            i += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        end = i + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        # A block inside a list item is indented: its code is the lines less that indent.
        code = "\n".join(line[indent:] if not line[:indent].strip() else line.lstrip()
                         for line in lines[i + 1:end]) + "\n"
        blocks.append(_block(document, lines, i, LANGUAGES.get(opening["info"].lower(), ""), code))
        i = end + 1
    return blocks


def _indented_block_starts(lines: list[str], i: int) -> bool:
    if not lines[i].startswith("    ") or not lines[i].strip() or (i > 0 and lines[i - 1].strip()):
        return False
    paragraph = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
    # Not inside a list item (whose text is indented), and a command, not a formula.
    return (not paragraph[:1].isspace() and not re.match(r"^([-*+]|\d+\.)\s", paragraph)
            and bool(_COMMAND.match(lines[i].strip())))


def _block(document: Path, lines: list[str], i: int, language: str, code: str) -> Block:
    before = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
    runnable, not_runnable = _RUNNABLE.match(before), _NOT_RUNNABLE.match(before)
    needs = tuple((runnable["needs"] or "").replace(",", " ").split()) if runnable else ()
    error = ""
    if before.startswith("<!--") and "runnable" in before and not (runnable or not_runnable):
        error = f"malformed marker {before!r}"
    elif language and not (runnable or not_runnable):
        error = "no <!-- runnable --> or <!-- not runnable: REASON --> marker before it"
    elif unknown := sorted(set(needs) - KNOWN_NEEDS):
        error = f"unknown needs {unknown} (known: {sorted(KNOWN_NEEDS)})"
    return Block(document, i + 1, language, code, bool(runnable), needs,
                 not_runnable["why"] if not_runnable else "", error)


ALL_BLOCKS = [block for document in DOCUMENTS for block in parse_blocks(document)]
RUNNABLE = [block for block in ALL_BLOCKS if block.runnable]


def test_every_example_is_marked() -> None:
    problems = [f"{block.name}: {block.marker_error}" for block in ALL_BLOCKS if block.marker_error]
    assert not problems, "\n".join(problems)
    # The README's examples are the newcomer's path: most of them must run.
    assert sum(block.document.name == "README.md" for block in RUNNABLE) >= 4


def test_markers_are_parsed() -> None:
    """The marker grammar itself, on a small document (a test of this test)."""
    assert _RUNNABLE.match("<!-- runnable -->")
    assert _RUNNABLE.match("<!-- runnable: needs face_model2.nvf extension -->")["needs"] == \
        "face_model2.nvf extension"
    assert _NOT_RUNNABLE.match("<!-- not runnable: needs a Blender binary -->")["why"] == "needs a Blender binary"
    assert not _NOT_RUNNABLE.match("<!-- not runnable: -->")


def test_parse_blocks_flags_unmarked_examples(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("text\n\n<!-- runnable -->\n```python\nprint(1)\n```\n\n```sh\nls\n```\n\n"
                   "```\nsynopsis\n```\n<!-- not runnable: needs weights -->\n```python\nx\n```\n"
                   "- item\n\n  <!-- runnable -->\n  ```sh\n  echo  a\n    b\n  ```\n"
                   "\nRun:\n\n    bash one\n      --more\n\nafter\n- list\n\n    bash continuation\n\n"
                   "A formula:\n\n    (x, y) -> (y, x)\n")
    blocks = parse_blocks(doc)
    assert [(b.language, b.runnable, b.why_not, bool(b.marker_error)) for b in blocks] == [
        ("python", True, "", False), ("sh", False, "", True), ("", False, "", False),
        ("python", False, "needs weights", False), ("sh", True, "", False), ("sh", False, "", True)]
    assert blocks[-2].code == "echo  a\n  b\n"
    assert blocks[-1].code == "bash one\n  --more\n" and blocks[-1].line == 29
    assert blocks[0].code == "print(1)\n" and blocks[0].line == 4


# --------------------------------------------------------------------------- running the blocks

class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.user = root / ".blender_user"
        self.user.mkdir()
        self.ready: set[str] = set()
        self.env = dict(os.environ, BLENDER_USER_RESOURCES=str(self.user),
                        PATH=f"{root / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
        self.env.pop("PYTHONPATH", None)

    def run(self, block: Block, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        if block.language == "python":
            command = [str(self.root / ".venv" / "bin" / "python"), "-"]
        else:
            command = ["bash", "-e", "-u", "-o", "pipefail", "-s"]
        return subprocess.run(command, input=block.code, cwd=self.root, env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def provide(self, need: str) -> None:
        if need in self.ready:
            return
        if need == "face_model2.nvf":
            samples = os.environ.get("NVF_SAMPLES")
            if not samples or not (Path(samples) / "face_model2.nvf").is_file():
                pytest.skip("needs NVIDIA's face_model2.nvf: set NVF_SAMPLES to a folder holding it "
                            "(.ci/run sets ../shared/fixtures/nvf)")
            shutil.copyfile(Path(samples) / "face_model2.nvf", self.root / "face_model2.nvf")
        elif need == "extension":
            # The README's own build and install blocks, as a user runs them.
            steps = [b for b in RUNNABLE if b.document.name == "README.md"
                     and (BUILD_COMMAND in b.code or INSTALL_SNIPPET in b.code)]
            assert steps, f"the README has no runnable block with {BUILD_COMMAND!r} or {INSTALL_SNIPPET!r}"
            for step in steps:
                result = self.run(step)
                assert result.returncode == 0, f"{step.name}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        self.ready.add(need)


def _python_environment() -> Path:
    """The environment (venv) of the Python running the tests: the workspace's .venv."""
    return Path(sys.prefix)


def _git_files(*options: str) -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z", *options], cwd=REPO_ROOT, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip(f"the examples run in a copy of a git checkout: {listed.stderr.strip()}")
    return [name for name in listed.stdout.split("\0") if name]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    pytest.importorskip("bpy", reason="the examples use the bpy module (pip install bpy==5.0.1)")
    root = tmp_path_factory.mktemp("docs_workspace") / "nv3dmm-face-tools"
    tracked = _git_files("--cached")
    # Untracked files not ignored too (new modules not yet committed), but no hidden
    # folders such as a developer's second virtual environment.
    untracked = [name for name in _git_files("--others", "--exclude-standard")
                 if not any(part.startswith(".") for part in Path(name).parts)]
    for name in tracked + untracked:
        source = REPO_ROOT / name
        if source.is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    (root / ".venv").symlink_to(_python_environment(), target_is_directory=True)
    return Workspace(root)


@pytest.mark.parametrize("block", RUNNABLE, ids=[block.name for block in RUNNABLE])
def test_example_runs(block: Block, workspace: Workspace) -> None:
    for need in block.needs:
        workspace.provide(need)
    result = workspace.run(block)
    assert result.returncode == 0, (
        f"{block.name} failed (exit {result.returncode}):\n{block.code}\n--- stdout\n{result.stdout[-4000:]}"
        f"\n--- stderr\n{result.stderr[-4000:]}")


def test_readme_documents_the_install() -> None:
    """The headless examples need the extension installed and enabled: the README says how."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    for needed in (BUILD_COMMAND, INSTALL_SNIPPET, "blender --command extension build",
                   "blender --command extension install-file -r user_default -e",
                   'ADDON = "bl_ext.user_default.nv3dmm_face_tools"', "addon_utils.enable(ADDON)"):
        assert needed in readme, needed


@pytest.mark.parametrize("document", ["README.md", "docs/nvf-codec.md"])
def test_readme_limits_match_the_codec(document: str) -> None:
    """The format limits the README and the codec's doc state are the codec's (io_nv3dmm.limits)."""
    from nv3dmm_face_tools.io_nv3dmm import limits

    readme = (REPO_ROOT / document).read_text(encoding="utf-8")
    rows = {match["name"]: int(match["value"].replace(",", ""))
            for match in re.finditer(r"^\|\s*`(?P<name>MAX_[A-Z_]+)`[^|]*\|\s*(?P<value>[\d,]+)", readme, re.M)}
    assert rows, f"{document} has no limits table (| `MAX_...` | value | ...)"
    for name, value in rows.items():
        assert getattr(limits, name) == value, name
    for name in ("MAX_VERTICES", "MAX_TRIANGLES", "MAX_BLEND_SHAPES", "MAX_PARTITIONS", "MAX_NAME_BYTES"):
        assert name in rows, name


def test_readme_names_every_asset_file() -> None:
    """Issue 10 item 18 (README part): a user can tell which files to get before anything fails."""
    from nv3dmm_face_tools.tddfa_v3.assets import ASSET_FILES

    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert [name for name in ASSET_FILES if f"`{name}`" not in readme] == []
