"""Storage and Ibis expressions: the same pricing, report and what-if code on DuckDB and on PySpark.

Only :class:`DuckDBStore` and :class:`SparkStore` know where tables live and how an ingest is made
atomic; every number is computed by the Ibis expressions in this module, whichever the engine.

* DuckDB (default): one database file; an ingest is one transaction (a crash rolls it back).
* Spark: ``db`` is a directory of Parquet tables partitioned by ``ingest_id`` plus ``_manifest.json``
  listing committed ingests; an ingest writes its partitions, then swaps the manifest (``os.replace``).
  Partitions of an ingest that never committed are invisible and removed by the next ingest. A commit that
  rewrites a whole table (``usage reprice`` rewrites the quarantine) lists the table's older partitions under
  ``replaced`` in the same manifest swap.
"""

from __future__ import annotations

import json
import os
import shutil

import ibis
import ibis.expr.datatypes as dt
import pyarrow as pa

from billshape.usage.schema import (CONTENT_KEY_FIELDS, CONTENT_KEY_NONZERO_FIELDS, CONTENT_KEY_PREFIX, COST_FIELDS, DUPLICATE,
                                    FILES, LEDGER, MICRO, QUARANTINE, REKEYED, STAGE, UNIT_COST_FIELDS, UNIT_FIELDS)
from billshape.usage.tiers import _tiered_price, known_tier, tier_multiplier  # noqa: F401  (engine.known_tier, engine.tier_multiplier)

TABLES = {"ledger": LEDGER, "quarantine": QUARANTINE, "files": FILES}
#: Token counts as decimals for pricing: wider than the price type (decimal(18, 9)), so that tokens x price is
#: exact in 128-bit decimals on DuckDB (decimal(38, 18); two 18-digit decimals multiply in 64 bits there and
#: overflow past ~9.2e18 units, e.g. 1e10 tokens at $15/M) and on Spark (decimal(38, 9)).
DEC_TOKENS = dt.Decimal(28, 9)


class Store:
    engine = "?"
    con = None

    def table(self, name: str):
        raise NotImplementedError

    def register(self, name: str, data: pa.Table):
        raise NotImplementedError

    #: the staged records' file format: Parquet (every engine reads it)
    stage_suffix = ".parquet"

    def stage_writer(self, path: str, schema: pa.Schema):
        """A writer (``write_batch``, ``close``) of the staged records, read back by :meth:`read_stage`."""
        import pyarrow.parquet as pq

        return pq.ParquetWriter(path, schema, compression="none")  # a scratch file: read once, soon

    def read_stage(self, path: str):
        return self.con.read_parquet(path)

    def begin(self) -> None: ...

    def append(self, name: str, expr) -> None:
        raise NotImplementedError

    def replace(self, name: str, expr, ingest_id: str) -> None:
        """Replace the whole content of table ``name`` by ``expr``, effective at :meth:`commit` (atomic with it).
        ``expr`` is evaluated now, against the tables as they are."""
        raise NotImplementedError

    def pending_count(self, name: str) -> int:
        """Rows table ``name`` will hold after commit, given a pending :meth:`replace`."""
        raise NotImplementedError

    def commit(self, ingest_id: str) -> None: ...

    def rollback(self, ingest_id: str) -> None: ...

    def close(self) -> None: ...

    def cache(self, expr):
        """``expr`` evaluated once, for several reads in this ingest (a temporary table; a cached DataFrame)."""
        return expr.cache()

    def scalar(self, expr):
        return expr.to_pyarrow().as_py()

    def frame(self, expr) -> pa.Table:
        return expr.to_pyarrow()


