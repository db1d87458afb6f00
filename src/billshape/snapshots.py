"""Dated catalog snapshots: ``billshape catalog refresh`` (opt-in network) and ``--snapshot ID|shipped``.

:func:`refresh` fetches each configured source (genai-prices' published price data, SkyPilot's public GPU
catalog files per cloud, Epoch AI's public model dataset), validates it (:func:`validate`: schema, required
columns, non-negative prices; a broken file is refused with a one-line reason naming the file), and writes an
immutable dated snapshot into the user's data folder: one folder per snapshot with the files as fetched and a
``manifest.json`` (``id``, ``fetched_at``, and per file its ``source`` URL, ``sha256`` content hash and size).
It is written into a temporary folder and renamed into place, so a failed refresh leaves the last good snapshot
(and every older one) as it was. Nothing is fetched unless a refresh is asked for: every other verb is offline.

The data folder is ``BILLSHAPE_DATA_DIR`` when set, else the platform's user data folder (platformdirs' when it
is installed; the same XDG / macOS / Windows rule otherwise) plus ``billshape``.

Using a snapshot (:func:`use`, ``--snapshot ID``, ``BILLSHAPE_SNAPSHOT``) switches the catalog's price tables:
:func:`billshape.catalog.prices` takes its on-demand and spot rows from the snapshot's SkyPilot files (per GPU:
instance price / GPU count; GCP's GPU rows with the host VM's price added, GPU-only rows left out), keeping the
shipped rows for (provider, GPU, tier) combinations the snapshot does not price (reserved tiers); API prices come
from the snapshot's genai-prices file. ``shipped`` (or no snapshot) is the shipped catalog. Each result names the
snapshot it used (``snapshot`` in its JSON).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from billshape.errors import BillshapeInputError

DATA_DIR_ENV = "BILLSHAPE_DATA_DIR"
SNAPSHOT_ENV = "BILLSHAPE_SNAPSHOT"
CONFIG_ENV = "BILLSHAPE_REFRESH_CONFIG"
SHIPPED = "shipped"

SKYPILOT_RAW = "https://raw.githubusercontent.com/skypilot-org/skypilot-catalog/master/catalogs/v7/{cloud}/vms.csv"
#: the clouds of SkyPilot's v7 catalog with GPU instances
SKYPILOT_CLOUDS = ("aws", "gcp", "azure", "lambda", "runpod", "nebius", "oci", "fluidstack", "paperspace", "cudo",
                   "vast", "hyperbolic", "do")
#: source name -> URL. genai-prices' own auto-update URL (genai_prices/update_prices.py DEFAULT_UPDATE_URL);
#: Epoch AI's "Data on AI Models" download (epoch.ai/data/ai-models-documentation/downloads).
DEFAULT_SOURCES: dict[str, str] = {
    "genai-prices": "https://raw.githubusercontent.com/pydantic/genai-prices/refs/heads/main/prices/new_data/v2/data.json",
    **{f"skypilot-{c}": SKYPILOT_RAW.format(cloud=c) for c in SKYPILOT_CLOUDS},
    "epoch-models": "https://epoch.ai/data/all_ai_models.csv",
}
SKYPILOT_COLUMNS = ("InstanceType", "AcceleratorName", "AcceleratorCount", "Price", "SpotPrice", "Region")
EPOCH_COLUMNS = ("Model", "Publication date")

#: SkyPilot accelerator name -> billshape accelerator (data/accelerators.csv)
SKYPILOT_GPUS = {"A100": "a100-40gb-sxm", "A100-80GB": "a100-80gb-sxm", "H100": "h100-sxm", "H100-MEGA": "h100-sxm",
                 "H200": "h200-sxm", "B200": "b200", "L4": "l4", "L40S": "l40s", "H100-PCIE": "h100-pcie",
                 "H800": "h800-sxm"}
#: GCP: the host VM of N GPUs (SkyPilot lists the GPU and the VM as separate rows)
GCP_HOST_VMS = {"A100": "a2-highgpu-{n}g", "A100-80GB": "a2-ultragpu-{n}g", "H100": "a3-highgpu-{n}g",
                "H100-MEGA": "a3-megagpu-{n}g", "H200": "a3-ultragpu-{n}g", "B200": "a4-highgpu-{n}g",
                "L4": {1: "g2-standard-4", 2: "g2-standard-24", 4: "g2-standard-48", 8: "g2-standard-96"}}


class RefreshError(BillshapeInputError):
    """A source could not be fetched or failed validation (one line naming it); nothing was written."""


# -- where ----------------------------------------------------------------------------------------------------
def data_dir() -> Path:
    """The user's billshape data folder (``BILLSHAPE_DATA_DIR``, else the platform's user data folder)."""
    given = os.environ.get(DATA_DIR_ENV, "").strip()
    if given:
        return Path(given).expanduser()
    try:
        import platformdirs
    except ImportError:
        home = Path.home()
        if sys.platform == "win32":
            base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
        elif sys.platform == "darwin":
            base = home / "Library" / "Application Support"
        else:
            base = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
        return base / "billshape"
    return Path(platformdirs.user_data_dir("billshape", appauthor=False))


def snapshots_dir() -> Path:
    return data_dir() / "snapshots"


# -- configuration ----------------------------------------------------------------------------------------------
def sources(config: str | os.PathLike | None = None, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """The URLs to fetch: the defaults, then a TOML config file's ``[sources]`` table (``config`` or
    ``BILLSHAPE_REFRESH_CONFIG``; ``name = ""`` drops a source), then ``overrides`` (``--source NAME=URL``)."""
    out = dict(DEFAULT_SOURCES)
    path = config or os.environ.get(CONFIG_ENV, "").strip() or None
    if path:
        import tomllib

        try:
            table = tomllib.loads(Path(path).read_text(encoding="utf-8")).get("sources", {})
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise BillshapeInputError("config", str(path), "a readable TOML file with a [sources] table",
                                      str(exc).splitlines()[0]) from None
        if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
            raise BillshapeInputError("config", str(path), "a [sources] table of name = \"URL\" strings")
        out.update(table)
    out.update(overrides or {})
    for name, url in out.items():
        if url and not url.startswith(("http://", "https://", "file://")):
            raise BillshapeInputError("source", f"{name}={url}", "an http(s):// or file:// URL")
    return {k: v for k, v in out.items() if v}


def kind_of(name: str) -> str:
    """``genai-prices``, ``skypilot`` or ``epoch`` for a source name (by its prefix)."""
    for kind in ("genai-prices", "skypilot", "epoch"):
        if name.startswith(kind):
            return kind
    raise BillshapeInputError("source", name, "a name starting genai-prices, skypilot-CLOUD or epoch")


# -- validation -------------------------------------------------------------------------------------------------
def _nonneg(value: str) -> bool:
    if value.strip() == "":
        return True
    try:
        x = float(value)
    except ValueError:
        return False
    return x >= 0 and x == x and x != float("inf")


def validate(name: str, content: bytes) -> str:
    """Check a fetched file; returns a one-line summary, raises :class:`RefreshError` with a one-line reason."""
    kind = kind_of(name)
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RefreshError(name, "(bytes)", "UTF-8 text") from None
    if kind == "genai-prices":
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RefreshError(name, f"line {exc.lineno}", "valid JSON", exc.msg) from None
        if not isinstance(raw, list) or not raw:
            raise RefreshError(name, type(raw).__name__, "a non-empty JSON list of providers")
        models = 0
        for p in raw:
            if not isinstance(p, dict) or not p.get("id") or not isinstance(p.get("models"), list):
                raise RefreshError(name, str(p)[:40], "providers with an id and a models list")
            for m in p["models"]:
                if not isinstance(m, dict) or not m.get("id") or "prices" not in m:
                    raise RefreshError(name, f"{p['id']}/{m}"[:60], "models with an id and prices")
                bad = _negative_price(m["prices"])
                if bad:
                    raise RefreshError(name, f"{p['id']}/{m['id']} {bad}", "non-negative prices")
                models += 1
        try:
            _genai_providers(raw)
        except Exception as exc:  # genai-prices' own schema
            raise RefreshError(name, "schema", "genai-prices' provider schema", str(exc).splitlines()[0][:120]) from None
        return f"{len(raw)} providers, {models} models"
    reader = csv.DictReader(io.StringIO(text))
    header = set(reader.fieldnames or ())
    rows = list(reader)
    need = SKYPILOT_COLUMNS if kind == "skypilot" else EPOCH_COLUMNS
    missing = [c for c in need if c not in header]
    if missing:
        raise RefreshError(name, "columns", "the columns " + ", ".join(need), "missing: " + ", ".join(missing))
    if not rows:
        raise RefreshError(name, "0 rows", "at least one row")
    if kind == "skypilot":
        for i, r in enumerate(rows, start=2):
            if None in r:
                raise RefreshError(name, f"line {i}", "rows with as many fields as the header")
            for col in ("Price", "SpotPrice", "AcceleratorCount"):
                if not _nonneg(r.get(col) or ""):
                    raise RefreshError(name, f"line {i} {col}={r.get(col)}", "a non-negative number or empty")
        gpus = sum(1 for r in rows if (r.get("AcceleratorName") or "").strip())
        return f"{len(rows)} rows, {gpus} with GPUs"
    return f"{len(rows)} models"


def _negative_price(prices: Any) -> str | None:
    """The first negative number in a genai-prices ``prices`` value (dict, list of dicts, tiers), else None."""
    if isinstance(prices, bool):
        return None
    if isinstance(prices, (int, float)):
        return str(prices) if prices < 0 else None
    if isinstance(prices, dict):
        for k, v in prices.items():
            if k in ("start", "start_date", "constraint"):
                continue
            bad = _negative_price(v)
            if bad:
                return f"{k}={bad}"
    if isinstance(prices, list):
        for v in prices:
            bad = _negative_price(v)
            if bad:
                return bad
    return None


def _genai_providers(raw: list):
    from genai_prices.types import _providers_from_raw  # the parser genai-prices' own updater uses

    return _providers_from_raw(raw)


# -- refresh ----------------------------------------------------------------------------------------------------
def _fetch(url: str, timeout_s: float) -> bytes:
    from urllib.request import Request, urlopen

    req = Request(url, headers={"User-Agent": "billshape-catalog-refresh"})
    with urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 (configured http(s)/file URLs only)
        return resp.read()


def refresh(config: str | None = None, overrides: dict[str, str] | None = None, only: list[str] | None = None,
            timeout_s: float = 60.0, now: dt.datetime | None = None) -> dict[str, Any]:
    """Fetch, validate and write one snapshot; returns its manifest. Raises :class:`RefreshError` (nothing
    written; earlier snapshots untouched) when any source fails."""
    urls = sources(config, overrides)
    if only:
        unknown = [n for n in only if n not in urls]
        if unknown:
            raise BillshapeInputError("only", ",".join(unknown), "configured sources: " + ", ".join(urls))
        urls = {n: urls[n] for n in only}
    now = now or dt.datetime.now(tz=dt.timezone.utc)
    fetched: dict[str, tuple[bytes, str]] = {}
    for name, url in urls.items():
        try:
            content = _fetch(url, timeout_s)
        except Exception as exc:  # network, HTTP status, bad URL: one line
            reason = str(getattr(exc, "reason", "") or exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise RefreshError(name, url, "a source that answers", reason[:160]) from None
        fetched[name] = (content, validate(name, content))
    root = snapshots_dir()
    root.mkdir(parents=True, exist_ok=True)
    sid = now.strftime("%Y%m%dT%H%M%SZ")
    n = 1
    while (root / sid).exists():
        n += 1
        sid = now.strftime("%Y%m%dT%H%M%SZ") + f"-{n}"
    manifest = {"id": sid, "fetched_at": now.isoformat(timespec="seconds").replace("+00:00", "Z"), "files": {}}
    tmp = Path(tempfile.mkdtemp(prefix=f".{sid}.", dir=root))
    try:
        for name, (content, summary) in fetched.items():
            filename = name + (".json" if kind_of(name) == "genai-prices" else ".csv")
            (tmp / filename).write_bytes(content)
            manifest["files"][name] = {"file": filename, "source": urls[name], "kind": kind_of(name),
                                       "sha256": hashlib.sha256(content).hexdigest(), "bytes": len(content),
                                       "summary": summary}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        for f in tmp.iterdir():
            f.chmod(0o444)
        os.rename(tmp, root / sid)  # atomic on one file system: the snapshot appears whole or not at all
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def list_snapshots() -> list[dict[str, Any]]:
    """Every complete snapshot's manifest, oldest first (temporary folders of a failed refresh are skipped)."""
    root = snapshots_dir()
    if not root.is_dir():
        return []
    out = []
    for d in sorted(root.iterdir()):
        m = d / "manifest.json"
        if d.name.startswith(".") or not m.is_file():
            continue
        try:
            out.append(json.loads(m.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError):
            continue
    return out


# -- use ------------------------------------------------------------------------------------------------------
_active: list[str | None] = [None]  # set by use(); None: BILLSHAPE_SNAPSHOT, else shipped


def use(snapshot: str | None) -> None:
    """Switch the catalog's price tables to a snapshot (``"latest"``: the newest; ``"shipped"``/None: the
    shipped catalog). Raises an input error naming ``snapshot`` when there is no such snapshot."""
    sid = None if snapshot in (None, "", SHIPPED) else _resolve(snapshot)
    if sid != _active[0]:
        _active[0] = sid
        _clear_caches()


def active_id() -> str | None:
    """The id of the snapshot in use, or None for the shipped catalog."""
    if _active[0] is not None:
        return _active[0]
    env = os.environ.get(SNAPSHOT_ENV, "").strip()
    if env and env != SHIPPED:
        return _resolve(env, field=SNAPSHOT_ENV)
    return None


def _resolve(snapshot: str, field: str = "snapshot") -> str:
    known = [m["id"] for m in list_snapshots()]
    if snapshot == "latest" and known:
        return known[-1]
    if snapshot not in known:
        raise BillshapeInputError(field, snapshot, "shipped, latest or a snapshot id from `billshape catalog snapshots`",
                                  f"known: {', '.join(known[-3:])}" if known else "no snapshots yet: run "
                                  "`billshape catalog refresh`")
    return snapshot


def manifest(sid: str) -> dict[str, Any]:
    return json.loads((snapshots_dir() / sid / "manifest.json").read_text(encoding="utf-8"))


def _clear_caches() -> None:
    from billshape import catalog

    catalog.prices.cache_clear()
    _gpu_rows.cache_clear()
    ensure_genai()


_genai_for: list[str | None] = [None]  # the snapshot whose genai-prices data is installed (None: bundled)


def ensure_genai() -> None:
    """Install the active snapshot's genai-prices data (or the bundled data) in genai-prices, when it changed;
    :func:`billshape.api_prices.quote` calls it before each look-up (cheap when nothing changed)."""
    sid = active_id()
    if sid != _genai_for[0]:
        _set_genai_snapshot(sid)
        _genai_for[0] = sid


def _set_genai_snapshot(sid: str | None) -> None:
    if "genai_prices" not in sys.modules and sid is None:
        return
    from genai_prices import data_snapshot

    files = manifest(sid)["files"] if sid else {}
    entry = next((f for f in files.values() if f["kind"] == "genai-prices"), None)
    if entry is None:
        data_snapshot.set_custom_snapshot(None)
        return
    raw = json.loads((snapshots_dir() / sid / entry["file"]).read_text(encoding="utf-8"))
    data_snapshot.set_custom_snapshot(data_snapshot.DataSnapshot(_genai_providers(raw), from_auto_update=True))
    from billshape import api_prices

    api_prices._provider_ids.cache_clear()
    api_prices._model_names.cache_clear()


def genai_source(sid: str | None = None) -> str | None:
    """``genai-prices data fetched DATE from URL (snapshot ID)`` when the active snapshot has genai-prices data."""
    sid = sid or active_id()
    if sid is None:
        return None
    m = manifest(sid)
    entry = next((f for f in m["files"].values() if f["kind"] == "genai-prices"), None)
    if entry is None:
        return None
    return f"genai-prices data {entry['source']} (snapshot {sid}, sha256 {entry['sha256'][:12]})"


@lru_cache(maxsize=4)
def _gpu_rows(sid: str) -> tuple[dict[str, Any], ...]:
    """The snapshot's SkyPilot files as rental rows (dicts of GpuPrice fields), on-demand and spot."""
    m = manifest(sid)
    day = m["fetched_at"][:10]
    out: list[dict[str, Any]] = []
    for name, entry in sorted(m["files"].items()):
        if entry["kind"] != "skypilot":
            continue
        cloud = name.split("-", 1)[1] if "-" in name else name
        text = (snapshots_dir() / sid / entry["file"]).read_text(encoding="utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(text)))
        source = f"{entry['source']} (snapshot {sid}, sha256 {entry['sha256'][:12]})"
        out.extend(skypilot_rows(cloud, rows, source, day))
    return tuple(out)


def skypilot_rows(cloud: str, rows: list[dict[str, str]], source: str, day: str) -> list[dict[str, Any]]:
    """Rental rows (per GPU-hour, on-demand and spot) from one SkyPilot ``vms.csv``.

    Instance rows with GPUs: ``Price / AcceleratorCount`` (and ``SpotPrice``). GCP lists the GPU and the host VM
    as separate rows: a GPU row is priced with its host VM's row in the same zone added
    (:data:`GCP_HOST_VMS`), and left out when there is none (never a GPU-only price).
    """
    vms: dict[tuple[str, str], dict[str, str]] = {}
    if cloud == "gcp":
        for r in rows:
            if (r.get("InstanceType") or "").strip() and not (r.get("AcceleratorName") or "").strip():
                vms[(r["InstanceType"].strip(), (r.get("AvailabilityZone") or r.get("Region") or "").strip())] = r
    out = []
    for r in rows:
        acc = (r.get("AcceleratorName") or "").strip()
        gpu = SKYPILOT_GPUS.get(acc)
        try:
            count = float(r.get("AcceleratorCount") or 0)
        except ValueError:
            continue
        if gpu is None or count <= 0:
            continue
        itype = (r.get("InstanceType") or "").strip()
        zone = (r.get("AvailabilityZone") or r.get("Region") or "").strip()
        host = None
        if cloud == "gcp":
            rule = GCP_HOST_VMS.get(acc)
            n = int(count)
            vm = rule.get(n) if isinstance(rule, dict) else (rule.format(n=n) if rule else None)
            host = vms.get((vm, zone)) if vm else None
            if host is None:
                continue
            itype = vm
        for tier, col in (("on-demand", "Price"), ("spot", "SpotPrice")):
            try:
                total = float(r.get(col) or "nan") + (float(host.get(col) or "nan") if host else 0.0)
            except ValueError:
                continue
            if not total == total or total <= 0:
                continue
            note = f"{itype} {col} / {count:g} GPUs" + (f" (GPU row + host VM row {itype})" if host else "")
            out.append({"provider": cloud, "gpu": gpu, "tier": tier, "usd_per_gpu_hour": round(total / count, 6),
                        "region": (r.get("Region") or "").strip(), "instance_type": itype, "source": source,
                        "as_of": day, "retrieved": day, "note": note})
    return out
