"""Ibis 12's DuckDB backend calls ``fetch_arrow_table``/``fetch_record_batch``, which DuckDB 2.0 renamed
``to_arrow_table``/``to_arrow_reader``. A thin proxy over the connection restores the old names, so that
billshape works on either DuckDB; with a DuckDB that still has them, the proxy only delegates."""

from __future__ import annotations


class CompatConnection:
    __slots__ = ("_con",)

    def __init__(self, con):
        object.__setattr__(self, "_con", con)

    def __getattr__(self, name):
        return getattr(self._con, name)

    def __setattr__(self, name, value):
        setattr(self._con, name, value)

    def execute(self, *args, **kwargs):
        self._con.execute(*args, **kwargs)
        return self

    def sql(self, *args, **kwargs):
        return self._con.sql(*args, **kwargs)

    def cursor(self):
        return CompatConnection(self._con.cursor())

    def fetch_arrow_table(self, *args, **kwargs):
        import warnings

        f = getattr(self._con, "to_arrow_table", None) or self._con.fetch_arrow_table
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "extra copy": only metadata queries come here
            return f(*args, **kwargs)

    def fetch_record_batch(self, rows_per_batch: int = 1_000_000):
        f = getattr(self._con, "to_arrow_reader", None)
        return f(rows_per_batch) if f else self._con.fetch_record_batch(rows_per_batch)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def connect(path: str, read_only: bool = False):
    """An Ibis DuckDB backend over ``path`` that works with DuckDB 1.x and 2.x."""
    import duckdb
    import ibis

    raw = duckdb.connect(path, read_only=read_only)
    return ibis.duckdb.from_connection(CompatConnection(raw))