class DuckDBStore(Store):
    engine = "duckdb"

    def __init__(self, path: str, read_only: bool = False):
        _check_duckdb_path(path, read_only)
        import duckdb

        try:
            self.con = ibis.duckdb.connect(path, read_only=read_only)
        except duckdb.Error as exc:  # locked by another process, corrupt, unwritable...
            from billshape.errors import BillshapeInputError

            raise BillshapeInputError("db", path, "a DuckDB usage database file", str(exc).splitlines()[0][:160]) from None
        # bounded memory: DuckDB spills joins, windows and aggregates to disk past this limit
        self.con.raw_sql(f"SET memory_limit = '{os.environ.get('BILLSHAPE_DUCKDB_MEMORY_LIMIT', '1GB')}'")
        self._pending: dict[str, str] = {}
        self._begun = True  # no write pending (begin() defers BEGIN to the first write)
        if not read_only:
            existing = set(self.con.list_tables())
            for name, schema in TABLES.items():
                if name not in existing:
                    self.con.con.register("_empty", schema.empty_table())
                    self.con.raw_sql(f"CREATE TABLE {name} AS SELECT * FROM _empty")
                    self.con.con.unregister("_empty")
                else:  # a database from an older billshape: add the columns added since (they append, in order)
                    have = set(self.con.get_schema(name).names)
                    for f in schema:
                        if f.name not in have:
                            self.con.raw_sql(f"ALTER TABLE {name} ADD COLUMN {f.name} {_duck_type(f.type)}")

    def table(self, name: str):
        return self.con.table(name)

    def register(self, name: str, data: pa.Table):
        self.con.con.register(name, data)
        return self.con.table(name)

    def begin(self) -> None:
        """Start the write: the transaction itself opens at the first write (:meth:`_write`), so that what comes
        before it (the rate table, the :meth:`cache` of the priced rows: temporary, gone with the connection)
        is built outside it. A scan of a table created inside a transaction runs on one thread (DuckDB 1.5):
        the ledger insert from a cache built inside one took 2.1 s instead of 1.2 s at 1M rows."""
        self._begun = False

    def _write(self) -> None:
        if not self._begun:
            self.con.raw_sql("BEGIN TRANSACTION")
            self._begun = True

    def append(self, name: str, expr) -> None:
        self._write()
        self.con.insert(name, expr.select(*TABLES[name].names))

    def replace(self, name: str, expr, ingest_id: str) -> None:
        self._write()
        tmp = f"_replace_{name}_{ingest_id}"
        self.con.create_table(tmp, expr.select(*TABLES[name].names), temp=True)
        self._pending[name] = tmp

    def cache(self, expr):
        self._n_cache = getattr(self, "_n_cache", 0) + 1
        name = f"_cache_{os.getpid()}_{self._n_cache}"  # a temporary table: gone with the connection
        self.con.create_table(name, expr, temp=True)
        return self.con.table(name)

    def pending_count(self, name: str) -> int:
        tmp = self._pending.get(name)
        return int(self.scalar((self.con.table(tmp) if tmp else self.table(name)).count()))

    def commit(self, ingest_id: str) -> None:
        self._write()
        for name, tmp in self._pending.items():
            self.con.raw_sql(f"DELETE FROM {name}")
            self.con.raw_sql(f"INSERT INTO {name} BY NAME SELECT * FROM {tmp}")
            self.con.raw_sql(f"DROP TABLE {tmp}")
        self._pending = {}
        self.con.raw_sql("COMMIT")
        self._begun = True

    def rollback(self, ingest_id: str) -> None:
        self._pending = {}
        begun, self._begun = self._begun, True
        if not begun:  # nothing was written
            return
        try:
            self.con.raw_sql("ROLLBACK")
        except Exception:  # noqa: BLE001 - nothing to roll back
            pass

    def close(self) -> None:
        self.con.disconnect()


DUCKDB_MAGIC = b"DUCK"  # bytes 8-11 of a DuckDB database file


def _check_duckdb_path(path: str, read_only: bool) -> None:
    """``db`` for the DuckDB engine: an existing DuckDB file, or (to write) a new file in an existing folder."""
    from billshape.errors import BillshapeInputError

    allowed = "a DuckDB usage database file" + ("" if read_only else " (or a new file in an existing folder)")
    if os.path.isdir(path):
        raise BillshapeInputError("db", path, allowed, "this is a directory; `engine` spark keeps its database in a directory")
    if os.path.exists(path):
        try:
            with open(path, "rb") as f:
                head = f.read(12)
        except OSError as exc:
            raise BillshapeInputError("db", path, allowed, exc.strerror or type(exc).__name__) from None
        if head[8:12] != DUCKDB_MAGIC:
            raise BillshapeInputError("db", path, allowed, "this file is not a DuckDB database")
        return
    if read_only:
        raise BillshapeInputError("db", path, "an existing usage database (run `billshape usage ingest` first)")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise BillshapeInputError("db", path, allowed, f"folder {folder} does not exist")


_SPARK = None

#: Spark settings of billshape's session: UTC, small shuffles, no web UI, no console progress bar, ANSI SQL
SPARK_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.ansi.enabled": "true",
}


def _check_spark() -> None:
    """The spark engine's extra (PySpark) is installed, else :class:`~billshape.errors.MissingExtra` (the CLI's one
    line, exit 2: ``pip install 'billshape[spark]'``), before Ibis would give its own advice."""
    from billshape._extras import check

    check("spark", "the spark engine")


def _quiet_context(conf) -> None:
    """Start the SparkContext on a JVM whose stdout and stderr go to ``BILLSHAPE_SPARK_LOG`` (appended) or
    nowhere: the JVM's own warnings, log4j's console lines and stage progress never reach billshape's output.
    Spark's errors still reach Python as exceptions."""
    import subprocess

    from pyspark import SparkContext
    from pyspark.java_gateway import launch_gateway

    log = os.environ.get("BILLSHAPE_SPARK_LOG")
    sink = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - the JVM writes to it while it runs
    gateway = launch_gateway(conf, popen_kwargs={"stdout": sink, "stderr": sink})
    SparkContext(conf=conf, gateway=gateway)


