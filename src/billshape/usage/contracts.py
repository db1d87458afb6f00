"""Contract tables: negotiated discounts and spend commitments that turn the ledger's list cost into the
contracted, effective and billed cost FOCUS 1.3 distinguishes.

A contract table (CSV with a header, or YAML: a list of mappings or ``{contracts: [...]}``) has one row per term:

=================  ==========================================================================================
``provider``       the ledger's provider (``openai``, ``anthropic``, ...; ``*`` for any)
``model``          a model as the ledger names it (``*`` for any); matched without a date suffix
                   (``gpt-4o-2024-08-06`` matches ``gpt-4o``), case-insensitive
``service_tier``   ``standard``, ``batch``, ``priority``, ``flex`` (``*`` for any); the ledger's rows are
                   ``standard`` (batch usage is quarantined at ingest)
``discount``       negotiated discount off list price, a fraction in [0, 1]
``commitment_usd`` optional: a prepaid spend commitment [USD] for the period (needs ``period_start`` and
                   ``period_end``)
``period_start``   optional: first day the term applies (ISO date, inclusive)
``period_end``     optional: day the term stops applying (ISO date, exclusive)
``commitment_id``  optional: a name for the commitment (default ``provider/model/service_tier/period_start``)
=================  ==========================================================================================

Rules (FOCUS 1.3, FinOps Foundation FOCUS_Spec, ``specification/datasets/cost_and_usage/columns/``:
contractedcost.md, effectivecost.md, commitmentdiscountstatus.md, commitmentdiscountquantity.md):

* **Discount.** A ledger charge takes the discount of the most specific term that matches it on its day (an exact
  provider, model and tier beat ``*``, in that order of weight). ``ContractedCost = round(ListCost x (1 - discount))``
  to the micro-dollar (half up); without a matching term ``ContractedCost = ListCost``.
* **Commitment** (spend-based, paid up front for its period). The purchase is its own charge (``Purchase``: billed
  the commitment, effective 0). Charges the commitment's row matches (its pattern, not only its most specific
  match) draw it down in time order at their contracted cost: a covered charge is billed only the part the
  remaining commitment did not cover, and its effective cost stays its contracted cost (``CommitmentDiscountStatus``
  "Used"). What is left at the end of the period is an ``Unused`` usage charge whose effective cost is the unused
  amount. So effective cost sums to billed cost: ``max(commitment, used)`` each way.

Money is integer micro-dollars throughout, so every sum is exact.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from billshape.errors import BillshapeInputError

COLUMNS = ("provider", "model", "service_tier", "discount", "commitment_usd", "period_start", "period_end", "commitment_id")
REQUIRED = ("provider", "model", "service_tier", "discount")
TIERS = ("standard", "batch", "priority", "flex", "scale")
#: Largest commitment a row may carry [USD] (far above any AI API contract; keeps micro-dollars inside int64).
MAX_COMMITMENT_USD = Decimal(10) ** 12
MICRO = 1_000_000
_DATE_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")


def model_key(name: str | None) -> str:
    """A model name for matching across sources: lower case, spaces and dots as dashes, no snapshot date
    suffix (``gpt-4o-mini-2024-07-18`` and ``GPT-4o mini`` both give ``gpt-4o-mini``;
    ``claude-3-5-haiku-20241022`` gives ``claude-3-5-haiku``)."""
    text = re.sub(r"[\s.]+", "-", str(name or "").strip().lower())
    return _DATE_SUFFIX.sub("", text)


@dataclass(frozen=True)
class Term:
    """One contract row."""

    provider: str
    model: str
    service_tier: str
    discount: Decimal
    commitment_micro_usd: int | None = None
    period_start: _dt.date | None = None
    period_end: _dt.date | None = None
    commitment_id: str | None = None
    row: int = 0

    def matches(self, provider: str, model: str, service_tier: str, day: _dt.date) -> bool:
        return ((self.provider == "*" or self.provider == (provider or "").lower())
                and (self.model == "*" or self.model == model_key(model))
                and (self.service_tier == "*" or self.service_tier == base_tier(service_tier))
                and (self.period_start is None or day >= self.period_start)
                and (self.period_end is None or day < self.period_end))

    @property
    def specificity(self) -> int:
        return 4 * (self.provider != "*") + 2 * (self.model != "*") + (self.service_tier != "*")


@dataclass(frozen=True)
class Contract:
    """A parsed contract table (``source`` names it in assumptions)."""

    terms: tuple[Term, ...]
    source: str = "<contract>"

    def term_for(self, provider: str, model: str, service_tier: str, day: _dt.date) -> Term | None:
        """The most specific term matching a charge (``None``: list price)."""
        found = [t for t in self.terms if t.matches(provider, model, service_tier, day)]
        return max(found, key=lambda t: t.specificity) if found else None

    @property
    def commitments(self) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if t.commitment_micro_usd is not None)


def base_tier(service_tier: str | None) -> str:
    """The tier a contract term names for a ledger tier: ``standard`` for none, and a long-context tier
    (``batch_long_context``) takes its base tier's terms (``batch``)."""
    return (service_tier or "standard").lower().removesuffix("_long_context")


