"""``billshape catalog refresh`` and ``billshape catalog snapshots``: the shell over :mod:`billshape.snapshots`."""

from __future__ import annotations


def _pairs(items: list[str] | None) -> dict[str, str]:
    from billshape.errors import BillshapeInputError

    out: dict[str, str] = {}
    for item in items or []:
        name, eq, url = item.partition("=")
        if not eq or not name.strip():
            raise BillshapeInputError("--source", item, "NAME=URL (NAME: genai-prices, skypilot-CLOUD, epoch-models)")
        out[name.strip()] = url.strip()
    return out


def refresh_or_list(action: str, source: list[str] | None, config: str | None, only: list[str] | None,
                    timeout_s: float, json_out: bool) -> None:
    from billshape import snapshots
    from billshape.cli._common import console, print_json
    from billshape.errors import BillshapeInputError

    if action == "snapshots":
        found = snapshots.list_snapshots()
        if json_out:
            print_json({"data_dir": str(snapshots.data_dir()), "count": len(found), "snapshots": found})
            return
        out = console()
        if not found:
            out.print(f"no snapshots in {snapshots.snapshots_dir()}: `billshape catalog refresh` writes one")
            return
        from rich.table import Table

        table = Table(title=f"catalog snapshots in {snapshots.snapshots_dir()}", title_justify="left")
        for c in ("id", "fetched_at", "files", "sources"):
            table.add_column(c, overflow="fold")
        for m in found:
            table.add_row(m["id"], m["fetched_at"], str(len(m["files"])), ", ".join(sorted(m["files"])))
        out.print(table)
        out.print("use one with --snapshot ID (or latest) on any verb; --snapshot shipped: the shipped catalog")
        return
    if not 0 < timeout_s <= 3600:
        raise BillshapeInputError("--timeout", timeout_s, "seconds in (0, 3600]")
    try:
        manifest = snapshots.refresh(config=config, overrides=_pairs(source), only=only, timeout_s=timeout_s)
    except BillshapeInputError as exc:
        field = {"config": "--config", "only": "--only", "source": "--source"}.get(exc.field, exc.field)
        raise BillshapeInputError(field, exc.value, exc.allowed, exc.hint) from None
    if json_out:
        print_json(manifest)
        return
    from rich.table import Table

    table = Table(title=f"snapshot {manifest['id']} (fetched {manifest['fetched_at']})", title_justify="left")
    for c in ("source", "file", "checked", "sha256", "url"):
        table.add_column(c, overflow="fold")
    for name, f in sorted(manifest["files"].items()):
        table.add_row(name, f["file"], f["summary"], f["sha256"][:12], f["source"])
    console().print(table)
    console().print(f"written to {snapshots.snapshots_dir() / manifest['id']}; use it with --snapshot {manifest['id']}")