def spark_session():
    """One local Spark session per process (UTC, small shuffles, quiet: see :func:`_quiet_context`); Java must be
    on PATH. An active SparkContext (a notebook's, or ``pyspark``'s shell) is used as it is."""
    global _SPARK
    if _SPARK is None:
        _check_spark()
        if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
            from billshape.errors import BillshapeInputError

            raise BillshapeInputError("engine", "spark", "duckdb, or spark with Java 17+ on PATH", "java not found")
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        from pyspark import SparkConf, SparkContext
        from pyspark.sql import SparkSession

        conf = SparkConf().setMaster(os.environ.get("BILLSHAPE_SPARK_MASTER", "local[2]")).setAppName("billshape-usage")
        conf.setAll([*SPARK_CONF.items(), ("spark.sql.shuffle.partitions", os.environ.get("BILLSHAPE_SPARK_PARTITIONS", "4"))])
        if SparkContext._active_spark_context is None:
            _quiet_context(conf)
        _SPARK = SparkSession.builder.config(conf=conf).getOrCreate()
        _SPARK.sparkContext.setLogLevel("ERROR")
    return _SPARK


class SparkStore(Store):
    engine = "spark"

    def __init__(self, path: str, read_only: bool = False):
        _check_spark()
        if read_only and not os.path.isdir(path):
            from billshape.errors import BillshapeInputError

            raise BillshapeInputError("db", path, "an existing usage directory (run `billshape usage ingest --engine spark` first)")
        if not read_only and os.path.isfile(path):
            from billshape.errors import BillshapeInputError

            raise BillshapeInputError("db", path, "a directory for `engine` spark (this is a file, e.g. a DuckDB database)")
        self.path = path
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            from billshape.errors import BillshapeInputError

            raise BillshapeInputError("db", path, "a directory for `engine` spark that can be created", exc.strerror or type(exc).__name__) from None
        self.con = ibis.pyspark.connect(spark_session())
        self._n = 0

    def _read_manifest(self) -> dict:
        try:
            with open(os.path.join(self.path, "_manifest.json"), encoding="utf-8") as f:
                m = json.load(f)
        except FileNotFoundError:
            m = {}
        return {"ingests": m.get("ingests", []), "replaced": m.get("replaced", {})}

    @property
    def manifest(self) -> list[str]:
        return self._read_manifest()["ingests"]

    def _write_manifest(self, ingests: list[str], replaced: dict[str, list[str]] | None = None) -> None:
        tmp = os.path.join(self.path, "_manifest.json.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"ingests": ingests, "replaced": replaced or {}}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, os.path.join(self.path, "_manifest.json"))

    def _visible(self, name: str) -> list[str]:
        """Committed partitions of a table, minus those a later commit replaced."""
        m = self._read_manifest()
        gone = set(m["replaced"].get(name, []))
        return [i for i in m["ingests"] if i not in gone]

    def table(self, name: str):
        root = os.path.join(self.path, name)
        paths = [os.path.join(root, f"ingest_id={i}") for i in self._visible(name) if os.path.isdir(os.path.join(root, f"ingest_id={i}"))]
        if not paths:
            return self.register(f"_empty_{name}", TABLES[name].empty_table())
        df = self.con._session.read.option("basePath", root).option("mergeSchema", "true").parquet(*paths)
        from pyspark.sql import functions as F

        for f in TABLES[name]:  # columns added since older partitions were written
            if f.name not in df.columns:
                df = df.withColumn(f.name, F.lit(None).cast(_spark_type(f.type)))
        self._n += 1
        view = f"_{name}_{self._n}"
        df.createOrReplaceTempView(view)
        return self.con.table(view).select(*TABLES[name].names)

    def register(self, name: str, data: pa.Table):
        session = self.con._session
        df = session.createDataFrame(data) if data.num_rows else session.createDataFrame([], _spark_schema(data.schema))
        df.createOrReplaceTempView(name)
        return self.con.table(name)

    def begin(self) -> None:
        self._replacing: dict[str, int] = {}
        m = self._read_manifest()
        committed = set(m["ingests"])
        for name in TABLES:  # leftovers of ingests that never committed, and partitions replaced since
            root = os.path.join(self.path, name)
            gone = set(m["replaced"].get(name, []))
            if os.path.isdir(root):
                for d in os.listdir(root):
                    if d.startswith("ingest_id=") and (d.split("=", 1)[1] not in committed or d.split("=", 1)[1] in gone):
                        shutil.rmtree(os.path.join(root, d), ignore_errors=True)

    def append(self, name: str, expr) -> None:
        self.con.to_parquet(expr.select(*TABLES[name].names), os.path.join(self.path, name), mode="append", partitionBy="ingest_id")

    def replace(self, name: str, expr, ingest_id: str) -> None:
        # every row goes into this commit's partition; the manifest swap hides the table's older partitions
        # (the rows kept take this commit's ingest_id: Spark partitions by it)
        self.append(name, expr.mutate(ingest_id=ibis.literal(ingest_id)))
        self._replacing = {**getattr(self, "_replacing", {}), name: ingest_id}

    def pending_count(self, name: str) -> int:
        ingest_id = getattr(self, "_replacing", {}).get(name)
        if ingest_id is None:
            return int(self.scalar(self.table(name).count()))
        root = os.path.join(self.path, name, f"ingest_id={ingest_id}")
        return self.con._session.read.parquet(root).count() if os.path.isdir(root) else 0

    def commit(self, ingest_id: str) -> None:
        m = self._read_manifest()
        replaced = dict(m["replaced"])
        for name in getattr(self, "_replacing", {}):
            replaced[name] = sorted(set(replaced.get(name, [])) | set(self._visible(name)))
        self._replacing = {}
        self._write_manifest([*m["ingests"], ingest_id], replaced)

    def rollback(self, ingest_id: str) -> None:
        for name in TABLES:
            shutil.rmtree(os.path.join(self.path, name, f"ingest_id={ingest_id}"), ignore_errors=True)


def _spark_type(t: pa.DataType):
    from pyspark.sql import types as T

    if pa.types.is_string(t):
        return T.StringType()
    if pa.types.is_int64(t):
        return T.LongType()
    if pa.types.is_timestamp(t):
        return T.TimestampType()
    if pa.types.is_date32(t):
        return T.DateType()
    if pa.types.is_boolean(t):  # the rate table's tier_known
        return T.BooleanType()
    if pa.types.is_decimal(t):
        return T.DecimalType(t.precision, t.scale)
    raise TypeError(t)


def _spark_schema(schema: pa.Schema):
    from pyspark.sql import types as T

    return T.StructType([T.StructField(f.name, _spark_type(f.type), True) for f in schema])


def _duck_type(t: pa.DataType) -> str:
    if pa.types.is_string(t):
        return "VARCHAR"
    if pa.types.is_int64(t):
        return "BIGINT"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ"
    raise TypeError(t)


#: The engine when ``engine`` is not given.
DEFAULT_ENGINE = "duckdb"


def open_store(path: str, engine: str | None = None, read_only: bool = False) -> Store:
    engine = engine or DEFAULT_ENGINE
    if engine == "duckdb":
        return DuckDBStore(path, read_only=read_only)
    if engine == "spark":
        return SparkStore(path, read_only=read_only)
    from billshape.errors import BillshapeInputError

    raise BillshapeInputError("engine", engine, "duckdb or spark")


# ------------------------------------------------------------------------------------------ expressions

def _round_micro(tokens, price):
    """Integer micro-dollars of ``tokens x price`` (price in USD per million tokens = micro-dollars per token)."""
    exact = tokens.cast(DEC_TOKENS) * price
    return exact.round(0).cast("int64")


def _micro(usd):
    """A price in USD per unit as micro-dollars per unit, in a decimal wide enough for any price the readers take."""
    return (usd.cast(DEC_TOKENS) * ibis.literal(MICRO, dt.Decimal(7, 0))).cast(DEC_TOKENS)


def cost_columns(t, prefix: str = "") -> dict:
    """Per-row cost components [integer micro-dollars] of a table that has token and price columns.

    Uncached text input at the input price; cache reads and writes at their prices (the input price when the
    model has none), the 1-hour cache writes (``cache_write_1h_tokens``, a part of ``cache_write_tokens``) at the
    price table's ``cache_write_1h_mtok`` (genai-prices' own, else the input price x
    ``anthropic_cache_write_1h_input_multiplier``: :func:`billshape.usage.prices.one_hour_write_prices`; the
    cache-write price where the table has none), both in ``usd_micro_cache_write``; text output at the output
    price; per-request fees. Tiered (long-context) prices apply to a
    single request whose input exceeds the tier start, to all its tokens, as providers bill them.
    Multimodal and per-unit terms (:data:`billshape.usage.schema.UNIT_FIELDS`): image and audio tokens at their
    modality's prices (input image tokens at the input price when the model has no image price), images,
    seconds and web-search calls at their per-unit prices. Every price is first multiplied by the row's service
    tier multiplier (:func:`tier_multiplier`; 1 for a row without a tier).
    """
    p = lambda name: t[prefix + name]  # noqa: E731
    zero = ibis.literal(0, dt.Decimal(18, 9))
    tier = p("tier_start").notnull() & (t.requests == 1) & (t.input_tokens > p("tier_start"))

    def price(name, component):
        base = p(name) if name == "input_mtok" or name == "output_mtok" else p(name).coalesce(p("input_mtok"))
        tiered = p("tier_" + name).coalesce(p("tier_input_mtok") if name.startswith("cache") else p("tier_" + name)).coalesce(base)
        return _tiered_price(ibis.ifelse(tier, tiered, base).coalesce(zero), t, component, prefix)

    def one_hour_price():  # the price table's 1-hour write price (a table without it: the cache-write price)
        cw_base = p("cache_write_mtok").coalesce(p("input_mtok"))
        cw_tier = p("tier_cache_write_mtok").coalesce(p("tier_input_mtok")).coalesce(cw_base)
        have = prefix + "cache_write_1h_mtok" in t.columns
        base = p("cache_write_1h_mtok").coalesce(cw_base) if have else cw_base
        tiered = p("tier_cache_write_1h_mtok").coalesce(cw_tier) if have else cw_tier
        return _tiered_price(ibis.ifelse(tier, tiered, base).coalesce(zero), t, "cache_write", prefix)

    def unit_price(name, component, fallback=None):
        col = p(name) if prefix + name in t.columns else ibis.null(dt.Decimal(18, 9))
        return _tiered_price((col if fallback is None else col.coalesce(fallback)).coalesce(zero), t, component, prefix)

    n = {f: (t[f].coalesce(0) if f in t.columns else ibis.literal(0, "int64")) for f in UNIT_FIELDS}
    n["cache_write_1h_tokens"] = ibis.least(n["cache_write_1h_tokens"], t.cache_write_tokens)  # whatif may cap the writes
    uncached = t.input_tokens - t.cache_read_tokens - t.cache_write_tokens - n["input_image_tokens"] - n["input_audio_tokens"]
    text_out = t.output_tokens - n["output_image_tokens"] - n["output_audio_tokens"]
    kpr = _tiered_price(p("requests_kpr").coalesce(zero) * 1000, t, "requests", prefix)
    input_price = ibis.ifelse(tier, p("tier_input_mtok").coalesce(p("input_mtok")), p("input_mtok"))
    cols = {
        "usd_micro_input": _round_micro(uncached, price("input_mtok", "input")),
        "usd_micro_cache_read": _round_micro(t.cache_read_tokens, price("cache_read_mtok", "cache_read")),
        # 5-minute writes at the cache-write price, 1-hour writes (a part of the cache writes) at theirs
        "usd_micro_cache_write": _round_micro(t.cache_write_tokens - n["cache_write_1h_tokens"], price("cache_write_mtok", "cache_write"))
        + _round_micro(n["cache_write_1h_tokens"], one_hour_price()),
        "usd_micro_output": _round_micro(text_out, price("output_mtok", "output")),
        "usd_micro_requests": _round_micro(t.requests, kpr),
        "usd_micro_image": _round_micro(n["input_image_tokens"], unit_price("input_image_mtok", "image", input_price))
        + _round_micro(n["output_image_tokens"], unit_price("output_image_mtok", "image")),
        "usd_micro_audio": _round_micro(n["input_audio_tokens"], unit_price("input_audio_mtok", "audio"))
        + _round_micro(n["output_audio_tokens"], unit_price("output_audio_mtok", "audio")),
        # per-unit prices in micro-dollars: widened first (decimal(18, 9) holds under $1e9, so $1,000 x 1e6
        # micro-dollars, the readers' cap, would overflow it)
        "usd_micro_images": _round_micro(n["images_generated"], _micro(unit_price("usd_per_image", "images"))),
        "usd_micro_seconds": _round_micro(n["seconds_generated"], _micro(unit_price("usd_per_second", "seconds"))),
        "usd_micro_web_search": _round_micro(n["web_search_calls"], _micro(unit_price("usd_per_web_search", "web_search"))),
    }
    return cols


@ibis.udf.scalar.builtin
def md5(value: str) -> str:
    """Hex MD5 of a string (DuckDB's and Spark's ``md5``: the same 32 hex digits on either engine)."""


@ibis.udf.scalar.builtin(name="epoch_us")
def _duckdb_epoch_us(ts: dt.Timestamp(timezone="UTC")) -> dt.int64:
    """Microseconds since the epoch (DuckDB)."""


@ibis.udf.scalar.builtin(name="unix_micros")
def _spark_epoch_us(ts: dt.Timestamp(timezone="UTC")) -> dt.int64:
    """Microseconds since the epoch (Spark; Ibis's PySpark backend has no microsecond extraction)."""


EPOCH_US = {"duckdb": _duckdb_epoch_us, "spark": _spark_epoch_us}


def _part(v):
    """One field of a content key as text: integers in decimal, strings length-prefixed (``5:gpt-4``, so that no
    separator inside a value can make two rows alike), a null as ``-``."""
    if v.type().is_string():
        return (v.length().cast("string") + ":" + v).coalesce("-")
    return v.cast("string").coalesce("-")


def content_hash(t, engine: str = "duckdb"):
    """MD5 of a row's normalised fields: its timestamp (microseconds since the epoch) and
    :data:`~billshape.usage.schema.CONTENT_KEY_FIELDS`, as text joined by ``|``, then each of
    :data:`~billshape.usage.schema.CONTENT_KEY_NONZERO_FIELDS` that is non-zero as ``|name=value``. The one place
    the content key is defined; the same 32 hex digits on DuckDB and on Spark."""
    parts = [_part(EPOCH_US[engine](t.ts)), *[_part(t[f]) for f in CONTENT_KEY_FIELDS]]
    for f in CONTENT_KEY_NONZERO_FIELDS:  # only where non-zero: the rows without them keep their older keys
        if f in t.columns:
            v = t[f].coalesce(0)
            parts.append(ibis.ifelse(v != 0, ibis.literal(f"{f}=") + v.cast("string"), ibis.null("string")))
    # one concat_ws (it skips the nulls; every other part is non-null): a chain of ``||`` built the text part by
    # part, each step copying it, and was 1.1 s of a 1M-row ingest without ids; this builds it in 0.35 s
    return md5(ibis.literal("|").join(parts))


def _with_content_key(t, engine: str, name: str = "content_key"):
    """``t`` with column ``name``: ``row:<content_hash>:<n>``, ``n`` the row's occurrence (0, 1, ...) among the rows
    of its file with the same hash, in file order. The hash is computed once, and the rows are numbered only where
    a hash repeats in its file (a hash aggregate finds them; the rest take 0): a window over every row sorted the
    whole wide row by a 32-digit key and was most of the time of an ingest without request ids (docs/usage.md)."""
    u = _occurrence(t.mutate(_h=content_hash(t, engine)), ["file_hash", "_h"], ["row_index"], "_occ")
    return u.mutate(**{name: ibis.literal(CONTENT_KEY_PREFIX) + u._h + ":" + u._occ.cast("string")}).drop("_h", "_occ")


def _occurrence(t, keys: list[str], order_by: list[str], name: str):
    """``t`` with column ``name``: each row's occurrence (0, 1, ...) among the rows with the same ``keys``, in
    ``order_by`` order. Only the rows whose keys repeat are numbered (a hash aggregate finds them; the rest take
    0): a window over every row sorts the whole wide row, and was most of an ingest's time (docs/usage.md).
    Rows with a null key take 0."""
    rep = t.group_by(keys).aggregate(_n=ibis._.count()).filter(ibis._._n > 1).select(*keys)
    many = t.semi_join(rep, keys).mutate(
        **{name: ibis.row_number().over(group_by=[ibis._[k] for k in keys], order_by=[ibis._[k] for k in order_by])})
    many = many.mutate(**{name: many[name].cast("int64")})
    one = t.anti_join(rep, keys).mutate(**{name: ibis.literal(0, "int64")})
    return many.union(one.select(*many.columns))


def _positional(t):
    """Rows the reader keyed by their position in the file (``file hash:...``): they carry no id."""
    return t.row_key.left(65) == t.file_hash + ":"


def keyed(stage, engine: str = "duckdb", id_rows: bool = True):
    """The stage with its final ``row_key`` and its ``content_key`` (:func:`_with_content_key`).

    Two identical requests in one file stay two rows, and the same row in a corrected copy of the file gets the
    same key. A row the reader keyed by its position (it has no request, span or response id) takes its content
    key as its ``row_key``; a row with an id keeps its id key, and its content key is kept beside it (to find the
    same request ingested before under the other kind of key) when ``id_rows``; else it is left null, and computed
    when a later ingest needs it (:func:`_ledger_content_keys`). A row already content-keyed (a quarantined row
    being re-priced) keeps its key."""
    content = stage.row_key.left(len(CONTENT_KEY_PREFIX)) == CONTENT_KEY_PREFIX
    if not id_rows:  # key only the rows without an id (the hash and its window over those rows alone)
        idless = stage.filter(_positional(stage) | content)
        rest = stage.filter(~(_positional(stage) | content)).mutate(content_key=ibis.null("string"))
        return keyed(idless, engine).union(rest.select(*keyed(idless, engine).columns))
    k = _with_content_key(stage, engine, "_ck")
    return k.mutate(content_key=ibis.ifelse(k.row_key.left(len(CONTENT_KEY_PREFIX)) == CONTENT_KEY_PREFIX, k.row_key, k._ck)).mutate(
        row_key=ibis.ifelse(_positional(ibis._), ibis._.content_key, ibis._.row_key)).drop("_ck")


def needs_content_keys(stage, ledger) -> tuple:
    """Scalar expressions (does the stage hold rows without an id; does the ledger): content keys of rows with an
    id, and the re-key test, are computed only when the other side has rows without one."""
    return (stage.filter(_positional(stage)).count() > 0,
            ledger.filter((ledger.row_key == ledger.content_key) | _positional(ledger)).count() > 0)


def _ledger_content_keys(ledger, engine: str, with_ids: bool = True):
    """Content keys a new row is matched against when its key is new: (for a row with an id: the ledger's rows
    without one; for a row without an id: the ledger's rows with one). Rows from before content keys
    (``content_key`` null) get theirs computed here, at each ingest; those keyed by position (``file hash:row``)
    are in both sets, their keys being of neither kind. ``with_ids`` False (the stage has no row without an id):
    rows with an id and no content key are not keyed (nothing would be matched against them)."""
    ck = ledger.content_key
    old = ledger.filter(ck.isnull() & (_positional(ledger) if not with_ids else ibis.literal(True)))
    old = _with_content_key(old, engine, "k").mutate(idless=_positional(ibis._))
    idless = ledger.filter(ledger.row_key == ck).select(k=ck).union(old.filter(old.idless).select("k"))
    with_id = ledger.filter(ck.notnull() & (ledger.row_key != ck)).select(k=ck).union(old.select("k"))
    return idless.k, with_id.k


#: Quarantine reasons of rows whose unit has no price: (count column, price column, reason prefix).
UNPRICED_UNITS = (
    ("input_audio_tokens", "input_audio_mtok"), ("output_audio_tokens", "output_audio_mtok"),
    ("output_image_tokens", "output_image_mtok"), ("images_generated", "usd_per_image"),
    ("seconds_generated", "usd_per_second"), ("web_search_calls", "usd_per_web_search"),
)


def priced(stage, prices, ledger, ingest_id: str, cache=None, engine: str = "duckdb", idless=(True, True)):
    """Split a stage into priced rows (ledger) and quarantined rows with a reason, in the engine.

    ``prices``: the stage's rate table (:func:`billshape.usage.rates.rate_table`: one row per provider, model, UTC
    day and service tier, every component's tiered price computed once); costs are integer arithmetic on its
    rates (:func:`billshape.usage.rates.rate_costs`).
    Keys first (:func:`keyed`), then the duplicate tests against ``ledger`` (the ledger as it was) and within
    the stage: a row whose ``row_key`` is there already is a duplicate; a row whose key is new but whose content
    key is there on a row keyed the other way (id vs no id) is :data:`~billshape.usage.schema.REKEYED`.
    ``cache(table)``: materialises the keyed, priced join once (both outputs read it), e.g. ``Table.cache``;
    ``engine``: the store's (``duckdb`` or ``spark``), for the timestamp in the content key and the integer
    division; ``idless``: whether the stage and the ledger hold rows without an id (:func:`needs_content_keys`;
    ``(True, True)``: assume so)."""
    from billshape.usage.rates import rate_costs

    stage_idless, ledger_idless = idless
    s = keyed(stage, engine, id_rows=ledger_idless)
    s = _occurrence(s, ["row_key"], ["file_hash", "row_index"], "_rn")  # _rn > 0: a later copy within the stage
    s = s.mutate(
        _pk=s.provider.coalesce(""),
        _day=s.ts.date(),
        _idless=s.row_key == s.content_key,
    )
    j = s.left_join(prices, [s._pk == prices.provider_key, s.model == prices.model, s._day == prices.day,
                             s.service_tier.identical_to(prices.service_tier)])
    j = j.select(*[c for c in j.columns if not c.endswith("_right")])
    dup = (j._rn > 0) | j.row_key.isin(ledger.row_key)
    if stage_idless or ledger_idless:
        idless_keys, id_keys = _ledger_content_keys(ledger, engine, with_ids=stage_idless)
        rekeyed = ~dup & ibis.ifelse(j._idless, j.content_key.isin(id_keys), j.content_key.isin(idless_keys))
    else:
        rekeyed = ibis.literal(False)
    tokens = (j.input_tokens > 0) | (j.output_tokens > 0) | j.price_source.isnull()
    no_price = j.price_error.notnull() | (j.input_mtok.isnull() & tokens)
    unknown = ~j.tier_known.fill_null(True)
    unit_miss = {f"_miss_{c}": (j[c].coalesce(0) > 0) & j[pc].isnull() for c, pc in UNPRICED_UNITS}
    unpriced = no_price | unknown
    for miss in unit_miss.values():
        unpriced = unpriced | miss
    fields = (*COST_FIELDS, *UNIT_COST_FIELDS)
    j = j.mutate(_dup=dup, _rekeyed=rekeyed, _unpriced=unpriced, _no_price=no_price, _unknown=unknown, **unit_miss,
                 **rate_costs(j, engine))
    # what the two outputs read (the rates and prices stay behind: a narrower table to materialise)
    j = j.select(*STAGE.names, "content_key", "price_model", "price_source", "price_error", "_dup", "_rekeyed",
                 "_unpriced", "_no_price", "_unknown", *unit_miss, *fields)
    if cache is not None:
        j = cache(j)
    reason = ibis.cases(
        (j._dup, DUPLICATE),
        (j._rekeyed, REKEYED),
        (j._no_price, j.price_error.coalesce("no price")),
        (j._unknown, ibis.literal("unknown service tier ") + j.service_tier + " for provider " + j.provider.coalesce("(none)")
         + " and model " + j.model + " (no row in service_tiers.csv)"),
        *[(j[f"_miss_{c}"], ibis.literal(f"no price for {c} (model ") + j.model + ")") for c, _ in UNPRICED_UNITS],
        else_=ibis.literal("no price"),
    )
    bad = j._dup | j._rekeyed | j._unpriced
    ok = j.filter(~bad)
    ledger_rows = ok.mutate(
        usd_micro=sum((ok[c] for c in fields[1:]), ok[fields[0]]),
        ingest_id=ibis.literal(ingest_id),
    )
    quarantine = j.filter(bad).mutate(reason=reason, detail=j.model, ingest_id=ibis.literal(ingest_id))
    return ledger_rows, quarantine


def repriceable(quarantine):
    """Quarantined rows that kept their record and were quarantined for want of a price (not duplicates)."""
    q = quarantine
    return q.model.notnull() & q.ts.notnull() & q.requests.notnull() & (q.reason != DUPLICATE) & (q.reason != REKEYED)


def as_stage(quarantine):
    """Quarantined rows back as stage records (for :func:`priced`)."""
    return quarantine.select(*STAGE.names)


DIMENSION_KEYS = {
    "customer": lambda t: t.customer.coalesce("(none)"),
    "feature": lambda t: t.feature.coalesce("(none)"),
    "project": lambda t: t.project.coalesce("(none)"),
    "user": lambda t: t.user_id.coalesce("(none)"),
    "model": lambda t: t.model,
    "provider": lambda t: t.provider.coalesce("(none)"),
    "day": lambda t: t.ts.date().cast("string"),
    "month": lambda t: t.ts.date().cast("string").left(7),
}


def with_reported(ledger):
    """The ledger with its ``reported_usd_micro`` column (all null in a database from before the column, read-only)."""
    return ledger if "reported_usd_micro" in ledger.columns else ledger.mutate(reported_usd_micro=ibis.null("int64"))


def attribution(ledger, by: str):
    """Requests, tokens and integer micro-dollars grouped by a dimension, largest spend first; beside them the
    cost the sources reported (``reported_usd_micro``: null where no row of the group carries one)."""
    ledger = with_reported(ledger)
    g = ledger.mutate(key=DIMENSION_KEYS[by](ledger)).group_by("key").aggregate(
        requests=ledger.requests.sum(),
        input_tokens=ledger.input_tokens.sum(),
        cache_read_tokens=ledger.cache_read_tokens.sum(),
        output_tokens=ledger.output_tokens.sum(),
        usd_micro=ledger.usd_micro.sum(),
        reported_usd_micro=ledger.reported_usd_micro.sum(),
    )
    return g.order_by([ibis.desc("usd_micro"), "key"])


def reported_totals(ledger):
    """Over the rows whose source reported a cost: their count, the reported total and billshape's total."""
    t = with_reported(ledger)
    t = t.filter(t.reported_usd_micro.notnull())
    return t.aggregate(rows=t.count(), reported_usd_micro=t.reported_usd_micro.sum(), usd_micro=t.usd_micro.sum())


def attribution_customer_model(ledger):
    """The benchmark's query: spend by customer and model."""
    return ledger.group_by(["customer", "model"]).aggregate(
        requests=ledger.requests.sum(), input_tokens=ledger.input_tokens.sum(),
        output_tokens=ledger.output_tokens.sum(), usd_micro=ledger.usd_micro.sum(),
    )


def model_mix(ledger):
    """Per model and price source: requests, tokens and cost components (the serving routes of a scenario)."""
    return ledger.group_by(["model", "price_model", "price_source"]).aggregate(
        requests=ledger.requests.sum(),
        input_tokens=ledger.input_tokens.sum(),
        cache_read_tokens=ledger.cache_read_tokens.sum(),
        cache_write_tokens=ledger.cache_write_tokens.sum(),
        output_tokens=ledger.output_tokens.sum(),
        **{c: ledger[c].sum() for c in COST_FIELDS},
    ).order_by([ibis.desc("requests"), "model", "price_source"])


def totals(ledger):
    return ledger.aggregate(
        rows=ledger.count(),
        requests=ledger.requests.sum(),
        input_tokens=ledger.input_tokens.sum(),
        cache_read_tokens=ledger.cache_read_tokens.sum(),
        cache_write_tokens=ledger.cache_write_tokens.sum(),
        output_tokens=ledger.output_tokens.sum(),
        reasoning_tokens=ledger.reasoning_tokens.sum(),
        usd_micro=ledger.usd_micro.sum(),
        users=ledger.user_id.nunique(),
        customers=ledger.customer.nunique(),
        first_ts=ledger.ts.min(),
        last_ts=ledger.ts.max(),
    )


# ------------------------------------------------------------------------------------------ watch (read-only)

def group_series(ledger, by: str | None, grain: str = "day"):
    """Requests, tokens and integer micro-dollars per group and day (or hour: ``grain="hour"``), in time order;
    ``by`` None: one group, ``(all)``. Read-only: the series that ``usage forecast|check|anomalies`` read."""
    key = ibis.literal("(all)") if by is None else DIMENSION_KEYS[by](ledger)
    period = ledger.ts.truncate("h") if grain == "hour" else ledger.ts.truncate("D")
    t = ledger.mutate(key=key, period=period)
    return t.group_by(["key", "period"]).aggregate(
        requests=t.requests.sum(), input_tokens=t.input_tokens.sum(), output_tokens=t.output_tokens.sum(),
        usd_micro=t.usd_micro.sum(), users=t.user_id.nunique(),
    ).order_by(["key", "period"])


def rows_in(ledger, by: str | None, key: str, start, end, limit: int = 5):
    """The ledger's rows of group ``key`` with ``start <= ts < end``, the costliest first (at most ``limit``)."""
    k = ibis.literal("(all)") if by is None else DIMENSION_KEYS[by](ledger)
    t = ledger.filter((k == key) & (ledger.ts >= start) & (ledger.ts < end))
    cols = ["ts", "source_file", "row_index", "customer", "feature", "model", "requests", "input_tokens", "output_tokens",
            "usd_micro"]
    return t.select(*[c for c in cols if c in t.columns]).order_by([ibis.desc("usd_micro"), "ts"]).limit(limit)
