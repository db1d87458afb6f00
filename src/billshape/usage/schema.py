"""The normalised usage record, the ledger and the quarantine, as Arrow schemas.

Token semantics after normalisation (whatever the source):

* ``input_tokens`` counts *all* prompt tokens, cached or not (OpenAI and Gemini report it this way;
  Anthropic's ``input_tokens`` excludes cache reads and cache writes, so the reader adds them back);
* ``cache_read_tokens`` and ``cache_write_tokens`` are parts of ``input_tokens``; ``cache_write_1h_tokens`` (Anthropic's
  1-hour cache writes, billed at their own rate) is a part of ``cache_write_tokens``, 0 where the source gives none;
* ``output_tokens`` counts all generated tokens, reasoning included (Gemini's ``thoughtsTokenCount`` is
  reported beside ``candidatesTokenCount``, so the reader adds it); ``reasoning_tokens`` is a part of it.

Money in the ledger is integer micro-dollars (1e-6 USD) per row and per price component, so that every
total is an exact integer sum and reconciles to the cent.
"""

from __future__ import annotations

import pyarrow as pa

TOKEN_FIELDS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")
DIMENSIONS = ("customer", "feature", "project", "user_id")

#: Largest token count one row may carry: 10^12 tokens (a day of a large organisation's traffic on one model is
#: ~10^10-10^11; more in one row is a corrupt value). Rows above it are quarantined as "<field> out of range".
#: With prices capped at 10^6 USD per million tokens (``--prices``), every per-row cost in integer micro-dollars
#: (tokens x USD per million tokens) stays below 10^18, inside int64, and every count is exact as a float.
MAX_TOKENS_PER_ROW = 10**12
#: Largest request count one (aggregate) row may carry.
MAX_REQUESTS_PER_ROW = 10**12

#: Multimodal and non-token units of a row (added after ``reported_usd_micro``; null in rows from before them, read
#: as 0). Image and audio tokens are *parts* of ``input_tokens`` / ``output_tokens``, uncached, and disjoint from
#: the cache tokens: they are charged at their modality's price instead of the text price. The other three are
#: counts billed per unit (per generated image, per second of generated audio or video, per web-search call).
MODALITY_TOKEN_FIELDS = ("input_image_tokens", "output_image_tokens", "input_audio_tokens", "output_audio_tokens")
COUNT_FIELDS = ("images_generated", "seconds_generated", "web_search_calls")
#: Parts of a token field billed at a rate of their own (added after the unit counts): Anthropic's 1-hour prompt-cache
#: writes, a part of ``cache_write_tokens`` (the rest are 5-minute writes). 0 (or null, in older rows) where the source
#: reports no split: those writes are priced at the cache-write rate, as before.
CACHE_PART_FIELDS = ("cache_write_1h_tokens",)
UNIT_FIELDS = (*MODALITY_TOKEN_FIELDS, *COUNT_FIELDS, *CACHE_PART_FIELDS)
#: Largest per-unit count one row may carry (images, seconds, web searches): with per-unit prices capped at
#: :data:`MAX_USD_PER_UNIT`, a row's per-unit cost in micro-dollars stays below 10^18 (int64).
MAX_UNITS_PER_ROW = 10**9
MAX_USD_PER_UNIT = 1000

#: The service tier a row was served at, as the source names it, lower case (``default``/``flex``/``priority``
#: from OpenAI, ``standard``/``batch``/``priority`` from Anthropic, ``batch`` for OpenAI usage-export batch rows...);
#: null when the source names none (standard prices). A public column name.
SERVICE_TIER = pa.field("service_tier", pa.string())

#: Fields a ``--map COL=FIELD`` may target (CSV and Parquet readers).
MAPPABLE = ("ts", "provider", "model", "request_id", "requests", *DIMENSIONS, *TOKEN_FIELDS, "service_tier", *UNIT_FIELDS)

#: The cost the source itself recorded for a row (LiteLLM ``spend``, Langfuse's cost details, an OTel cost attribute),
#: integer micro-dollars; null when the source records none. Kept beside billshape's price, never used for it.
REPORTED = pa.field("reported_usd_micro", pa.int64())

STAGE = pa.schema([
    ("row_key", pa.string()),
    ("file_hash", pa.string()),
    ("source_file", pa.string()),
    ("row_index", pa.int64()),
    ("ts", pa.timestamp("us", tz="UTC")),
    ("provider", pa.string()),
    ("model", pa.string()),
    ("customer", pa.string()),
    ("feature", pa.string()),
    ("project", pa.string()),
    ("user_id", pa.string()),
    ("requests", pa.int64()),
    ("input_tokens", pa.int64()),
    ("cache_read_tokens", pa.int64()),
    ("cache_write_tokens", pa.int64()),
    ("output_tokens", pa.int64()),
    ("reasoning_tokens", pa.int64()),
    REPORTED,
    SERVICE_TIER,
    *[(u, pa.int64()) for u in UNIT_FIELDS],
])

#: Fields added after the first ledgers: every stored table keeps them last, in this order (DuckDB appends an
#: added column; a database from an older billshape gains them, empty, when opened for writing).
ADDED = [STAGE.field(n) for n in ("reported_usd_micro", "service_tier", *UNIT_FIELDS)]
_ADDED_NAMES = {f.name for f in ADDED}
#: The stage's fields that every table keeps in this order (the added fields come last).
_RECORD = [f for f in STAGE if f.name not in _ADDED_NAMES]

