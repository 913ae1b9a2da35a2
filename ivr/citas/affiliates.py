"""Who is calling: the affiliate directory.

The embedded default reads ``config/citas/affiliates.yaml`` (demo data); a
real deployment implements ``AffiliateDirectory`` over the insurer's service.
Ages in the demo file are relative to today so the demo never goes stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Protocol

from ivr.schemas import load_checked


@dataclass(frozen=True)
class Affiliate:
    document: str
    phone: str | None
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
    async def by_phone(self, phone: str) -> Affiliate | None: ...

    async def by_document(self, document: str) -> Affiliate | None: ...


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


class YamlAffiliateDirectory:
    def __init__(self, affiliates: list[Affiliate]) -> None:
        self._by_doc = {a.document: a for a in affiliates}
        self._by_phone = {a.phone: a for a in affiliates if a.phone}

    @classmethod
    def load(cls, path: Path, today: date) -> YamlAffiliateDirectory:
        """The directory in ``path``, checked against ``ivr/schemas/affiliates.json``;
        ``age: N`` becomes a birth date N years before ``today``. Raises ``ConfigError``."""
        data = load_checked(path, "affiliates")
        affiliates = [
            Affiliate(
                document=item["document"],
                phone=item.get("phone") or None,
                name=item["name"],
                birth_date=(
                    date.fromisoformat(item["birth_date"])
                    if "birth_date" in item
                    else _years_before(today, item["age"])
                ),
                plan=item["plan"],
                site_id=item["site"],
                risk_markings=frozenset(item.get("risk", [])),
            )
            for item in data["affiliates"]
        ]
        return cls(affiliates)

    async def by_phone(self, phone: str) -> Affiliate | None:
        return self._by_phone.get(phone)

    async def by_document(self, document: str) -> Affiliate | None:
        return self._by_doc.get(document)
