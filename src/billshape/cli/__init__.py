"""The ``billshape`` command line (Typer + Rich).

One verb per decision. Verbs live in ``cmd_*.py`` modules of this package, each with a ``register(app)``
function; they are discovered here, so adding a verb touches no other file. Verb modules import only
Typer at module level and import numpy, pydantic and the library inside the command body, so that
``billshape --help`` stays fast.

Only the verb on the command line is registered (``billshape train ...`` imports ``cmd_train`` alone); ``--help``
and unknown verbs register them all. ``billshape --version`` answers before Typer builds anything, and so does
``billshape train ... --json`` (:mod:`billshape.cli._fast`: a stdlib parser over the train command's option table,
the same ``training_bill``, the same JSON; anything it does not fully understand goes to Typer). The Typer app
lives in :mod:`billshape.cli._app` (``billshape.cli.app`` still names it).

Conventions (``docs/architecture.md``, ``README.md``): every verb takes ``--json`` and then prints exactly one JSON object on
stdout; bad input prints one line on stderr naming the field, the value and the allowed range, and exits 2. A verb
whose optional extra is not installed says which one (``pip install 'billshape[app]'``) and exits 2.
"""

from __future__ import annotations

import os
import sys

# Typer is imported by billshape.cli._app, only when the fast path (billshape.cli._fast) does not answer: importing
# Typer and building the app costs more than the whole of ``billshape train ... --json`` on the fast path.
_APP_NAMES = ("app", "_register", "_registered", "_top", "_Abort", "_Exit", "_cx")


def __getattr__(name: str):
    """``billshape.cli.app`` (the Typer app), ``_register`` and friends, from :mod:`billshape.cli._app`."""
    if name in _APP_NAMES:
        from billshape.cli import _app

        return getattr(_app, name)
    raise AttributeError(f"module 'billshape.cli' has no attribute {name!r}")


def _verbs() -> list[str]:
    """The verb modules' names (``cmd_train`` -> ``train``), from the package directory (nothing imported)."""
    import importlib
    import pkgutil

    package = importlib.import_module("billshape.cli")
    return sorted(info.name[4:] for info in pkgutil.iter_modules(package.__path__) if info.name.startswith("cmd_"))


def _verb_of(argv: list[str]) -> str | None:
    """The verb named on the command line when it is a known one and no top-level option precedes it."""
    if not argv or argv[0].startswith("-"):
        return None
    return argv[0] if argv[0] in _verbs() else None


#: verb -> (extra it needs, flags that need it; None: the verb always does)
_EXTRAS = {
    "app": ("app", None),
    "usage": ("usage", None),
    "demo": ("report", None),
    "plan": ("report", ("--report", "--png")),
}


def _check_extra(verb: str | None, args: list[str]) -> None:
    """Raise MissingExtra before the verb runs when its optional dependencies are not installed (help always works)."""
    if verb not in _EXTRAS or "--help" in args or "-h" in args:
        return
    extra, flags = _EXTRAS[verb]
    if flags is not None:
        used = [f for f in flags if any(a == f or a.startswith(f + "=") for a in args)]
        if not used:
            return
        what = f"billshape {verb} {used[0]}"
    else:
        what = f"billshape {verb}"
    from billshape._extras import check

    check(extra, what)


def _choice_message(exc) -> str | None:
    """A bad value for a choice option in billshape's format (``--tier: got 'spott'; allowed: one of on-demand,
    ..., spot (did you mean spot?)``), or None when ``exc`` is not about a choice."""
    import re

    text = exc.format_message().split("Value error, ", 1)[-1]
    m = re.search(r"^'(?P<value>.*)' is not one of (?P<choices>'.*')\.?\s*$", text, re.S)
    if m is None:
        return None
    choices = re.findall(r"'([^']*)'", m.group("choices"))
    opts = getattr(exc.param, "opts", None) or []
    flag = max(opts, key=len) if opts else (getattr(exc.param, "name", None) or "value")
    from billshape.errors import unknown_name

    err = unknown_name(flag, m.group("value"), [])
    err.allowed = "one of " + ", ".join(choices)
    import difflib

    close = difflib.get_close_matches(m.group("value").lower(), choices, n=3, cutoff=0.4)
    err.hint = f"did you mean {', '.join(close)}?" if close else None
    return err.message


