"""Components from outside the package: a user's file or module, and installed packages' entry points.

A component (strategy, diagnostic, preset, dataset, network) is named by a spec:

    path/to/my_strategy.py:MyReplay    an attribute of a Python file, imported once by its resolved path
    mypackage.strategies:MyReplay      an attribute of an importable module; the working directory is
                                       searched too, as ``python -m`` would (a console script does not)

and a plugin, a file or module imported for what it registers, by ``path/to/file.py`` or
``mypackage.module``. Installed packages add components through entry points, loaded the first time
a registry does not know a name (or is listed): groups ``forgetlab.strategies``,
``forgetlab.diagnostics``, ``forgetlab.presets`` and ``forgetlab.datasets``. An entry point names a
module (imported: its decorators register what it holds) or an object (registered under the entry
point's name by the registry of its group).

A run records the plugins it used (config ``plugins``), so that ``forgetlab show`` and a resumed sweep
import them again; this module also keeps the list of every file or module it imported in this process
(``imported``), which local worker processes import before their first job.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from forgetlab.errors import ConfigError

ENTRY_POINT_GROUPS = ("strategies", "diagnostics", "presets", "datasets")
_LOADED_GROUPS: set[str] = set()
# group -> how an entry point's object joins its registry (set by the layer that owns the registry)
_ADOPTERS: dict[str, Callable[[str, Any], None]] = {}
# every target imported through this module in this process, in order (as ``canonical`` spells it), with
# the folder a module was found in when only the working directory held it (else None)
_IMPORTED: dict[str, str | None] = {}


def is_spec(name: str) -> bool:
    """A ``target:Attr`` spec rather than a registered name."""
    return ":" in name


def _import_file(path: Path):
    name = "forgetlab_user_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{path} cannot be imported as a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _import_module(target: str, folder: str | None = None):
    """``importlib.import_module``, also from ``folder`` (default: the working directory) when the module is
    not found elsewhere: (the module, the folder it was found in or None)."""
    try:
        return importlib.import_module(target), None
    except ModuleNotFoundError as e:
        folder = folder or os.getcwd()
        if e.name != target.split(".")[0] or folder in sys.path:
            raise
        sys.path.insert(0, folder)
        try:
            return importlib.import_module(target), folder
        finally:
            sys.path.remove(folder)


def import_target(target: str, what: str, folder: str | None = None):
    """The module of ``target`` (a .py path or a dotted module; a module is also looked for in ``folder``,
    default the working directory), or a one-line ConfigError naming ``what``."""
    try:
        if target.endswith(".py"):
            path = Path(target).expanduser().resolve()
            if not path.is_file():
                raise ConfigError(f"{what}: file {target} does not exist")
            module, found_in = _import_file(path), None
        else:
            module, found_in = _import_module(target, folder)
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - any failure while importing is the user's code
        raise ConfigError(f"{what}: importing {target} failed ({type(e).__name__}: {e})") from None
    _IMPORTED.setdefault(canonical(target), found_in)
    return module


def imported() -> tuple[tuple[str, str | None], ...]:
    """Every file or module imported through this module in this process (plugins, specs), in order, each
    with the folder it was found in when only the working directory held it: what a worker process
    imports (``import_again``) before it unpickles a job, whose arguments may hold a plug-in's classes."""
    return tuple(_IMPORTED.items())


def import_again(entries) -> None:
    """Import what ``imported()`` listed in another process (a module from the folder it was found in)."""
    for target, folder in entries:
        import_target(target, f"plugin {target!r}", folder)


def canonical(target: str) -> str:
    """A plugin as recorded in a config: a file by its absolute path, a module by its dotted name."""
    return str(Path(target).expanduser().resolve()) if target.endswith(".py") else target


def _label(what: str, spec: str) -> str:
    """'--strategy 'x.py:C'' for an option, 'model.module='x.py:C'' for a config key."""
    return f"{what} {spec!r}" if what.startswith("-") else f"{what}={spec!r}"


def load(spec: str, what: str) -> Any:
    """The object a ``target:Attr`` spec names; ``what`` (an option like "--strategy" or a config key like
    "model.module") words the errors."""
    label = _label(what, spec)
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise ConfigError(f"{label}: expected package.module:ClassName or path/to/file.py:ClassName")
    obj = import_target(target, label)
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"{label}: {target} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def import_plugins(targets) -> tuple[str, ...]:
    """Import each plugin (a .py path or a dotted module); returns them as a config records them."""
    out = []
    for target in targets:
        import_target(target, f"plugin {target!r}")
        out.append(canonical(target))
    return tuple(dict.fromkeys(out))


def set_adopter(group: str, adopt: Callable[[str, Any], None]) -> None:
    """How an object found under an entry point of ``forgetlab.<group>`` is registered: ``adopt(name, obj)``."""
    _ADOPTERS[group] = adopt


def load_entry_points(group: str) -> None:
    """Once per process: every installed entry point of ``forgetlab.<group>``. A module is imported (its
    decorators register what it holds); any other object is registered by the group's adopter."""
    if group in _LOADED_GROUPS:
        return
    _LOADED_GROUPS.add(group)
    from importlib.metadata import entry_points

    for ep in entry_points(group=f"forgetlab.{group}"):
        try:
            obj = ep.load()
        except Exception as e:  # noqa: BLE001 - a broken third-party package: name it, go on without it
            raise ConfigError(
                f"entry point {ep.name!r} of forgetlab.{group} ({ep.value}) failed to load "
                f"({type(e).__name__}: {e}); fix or uninstall the package that declares it"
            ) from None
        if not isinstance(obj, type(sys)) and group in _ADOPTERS:
            _ADOPTERS[group](ep.name, obj)
