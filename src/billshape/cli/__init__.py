"""The ``billshape`` command line (Typer + Rich).

One verb per decision. Verbs live in ``cmd_*.py`` modules of this package, each with a ``register(app)``
function; they are discovered here, so adding a verb touches no other file. Verb modules import only
Typer at module level and import numpy, pydantic and the library inside the command body, so that
``billshape --help`` stays fast.

Conventions (``DESIGN.md``): every verb takes ``--json`` and then prints exactly one JSON object on stdout;
bad input prints one line on stderr naming the field, the value and the allowed range, and exits 2.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys

import typer

try:  # Typer >= 0.20 vendors Click as typer._click (Abort and Exit live in typer.exceptions)
    from typer import exceptions as _tx
    from typer._click import exceptions as _cx

    _Abort, _Exit = _tx.Abort, _tx.Exit
except (ImportError, AttributeError):  # pragma: no cover - older Typer on Click
    from click import exceptions as _cx

    _Abort, _Exit = _cx.Abort, _cx.Exit

app = typer.Typer(
    name="billshape",
    help="The economics of AI systems: training bills, cost per token, build vs buy, lifetime plans.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_registered = False


def _register() -> None:
    global _registered
    if _registered:
        return
    package = importlib.import_module("billshape.cli")
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("cmd_"):
            importlib.import_module(f"billshape.cli.{info.name}").register(app)
    _registered = True


def _fail(message: str, code: int = 2) -> int:
    sys.stderr.write(f"billshape: error: {message}\n")
    sys.stderr.flush()
    return code


#: verbs whose errors name scenario YAML paths, not flags
_YAML_VERBS = {"plan", "demo"}
#: ... except for the fields their own options feed (``samples`` is ``--samples``)
_YAML_VERB_OPTIONS = {"samples", "seed", "report", "png", "out"}


def _verb(argv: list[str] | None) -> str | None:
    args = sys.argv[1:] if argv is None else argv
    return next((a for a in args if not a.startswith("-")), None)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` and return the exit code (no ``sys.exit``); used by :func:`main` and tests."""
    import warnings

    from billshape.errors import BillshapeInputError
    from billshape.results import NonFiniteResult

    _register()
    command = typer.main.get_command(app)
    try:
        with warnings.catch_warnings():
            # numpy's overflow/invalid warnings are not for users: a non-finite result is caught below
            warnings.simplefilter("ignore", RuntimeWarning)
            result = command.main(args=argv, prog_name="billshape", standalone_mode=False)
    except BillshapeInputError as exc:
        from billshape.present.labels import cli_message

        # the library names fields (gpus); the CLI prints its flags (--gpus). A scenario's errors name YAML paths
        # (horizon_months, product.users), which stay as they are.
        return _fail(cli_message(exc, field=_verb(argv) not in _YAML_VERBS or exc.field in _YAML_VERB_OPTIONS))
    except NonFiniteResult as exc:
        return _fail(f"{exc.path}: the result overflowed to {exc.value!r}; allowed: inputs that keep every result "
                     "finite (an input is far outside realistic bounds)")
    except UnicodeDecodeError as exc:
        return _fail(f"input file: not UTF-8 text ({exc.reason} at byte {exc.start}); allowed: a UTF-8 text file")
    except _cx.NoSuchOption as exc:
        hint = f" (did you mean {', '.join(exc.possibilities)}?)" if exc.possibilities else ""
        return _fail(f"{exc.option_name}: no such option{hint}")
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
    except BrokenPipeError:  # output piped into `head`: stop quietly
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:  # pragma: no cover
            pass
        return 0
    except Exception as exc:  # a bug: one line, unless BILLSHAPE_DEBUG asks for the traceback
        if os.environ.get("BILLSHAPE_DEBUG"):
            raise
        return _fail(f"internal error ({type(exc).__name__}): {exc}; rerun with BILLSHAPE_DEBUG=1 for a traceback", 1)
    return result if isinstance(result, int) else 0


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    sys.exit(run(argv))
