"""Who is calling: the affiliate directory.

The embedded default reads ``config/citas/affiliates.yaml`` (demo data); a
real deployment implements ``AffiliateDirectory`` over the insurer's service.
Ages in the demo file are relative to today so the demo never goes stale.

Phone numbers are E.164 in an ``Affiliate`` and in every lookup
(``ivr.phone.parse_e164``): a directory written ``300 123 4567`` finds a
caller whose network sends ``+573001234567``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Protocol

from ivr.contact_email import normalize_email
from ivr.masking import mask_email, mask_number
from ivr.phone import parse_e164
from ivr.schemas import load_checked
from ivr.yamlsrc import ConfigError, Located


@dataclass(frozen=True)
class Affiliate:
    document: str
    phone: str | None  # E.164 (a mobile or a fixed line), None when the directory has none
    name: str
    birth_date: date
    plan: str
    site_id: str
    risk_markings: frozenset[str]
    # Where the answer to a case goes (issue 11 §1); None: by SMS / WhatsApp only.
    email: str | None = None

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
        """The affiliate whose phone is ``phone`` (E.164, ``ivr.phone.parse_e164``);
        None when no affiliate, or more than one, has it."""
        ...

    async def by_document(self, document: str) -> Affiliate | None: ...


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _phone(item: Located, index: int, path: Path) -> str | None:
    """The entry's phone as E.164, None when absent. The schema has checked its
    characters; a number phonenumbers finds invalid fails here, with its line."""
    raw = item.get("phone")
    if raw is None:
        return None
    e164 = parse_e164(str(raw))
    if e164 is None:
        raise ConfigError(
            str(path), item.line_of("phone"), f"affiliates[{index}].phone",
            f"{mask_number(str(raw))!r} is not a valid phone number (region CO, or +country code)",
        )  # fmt: skip
    return e164


def _email(item: Located, index: int, path: Path) -> str | None:
    """The entry's e-mail address, normalised (``ivr.contact_email``), None when
    absent; an address that rule refuses fails here, with its line."""
    raw = item.get("email")
    if raw is None:
        return None
    address = normalize_email(str(raw))
    if address is None:
        raise ConfigError(
            str(path), item.line_of("email"), f"affiliates[{index}].email",
            f"{mask_email(str(raw))!r} is not a valid e-mail address (ivr/contact_email.py)",
        )  # fmt: skip
    return address


class YamlAffiliateDirectory:
    def __init__(self, affiliates: list[Affiliate]) -> None:
        self._by_doc = {a.document: a for a in affiliates}
        # A phone several affiliates share (a family's) identifies none of them:
        # the caller is asked for the document rather than taken for the last one.
        holders: dict[str, list[Affiliate]] = {}
        for affiliate in affiliates:
            if affiliate.phone:
                holders.setdefault(affiliate.phone, []).append(affiliate)
        self._by_phone = {phone: found[0] for phone, found in holders.items() if len(found) == 1}

    @classmethod
    def load(
        cls, path: Path, today: date, sites: Collection[str] | None = None
    ) -> YamlAffiliateDirectory:
        """The directory in ``path``, checked against ``ivr/schemas/affiliates.json``;
        ``age: N`` becomes a birth date N years before ``today``.

        Cross-checks: no document listed twice (a lookup would silently take the
        last), and, given ``sites`` (the ids in ``sites.yaml``), every entry's site
        is one of them (an unknown site reads as closed for phone booking).
        Raises ``ConfigError`` naming the entry's line.
        """
        data = load_checked(path, "affiliates")
        first_at: dict[str, int] = {}
        for index, item in enumerate(data["affiliates"]):
            document = item["document"]
            if document in first_at:
                seen = first_at[document]
                raise ConfigError(
                    str(path), item.line_of("document"), f"affiliates[{index}].document",
                    f"{mask_number(document)!r} is listed twice: also affiliates[{seen}] "
                    f"(line {data['affiliates'][seen].line_of('document')})",
                )  # fmt: skip
            first_at[document] = index
            if sites is not None and item["site"] not in sites:
                raise ConfigError(
                    str(path), item.line_of("site"), f"affiliates[{index}].site",
                    f"{item['site']!r} is not a site in sites.yaml ({', '.join(sorted(sites))})",
                )  # fmt: skip
        affiliates = [
            Affiliate(
                document=item["document"],
                phone=_phone(item, index, path),
                name=item["name"],
                birth_date=(
                    date.fromisoformat(item["birth_date"])
                    if "birth_date" in item
                    else _years_before(today, item["age"])
                ),
                plan=item["plan"],
                site_id=item["site"],
                risk_markings=frozenset(item.get("risk", [])),
                email=_email(item, index, path),
            )
            for index, item in enumerate(data["affiliates"])
        ]
        return cls(affiliates)

    async def by_phone(self, phone: str) -> Affiliate | None:
        """Any form of the number finds the entry (it is normalised first); a
        number listed for several affiliates finds none."""
        e164 = parse_e164(phone)
        return self._by_phone.get(e164) if e164 is not None else None

    async def by_document(self, document: str) -> Affiliate | None:
        return self._by_doc.get(document)