def _cell(row: dict, col: str) -> str:
    value = row.get(col)
    return "" if value is None else str(value).strip()


def _parse_row(row: dict, where: str, n: int) -> Term:
    def err(col: str, value, allowed: str) -> BillshapeInputError:
        return BillshapeInputError(f"contract {where}:{n} {col}", value, allowed)

    for col in REQUIRED:
        if not _cell(row, col):
            raise err(col, None, {"provider": "a provider (openai, anthropic, ...) or *", "model": "a model name or *",
                                  "service_tier": "one of " + ", ".join(TIERS) + " or *",
                                  "discount": "a fraction in [0, 1]"}[col])
    tier = _cell(row, "service_tier").lower()
    if tier != "*" and tier not in TIERS:
        raise err("service_tier", _cell(row, "service_tier"), "one of " + ", ".join(TIERS) + " or *")
    try:
        discount = Decimal(_cell(row, "discount"))
    except InvalidOperation:
        raise err("discount", _cell(row, "discount"), "a fraction in [0, 1]") from None
    if not discount.is_finite() or not 0 <= discount <= 1:
        raise err("discount", _cell(row, "discount"), "a fraction in [0, 1]")

    def day(col: str) -> _dt.date | None:
        text = _cell(row, col)
        if not text:
            return None
        try:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                raise ValueError(text)
            return _dt.date.fromisoformat(text)
        except ValueError:
            raise err(col, text, "an ISO date (YYYY-MM-DD)") from None

    start, end = day("period_start"), day("period_end")
    if start and end and end <= start:
        raise err("period_end", str(end), f"a date after period_start {start}")
    commitment = None
    text = _cell(row, "commitment_usd")
    if text:
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise err("commitment_usd", text, "a number of USD >= 0") from None
        if not value.is_finite() or not 0 <= value <= MAX_COMMITMENT_USD:
            raise err("commitment_usd", text, f"a number of USD in [0, {MAX_COMMITMENT_USD:,.0f}]")
        if value != value.quantize(Decimal("1e-6")):
            raise err("commitment_usd", text, "at most 6 decimals (micro-dollars)")
        if start is None or end is None:
            raise err("period_start" if start is None else "period_end", None,
                      "an ISO date: a commitment needs `period_start` and `period_end`")
        if _cell(row, "provider") == "*":
            raise err("provider", "*", "one provider for a row with a commitment (a commitment is with one provider)")
        commitment = int(value * MICRO)
    provider, model = _cell(row, "provider").lower(), _cell(row, "model")
    model = "*" if model == "*" else model_key(model)
    cid = _cell(row, "commitment_id") or (f"{provider}/{model}/{tier}/{start}" if commitment is not None else None)
    return Term(provider, model, tier, discount, commitment, start, end, cid, n)


def parse_contract(text: str, name: str = "<contract>") -> Contract:
    """A contract table from its text: CSV for a ``.csv`` name, YAML for ``.yaml``/``.yml``; otherwise CSV when the
    first line is a header naming ``discount`` (no YAML list item or mapping)."""
    first = text.lstrip().splitlines()[0] if text.strip() else ""
    low = name.lower()
    is_csv = low.endswith(".csv") or (not low.endswith((".yaml", ".yml")) and "," in first and "discount" in first.lower()
                                      and not first.lstrip().startswith(("-", "{", "contracts:")))
    if is_csv:
        reader = csv.DictReader(io.StringIO(text))
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise BillshapeInputError("contract", name, "a CSV with columns " + ", ".join(REQUIRED) + " (optional: "
                                      + ", ".join(c for c in COLUMNS if c not in REQUIRED) + ")", f"missing {missing[0]}")
        unknown = [h for h in header if h and h not in COLUMNS and h not in ("source", "as_of", "note")]
        if unknown:
            raise BillshapeInputError(f"contract {name}:1 {unknown[0]}", unknown[0], "one of " + ", ".join(COLUMNS))
        rows = [({(k or "").strip().lower(): v for k, v in r.items()}, i) for i, r in enumerate(reader, start=2)]
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise BillshapeInputError("contract", name, "a CSV or YAML contract table", type(exc).__name__) from None
        if isinstance(data, dict) and "contracts" in data:
            data = data["contracts"]
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise BillshapeInputError("contract", name, "a YAML list of {provider, model, service_tier, discount, ...}")
        rows = []
        for i, r in enumerate(data, start=1):
            r = {str(k).strip().lower(): v for k, v in r.items()}
            unknown = [k for k in r if k not in COLUMNS and k not in ("source", "as_of", "note")]
            if unknown:
                raise BillshapeInputError(f"contract {name}:{i} {unknown[0]}", unknown[0], "one of " + ", ".join(COLUMNS))
            rows.append((r, i))
    if not rows:
        raise BillshapeInputError("contract", name, "a contract table with at least one row")
    terms = [_parse_row(r, name, n) for r, n in rows]
    for i, a in enumerate(terms):  # one term per pattern and day: two would make the discount ambiguous
        for b in terms[:i]:
            same = (a.provider, a.model, a.service_tier) == (b.provider, b.model, b.service_tier)
            overlap = (a.period_start or _dt.date.min) < (b.period_end or _dt.date.max) and \
                      (b.period_start or _dt.date.min) < (a.period_end or _dt.date.max)
            if same and overlap:
                raise BillshapeInputError(f"contract {name}:{a.row} period_start", str(a.period_start or ""),
                                          f"a period that does not overlap row {b.row}'s (same provider, model and tier)")
    ids = [t.commitment_id for t in terms if t.commitment_micro_usd is not None]
    for t in terms:
        if t.commitment_micro_usd is not None and ids.count(t.commitment_id) > 1:
            raise BillshapeInputError(f"contract {name}:{t.row} commitment_id", t.commitment_id, "a commitment id used once")
    return Contract(tuple(terms), name)