#: Cost components. ``usd_micro_cache_write`` is the cost of all ``cache_write_tokens``: the 5-minute writes at the
#: cache-write price plus the 1-hour ones (``cache_write_1h_tokens``) at theirs, so that each cost column stays the
#: cost of its unit column (reports, FOCUS rows and reconciliation read it as before).
COST_FIELDS = ("usd_micro_input", "usd_micro_cache_read", "usd_micro_cache_write", "usd_micro_output", "usd_micro_requests")
#: Cost components of the multimodal and per-unit terms (added later: last in the ledger). ``usd_micro`` is the
#: sum of :data:`COST_FIELDS` and these.
UNIT_COST_FIELDS = ("usd_micro_image", "usd_micro_audio", "usd_micro_images", "usd_micro_seconds", "usd_micro_web_search")

LEDGER = pa.schema([
    *_RECORD,
    ("price_model", pa.string()),
    ("price_source", pa.string()),
    *[(c, pa.int64()) for c in COST_FIELDS],
    ("usd_micro", pa.int64()),
    ("ingest_id", pa.string()),
    *ADDED,
    *[(c, pa.int64()) for c in UNIT_COST_FIELDS],
    ("content_key", pa.string()),
])

#: Quarantined rows keep their normalised record when they had one (rows that could not be priced), so that
#: ``billshape usage reprice`` can price them later; unreadable rows have nulls there. ``price_source`` names
#: the price source that was tried. (Columns after ``ingest_id`` were added later: older databases get them,
#: empty, when opened for writing.)
QUARANTINE_RECORD = [f for f in _RECORD if f.name not in ("row_key", "file_hash", "source_file", "row_index")]
QUARANTINE = pa.schema([
    ("row_key", pa.string()),
    ("file_hash", pa.string()),
    ("source_file", pa.string()),
    ("row_index", pa.int64()),
    ("reason", pa.string()),
    ("detail", pa.string()),
    ("ingest_id", pa.string()),
    *QUARANTINE_RECORD,
    ("price_source", pa.string()),
    *ADDED,
])

#: The duplicate reason (never re-priced).
DUPLICATE = "duplicate row (already ingested)"
#: A row whose key is new but whose content key is in the ledger under a key of the other kind (a file ingested
#: without a request id, then a copy of it with ``--map COL=request_id``, or the other way round); never re-priced.
REKEYED = "duplicate row (already ingested under another key)"

#: The fields a row's content key hashes, besides its timestamp (to the microsecond, UTC): every normalised field
#: that says what was used, by whom. A new ledger column that says what a row bought (a service tier, image or
#: audio tokens) belongs here too; ``billshape.usage.engine.content_key`` is the one function that hashes them.
CONTENT_KEY_FIELDS = ("provider", "model", "requests", *TOKEN_FIELDS, *DIMENSIONS, "service_tier", *MODALITY_TOKEN_FIELDS,
                      *COUNT_FIELDS)
#: Fields added to the content key after content keys were first stored: hashed only where non-zero (as
#: ``|name=value``), so that every row without them keeps the key it had (a re-ingested file's rows stay duplicates).
CONTENT_KEY_NONZERO_FIELDS = CACHE_PART_FIELDS
#: Prefix of content keys: ``row:<md5 of the normalised fields>:<occurrence among identical rows of the file>``.
CONTENT_KEY_PREFIX = "row:"

FILES = pa.schema([
    ("file_hash", pa.string()),
    ("source_file", pa.string()),
    ("format", pa.string()),
    ("rows_read", pa.int64()),
    ("ingest_id", pa.string()),
    ("ingested_at", pa.timestamp("us", tz="UTC")),
])

PRICES = pa.schema([
    ("provider_key", pa.string()),
    ("model", pa.string()),
    ("day", pa.date32()),
    ("price_model", pa.string()),
    ("price_source", pa.string()),
    ("price_error", pa.string()),
    ("input_mtok", pa.decimal128(18, 9)),
    ("cache_read_mtok", pa.decimal128(18, 9)),
    ("cache_write_mtok", pa.decimal128(18, 9)),
    ("output_mtok", pa.decimal128(18, 9)),
    ("tier_start", pa.int64()),
    ("tier_input_mtok", pa.decimal128(18, 9)),
    ("tier_cache_read_mtok", pa.decimal128(18, 9)),
    ("tier_cache_write_mtok", pa.decimal128(18, 9)),
    ("tier_output_mtok", pa.decimal128(18, 9)),
    ("requests_kpr", pa.decimal128(18, 9)),
    # multimodal and per-unit prices (USD per million tokens; USD per image, per second, per web search)
    *[(c, pa.decimal128(18, 9)) for c in ("input_image_mtok", "output_image_mtok", "input_audio_mtok", "output_audio_mtok",
                                          "usd_per_image", "usd_per_second", "usd_per_web_search")],
    # Anthropic 1-hour cache writes (USD per million tokens; the long-context tier's): genai-prices' own figure, else
    # the input price x constants.csv anthropic_cache_write_1h_input_multiplier (:func:`billshape.usage.prices.price_for`)
    ("cache_write_1h_mtok", pa.decimal128(18, 9)),
    ("tier_cache_write_1h_mtok", pa.decimal128(18, 9)),
])

MICRO = 1_000_000
