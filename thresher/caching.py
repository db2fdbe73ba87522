"""Content-addressed keys for cached stage outputs: the one caching mechanism.

A stage's key hashes everything its output depends on: the upstream stage's key (and so, by
induction, the input fingerprint), the stage's own config, and the version of the code the stage
actually runs. Equal keys mean equal outputs, so a re-run with the same inputs reuses the stored
output and a failed run resumes from the last finished stage. Outputs live in the LIGHTLY location
under ``.lightly/cache/<stage>/<key>/``, beside the run results, so any worker that can read the
LIGHTLY location can resume the run.

The code version of a stage hashes the source of ``thresher.stages.<stage>`` and of every
thresher module it imports, directly or not (found by reading the import statements, lazy ones
inside functions included). Changing a PDF caption therefore keeps hours of embeddings, while
changing the embedding code recomputes them.
"""

from __future__ import annotations

import ast
import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import thresher

PACKAGE_ROOT = Path(thresher.__file__).parent


def _module_file(root: Path, module: str) -> Path | None:
    """The source file of ``module`` (``thresher.a.b``) below ``root``, if it is ours."""
    parts = module.split(".")
    if parts[0] != "thresher":
        return None
    base = root.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@cache
def _imports(root: Path, path: Path, module: str) -> frozenset[str]:
    """The thresher modules that ``module`` (at ``path``) imports, at any depth in its body.

    Parsed once per process: the stages' closures share most of their files, and parsing them
    for every stage cost about a second of each run on the critical path.
    """
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            found.add(name)
            # `from thresher.x import y` may name a submodule y.
            found.update(f"{name}.{alias.name}" for alias in node.names)
    modules: set[str] = set()
    for name in found:
        parts = name.split(".")
        # Importing a.b.c runs the __init__ of a and a.b too.
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if _module_file(root, prefix) is not None:
                modules.add(prefix)
    return frozenset(modules)


def module_closure(module: str, root: Path = PACKAGE_ROOT) -> list[Path]:
    """Every thresher source file that ``module`` runs when imported and called, sorted."""
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        # The root package only holds the version (hashed on its own) and lazy re-exports of
        # the client: following them would tie every stage to code no stage runs.
        if name in seen or name == "thresher":
            continue
        path = _module_file(root, name)
        if path is None:
            continue
        seen[name] = path
        todo.extend(_imports(root, path, name) - seen.keys())
    return sorted(seen.values())


@cache
def code_version(stage: str, root: Path = PACKAGE_ROOT) -> str:
    """The version of stage ``stage``: thresher's version plus a hash of the code it runs."""
    h = hashlib.sha256(thresher.__version__.encode())
    for path in module_closure(f"thresher.stages.{stage}", root):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return f"{thresher.__version__}+{h.hexdigest()[:12]}"


def digest(*parts: Any) -> str:
    """A short, stable hex digest of JSON-serialisable parts."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def stage_key(stage: str, *parts: Any) -> str:
    """The cache key of ``stage`` for the given upstream keys and config."""
    return f"{stage}-{digest(stage, code_version(stage), *parts)}"


def stage_dir(key: str) -> str:
    """Where a stage's output lives, relative to the LIGHTLY root."""
    stage = key.rsplit("-", 1)[0]
    return f".lightly/cache/{stage}/{key}"
