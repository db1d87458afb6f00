"""The Typer application of ``billshape`` (imported by :func:`billshape.cli.run` when the fast path does not
answer, and by ``billshape.cli.app`` for tests and tools).

Only the verb on the command line is registered (``billshape train ...`` imports ``cmd_train`` alone); ``--help``
and unknown verbs register them all.
"""

from __future__ import annotations

import importlib

import typer

from billshape.cli import _print_version, _verbs

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
    rich_markup_mode=None,  # plain Click help: Typer's Rich help formatter alone costs more start-up than all the verbs
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _top(
    version: bool = typer.Option(False, "--version", help="Print billshape's version and exit "
                                 "(billshape --version --json: one JSON object)."),
) -> None:
    if version:  # normally answered by run() before Typer starts; here for odd argument orders
        _print_version(False)
        raise _Exit(0)


_registered: set[str] = set()
_ALL = "*"


def _register(verb: str | None = None) -> None:
    """Register ``verb``'s module, or every verb (``None``: for help and for unknown verbs)."""
    if _ALL in _registered or verb in _registered:
        return
    names = _verbs() if verb is None else [verb]
    for name in names:
        if name not in _registered:
            importlib.import_module(f"billshape.cli.cmd_{name}").register(app)
            _registered.add(name)
    if verb is None:
        _registered.add(_ALL)


def command():
    """The Click command Typer builds from :data:`app` (with the verbs registered so far)."""
    return typer.main.get_command(app)
