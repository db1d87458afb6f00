"""Which API price data a usage verb reads, as a dated assumption (``--snapshot``, staleness warnings).

The ledger prices rows through :func:`billshape.api_prices.quote`: genai-prices' bundled data, or a refreshed
catalog snapshot's genai-prices file (``--snapshot ID``, ``BILLSHAPE_SNAPSHOT``). :func:`price_data_assumption`
names that data with its date (``as_of``: the bundled data's catalog row ``data/api_prices_as_of.csv`` default,
or the day the snapshot was fetched) and a money unit, so that :func:`billshape.staleness.warnings_for` names it
when it is older than ``--max-age-days`` (default ``constants.csv`` ``stale_after_days_price``).
"""

from __future__ import annotations

from billshape.results import Assumption


def price_data_assumption(prices_csv: str | None = None, name: str = "price source") -> Assumption:
    """The genai-prices data in use (a snapshot's, else the bundled data), dated; ``prices_csv``: a user price
    table read beside it (named in the value; it wins for its models)."""
    from billshape import api_prices, snapshots

    from genai_prices import __version__

    sid = snapshots.active_id()
    source = snapshots.genai_source(sid) if sid is not None else None
    if source is not None:
        as_of = snapshots.manifest(sid)["fetched_at"][:10]
        value = f"genai-prices data of catalog snapshot {sid}"
    else:
        row = api_prices._default_row()
        as_of = row["as_of"]
        source = f"genai-prices {__version__} (pydantic/genai-prices, bundled offline snapshot; {row['source']})"
        value = "genai-prices snapshot"
    return Assumption(name=name, value=value + (f" + {prices_csv}" if prices_csv else ""), unit="USD per million tokens",
                      source=source, as_of=as_of)
