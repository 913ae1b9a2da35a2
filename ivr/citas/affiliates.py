"""Who is calling: the affiliate directory.

The embedded default reads ``config/citas/affiliates.yaml`` (demo data); a
real deployment implements ``AffiliateDirectory`` over the insurer's service.
Ages in the demo file are relative to today so the demo never goes stale.

Phone numbers are E.164 in an ``Affiliate`` and in every lookup
(``ivr.phone.parse_e164``): a directory written ``300 123 4567`` finds a
caller whose network sends ``+573001234567``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Protocol

from ivr.flow.yamlsrc import ConfigError, Located, load_yaml_file
from ivr.masking import mask_number
from ivr.phone import parse_e164


@dataclass(frozen=True)
class Affiliate:
    document: str
    phone: str | None  # E.164 (a mobile or a fixed line), None when the directory has none
    name: str
    birth_date: date
    plan: str
    site_id: str
    risk_markings: frozenset[str]

    @property
    def id(self) -> str:
        return self.document

    def age_on(self, day: date) -> int:
        years = day.year - self.birth_date.year
        if (day.month, day.day) < (self.birth_date.month, self.birth_date.day):
            years -= 1
        return years


class AffiliateDirectory(Protocol):
    async def by_phone(self, phone: str) -> Affiliate | None:
        """The affiliate whose phone is ``phone`` (E.164, ``ivr.phone.parse_e164``)."""
        ...

    async def by_document(self, document: str) -> Affiliate | None: ...


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _phone(item: Located, path: Path) -> str | None:
    """The entry's phone as E.164; absent or blank is None, any other non-number fails."""
    raw = item.get("phone")
    if raw is None or str(raw).strip() == "":
        return None
    e164 = parse_e164(str(raw))
    if e164 is None:
        raise ConfigError(
            str(path), item.line_of("phone"), "affiliates.phone",
            f"{mask_number(str(raw))!r} is not a valid phone number (region CO, or +country code)",
        )  # fmt: skip
    return e164


class YamlAffiliateDirectory:
    def __init__(self, affiliates: list[Affiliate]) -> None:
        self._by_doc = {a.document: a for a in affiliates}
        self._by_phone = {a.phone: a for a in affiliates if a.phone}

    @classmethod
    def load(cls, path: Path, today: date) -> YamlAffiliateDirectory:
        data = load_yaml_file(path)
        if not isinstance(data, Located) or not isinstance(data.get("affiliates"), list):
            raise ConfigError(str(path), 1, "affiliates", "must be a list under 'affiliates'")
        affiliates = []
        for item in data["affiliates"]:
            if not isinstance(item, Located):
                raise ConfigError(str(path), None, "affiliates", "each entry must be a mapping")
            if not isinstance(item.get("risk", []), list):
                raise ConfigError(str(path), item.line, "affiliates.risk", "must be a list")
            phone = _phone(item, path)
            try:
                birth = (
                    date.fromisoformat(str(item["birth_date"]))
                    if "birth_date" in item
                    else _years_before(today, int(item["age"]))
                )
                affiliates.append(
                    Affiliate(
                        document=str(item["document"]),
                        phone=phone,
                        name=str(item["name"]),
                        birth_date=birth,
                        plan=str(item["plan"]),
                        site_id=str(item["site"]),
                        risk_markings=frozenset(str(r) for r in item.get("risk", [])),
                    )
                )
            except (KeyError, ValueError, TypeError, OverflowError) as exc:
                raise ConfigError(str(path), item.line, "affiliates", f"bad entry: {exc}") from None
        return cls(affiliates)

    async def by_phone(self, phone: str) -> Affiliate | None:
        """Any form of the number finds the entry (it is normalised first)."""
        e164 = parse_e164(phone)
        return self._by_phone.get(e164) if e164 is not None else None

    async def by_document(self, document: str) -> Affiliate | None:
        return self._by_doc.get(document)