def read_contract(source) -> Contract:
    """A contract table from a path, text, bytes or a file object (:func:`billshape.io.read_source`, 20 MB cap)."""
    if isinstance(source, Contract):
        return source
    from billshape.io import read_source

    text, name = read_source(source, "contract", what="a readable CSV or YAML contract table")
    return parse_contract(text, name)


# ------------------------------------------------------------------------------------------ the equations

def contracted_micro_usd(list_micro_usd: int, discount: Decimal | float | str) -> int:
    """Contracted cost [integer micro-dollars] of a charge at list cost ``list_micro_usd`` with a negotiated
    ``discount`` [fraction in 0..1]: ``round(list x (1 - discount))``, half up. Never above the list cost."""
    d = discount if isinstance(discount, Decimal) else Decimal(str(discount))
    return int((Decimal(int(list_micro_usd)) * (1 - d)).to_integral_value(rounding=ROUND_HALF_UP))


@dataclass
class Charge:
    """One priced usage charge to put under a contract (a FOCUS row group of the ledger)."""

    day: _dt.date
    provider: str
    model: str
    list_micro_usd: int
    service_tier: str = "standard"
    # filled by apply_contract
    contracted_micro_usd: int = 0
    effective_micro_usd: int = 0
    billed_micro_usd: int = 0
    discount: Decimal = Decimal(0)
    commitment_id: str | None = None
    commitment_drawn_micro_usd: int = 0


@dataclass
class Commitment:
    """A commitment's outcome over its period."""

    term: Term
    amount_micro_usd: int
    used_micro_usd: int = 0
    charges: list[int] = field(default_factory=list)

    @property
    def unused_micro_usd(self) -> int:
        return max(0, self.amount_micro_usd - self.used_micro_usd)


def apply_contract(charges: Sequence[Charge], contract: Contract | None) -> list[Commitment]:
    """Price ``charges`` under ``contract`` in place (see the module docstring) and return the commitments.

    Charges draw commitments down in the order (day, position in ``charges``). A charge matched by several
    commitments draws the one whose row is most specific first, then the next.
    """
    for c in charges:
        term = contract.term_for(c.provider, c.model, c.service_tier, c.day) if contract else None
        c.discount = term.discount if term else Decimal(0)
        c.contracted_micro_usd = contracted_micro_usd(c.list_micro_usd, c.discount) if term else int(c.list_micro_usd)
        c.effective_micro_usd = c.billed_micro_usd = c.contracted_micro_usd
        c.commitment_id, c.commitment_drawn_micro_usd = None, 0
    if contract is None:
        return []
    out = [Commitment(t, t.commitment_micro_usd) for t in sorted(contract.commitments, key=lambda t: -t.specificity)]
    order = sorted(range(len(charges)), key=lambda i: (charges[i].day, i))
    for i in order:
        c = charges[i]
        for m in out:
            left = m.amount_micro_usd - m.used_micro_usd
            if left <= 0 or c.billed_micro_usd <= 0 or not m.term.matches(c.provider, c.model, c.service_tier, c.day):
                continue
            if c.commitment_id is not None:  # one commitment per FOCUS row: the rest stays billed
                break
            drawn = min(left, c.billed_micro_usd)
            m.used_micro_usd += drawn
            m.charges.append(i)
            c.billed_micro_usd -= drawn
            c.commitment_id, c.commitment_drawn_micro_usd = m.term.commitment_id, drawn
    return out