def _print_version(as_json: bool) -> None:
    import platform

    from billshape import __version__

    if as_json:
        import json

        sys.stdout.write(json.dumps({"version": __version__, "python": platform.python_version(),
                                     "implementation": platform.python_implementation()}, indent=2) + "\n")
    else:
        sys.stdout.write(f"billshape {__version__}\n")


def _fail(message: str, code: int = 2) -> int:
    sys.stderr.write(f"billshape: error: {message}\n")
    sys.stderr.flush()
    return code


#: verbs whose errors name scenario YAML paths, not flags
_YAML_VERBS = {"plan", "demo"}
#: ... except for the fields their own options feed (``samples`` is ``--samples``)
_YAML_VERB_OPTIONS = {"samples", "seed", "report", "png", "out"}


def _pipe_closed() -> int:
    """Output piped into ``head`` and closed: send the rest to the null device and stop quietly (exit 0)."""
    try:
        sys.stdout = open(os.devnull, "w")
    except OSError:  # pragma: no cover
        pass
    return 0


def _write(text: str) -> int:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        return _pipe_closed()
    return 0


def run(argv: list[str] | None = None, *, fast: bool = True) -> int:
    """Run the CLI with ``argv`` and return the exit code (no ``sys.exit``); used by :func:`main` and tests.

    ``billshape train ... --json`` is answered by :mod:`billshape.cli._fast` when it understands every argument
    and the bill computes (the same :func:`billshape.estimates.training_bill`, the same JSON); anything else, and
    every error, goes through Typer below (``fast=False``: always), so messages and exit codes have one source.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "--version" and set(args[1:]) <= {"--json"}:
        _print_version("--json" in args)
        return 0
    if fast and args[:1] == ["train"] and "--json" in args:  # other commands do not even import the fast path
        from billshape.cli import _fast

        text = _fast.train_json(args)
        if text is not None:
            return _write(text)

    import warnings

    from billshape.cli._app import _Abort, _cx, _Exit, _register
    from billshape.cli._app import command as _command
    from billshape.errors import BillshapeInputError, MissingExtra, NonFiniteResult

    verb = _verb_of(args)
    _register(verb)
    command = _command()
    try:
        _check_extra(verb, args)
        with warnings.catch_warnings():
            # numpy's overflow/invalid warnings are not for users: a non-finite result is caught below
            warnings.simplefilter("ignore", RuntimeWarning)
            result = command.main(args=argv, prog_name="billshape", standalone_mode=False)
    except BillshapeInputError as exc:
        from billshape.cli._flags import cli_message

        # the library names fields (gpus); the CLI prints its flags (--gpus). A scenario's errors name YAML paths
        # (horizon_months, product.users), which stay as they are.
        return _fail(cli_message(exc, field=verb not in _YAML_VERBS or exc.field in _YAML_VERB_OPTIONS))
    except MissingExtra as exc:
        return _fail(exc.message)
    except NonFiniteResult as exc:
        return _fail(f"{exc.path}: the result overflowed to {exc.value!r}; allowed: inputs that keep every result "
                     "finite (an input is far outside realistic bounds)")
    except UnicodeDecodeError as exc:
        return _fail(f"input file: not UTF-8 text ({exc.reason} at byte {exc.start}); allowed: a UTF-8 text file")
    except _cx.NoSuchOption as exc:
        hint = f" (did you mean {', '.join(exc.possibilities)}?)" if exc.possibilities else ""
        return _fail(f"{exc.option_name}: no such option{hint}")
    except _cx.BadParameter as exc:
        return _fail(_choice_message(exc) or " ".join(exc.format_message().split()))
    except _cx.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group: its help was asked for
            sys.stdout.write((exc.ctx.get_help() if exc.ctx else "") + "\n")
            return 0
        return _fail(" ".join(exc.format_message().split()))
    except _Abort:
        return _fail("aborted", 130)
    except _Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:
        return _pipe_closed()
    except SystemExit as exc:  # Click answers a closed pipe (EPIPE) inside a command with sys.exit(1)
        if isinstance(exc.__context__, BrokenPipeError):
            return _pipe_closed()
        raise
    except Exception as exc:  # a bug: one line, unless BILLSHAPE_DEBUG asks for the traceback
        if os.environ.get("BILLSHAPE_DEBUG"):
            raise
        return _fail(f"internal error ({type(exc).__name__}): {exc}; rerun with BILLSHAPE_DEBUG=1 for a traceback", 1)
    return result if isinstance(result, int) else 0


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    sys.exit(run(argv))
