"""``make compiled``'s build of the hot per-record modules with mypyc (:mod:`tapewatch.compiled` serves
them): ``python -m tapewatch.mypyc_build`` compiles :data:`~tapewatch.compiled.MODULES` into ``build/mypyc/`` when a
file the build reads changed since the last one (its key: those files' bytes, this Python, mypy's version), and
does nothing otherwise, in a fraction of a second. It needs the dev extra (mypy, which ships mypyc), setuptools and a C
compiler with Python's headers.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Sequence
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

from tapewatch.compiled import BUILD, GROUP, MANIFEST, MODULES, ROOT, SETTINGS, digest, python_tag, read_manifest, stale


def _source(module: str) -> Path | None:
    """A first-party module's file, relative to the checkout (None for a third-party one)."""
    if module != "tapewatch" and not module.startswith("tapewatch."):
        return None
    base = Path(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if (ROOT / path).is_file():
            return path
    return None


def sources(modules: Sequence[str] = MODULES) -> list[Path]:
    """The files a build of ``modules`` reads: theirs, the first-party modules they import at any depth (and those
    modules' packages), and :data:`SETTINGS`; relative to the checkout."""
    import ast

    seen: set[str] = set()
    todo = list(modules)
    while todo:
        module = todo.pop()
        path = _source(module)
        if module in seen or path is None:
            continue
        seen.add(module)
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        for node in ast.walk(ast.parse((ROOT / path).read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                todo += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                todo += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    files = {_source(module) for module in seen}
    return sorted({path for path in files if path is not None} | {Path(name) for name in SETTINGS})


def build_key(recorded: dict[str, list[int | str]]) -> str:
    """What a build is keyed on: the modules, this Python, mypy's version and every file it reads (``recorded``:
    each one's size, modification time and digest)."""
    from importlib.metadata import version

    key = hashlib.sha256(json.dumps([MODULES, python_tag(), version("mypy")]).encode())
    for path, (_, _, sha256) in sorted(recorded.items()):
        key.update(f"{path}\0{sha256}\0".encode())
    return key.hexdigest()


def build(force: bool = False) -> bool:
    """Compile :data:`MODULES` into :data:`BUILD` unless it holds them built from the sources as they are (then
    nothing is done); True if it compiled. One build at a time (a lock beside it)."""
    import fcntl
    import shutil

    BUILD.parent.mkdir(parents=True, exist_ok=True)
    with (BUILD.parent / "mypyc.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # read before the build reads them: a file edited meanwhile makes the build stale, never silently wrong
        recorded = {str(path): _record(ROOT / path) for path in sources()}
        key = build_key(recorded)
        manifest = read_manifest(BUILD)
        if not force and manifest is not None and manifest.get("key") == key and stale(manifest) is None:
            return False
        fresh = BUILD.with_name("mypyc.new")
        shutil.rmtree(fresh, ignore_errors=True)
        extensions = _compile(fresh)
        shutil.rmtree(fresh / "temp")  # the object files
        manifest = {
            "key": key,
            "python": python_tag(),
            "modules": MODULES,
            "extensions": extensions,
            "sources": recorded,
        }
        (fresh / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        shutil.rmtree(BUILD, ignore_errors=True)
        fresh.rename(BUILD)
    return True


def _record(path: Path) -> list[int | str]:
    status = path.stat()
    return [status.st_size, status.st_mtime_ns, digest(path)]


def _compile(into: Path) -> dict[str, str]:
    """mypyc over :data:`MODULES` (type-checked as ``mypy`` checks them: pyproject.toml's settings), the C into
    ``into``/c, the extensions into ``into``/lib; module name → its extension, relative to ``into``."""
    from mypyc.build import mypycify
    from setuptools import Distribution  # type: ignore[import-untyped]

    paths = [str(_source(module)) for module in MODULES]
    cwd = Path.cwd()
    os.chdir(ROOT)  # mypyc names the modules by their paths, and mypy reads pyproject.toml, from the checkout
    try:
        cache = f"--cache-dir={BUILD.parent / 'mypyc-cache'}"
        extensions = mypycify([cache, *paths], group_name=GROUP, target_dir=str(into / "c"))
        options = ["build_ext", f"--build-lib={into / 'lib'}", f"--build-temp={into / 'temp'}"]
        distribution = Distribution({"name": "tapewatch-compiled", "ext_modules": extensions})
        distribution.script_name, distribution.script_args = "tapewatch.mypyc_build", options
        distribution.parse_command_line()
        distribution.run_commands()
    finally:
        os.chdir(cwd)
    files = {}
    for extension in extensions:
        *package, name = extension.name.split(".")
        files[extension.name] = str(Path("lib", *package, name + EXTENSION_SUFFIXES[0]))
    return files


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m tapewatch.mypyc_build [--force]``: compile the modules if what they are built from changed."""
    import argparse
    import time

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--force", action="store_true", help="compile even if the build is up to date")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if not build(force=args.force):
        print(f"compiled modules up to date ({BUILD})")
        return
    print(f"compiled {len(MODULES)} modules with mypyc in {time.perf_counter() - started:.1f} s: {BUILD}", flush=True)
    # as mypy's own command line does (mypy.util.hard_exit): freeing the type checker's objects one by one at exit
    # takes another 10 s here, for nothing
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
