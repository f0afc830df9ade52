"""Guardrails every message passes, whichever writer drafted it.

:meth:`Guardrails.check` returns the rules a draft breaks (empty: it may be sent):

``empty``            no body (or, for e-mail, no subject);
``length``           body or subject longer than the channel allows (the ``{{first_name}}``
                     placeholder counts as written: 14 characters reserved for the name);
``unknown_product``  a name marked as a product (``[[...]]``) that is in no catalogue;
``not_recommended``  a catalogue product named (marked or not) that is neither
                     recommended to this customer nor the product a recommendation's
                     reason refers to;
``price``            an amount of money that is not a featured product's price (or that
                     price after the campaign's discount, or an amount of the offer);
``discount``         a percentage other than the campaign's discount (or one of its offer),
                     or "half price" without a 50 % discount;
``offer``            a promise the offer does not make (free delivery, a free gift, ...);
``placeholder``      anything left to fill in other than ``{{first_name}}``;
``banned_phrase``    a phrase of the banned list (spam triggers, claims we cannot back);
``contact_detail``   an e-mail address, a URL or a phone number (the sender adds links);
``sms_charset``      an SMS character outside the GSM-7 alphabet (it would split the SMS).

Product names are found in free text by exact (case-insensitive, whole-word) match
against the catalogue; names of a single word are only checked when marked, so a
product called "Candle" does not make every mention of candles an error. A writer that
invents a product name that is in no catalogue is caught only when it marks it (the
language-model writer is asked to mark every product).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from ml.campaigns.copy.brief import FIRST_NAME, CopyBrief

RULES = (
    "empty",
    "length",
    "unknown_product",
    "not_recommended",
    "price",
    "discount",
    "offer",
    "placeholder",
    "banned_phrase",
    "contact_detail",
    "sms_charset",
)
DEFAULT_BANNED_PHRASES = (
    "act now",
    "best price guaranteed",
    "buy now or",
    "cheapest",
    "click here",
    "cure",
    "guaranteed",
    "lowest price ever",
    "miracle",
    "no strings attached",
    "once in a lifetime",
    "risk-free",
    "risk free",
    "urgent",
    "winner",
    "you have been selected",
    "100% free",
)
# Promises only an offer that says so may make.
OFFER_PROMISES = (
    "free delivery",
    "free shipping",
    "free gift",
    "free returns",
    "buy one get one",
    "2 for 1",
    "two for one",
    "cashback",
)
_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
    "^{}\\[~]|€"
)
_WORD = re.compile(r"[a-z0-9]+")
_MARKED = re.compile(r"\[\[(.+?)\]\]")
_MONEY = re.compile(
    r"(?:[£$€]\s?(\d[\d,]*(?:\.\d{1,2})?))|(?:(\d[\d,]*(?:\.\d{1,2})?)\s?(?:gbp|eur|usd|pounds?|euros?|dollars?)\b)",
    re.IGNORECASE,
)
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s?(?:%|percent\b|per cent\b)", re.IGNORECASE)
_HALF = re.compile(r"\bhalf[- ](?:price|off)\b", re.IGNORECASE)
_PLACEHOLDERS = (
    re.compile(r"\{\{|\}\}|\{%|%\}"),
    re.compile(r"\{\s*[A-Za-z_][A-Za-z0-9_ ]*\}"),
    re.compile(r"\[\[|\]\]"),
    re.compile(r"\[[A-Za-z][A-Za-z _-]{0,30}\]"),
    re.compile(r"<[A-Za-z][A-Za-z _-]{0,30}>"),
    re.compile(r"%s|\{0\}|\$\{"),
)
_CONTACT = (
    re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
    re.compile(r"https?://|\bwww\.", re.IGNORECASE),
)
# A phone number: digits with spaces, brackets or dashes, at least 9 digits. A date such
# as 2026-09-14 (a reason's "bought on", 8 digits) is not one.
_PHONE = re.compile(r"\+?\d[\d ()-]{7,}\d")
_PHONE_MIN_DIGITS = 9


def _contact_details(text: str) -> list[str]:
    """E-mail addresses, URLs and phone numbers in ``text``."""
    found = [m.group(0) for pattern in _CONTACT for m in [pattern.search(text)] if m]
    found += [
        m.group(0)
        for m in _PHONE.finditer(text)
        if sum(c.isdigit() for c in m.group(0)) >= _PHONE_MIN_DIGITS
    ][:1]
    return found


@dataclass(frozen=True)
class Draft:
    """A drafted message. ``marked_products``: the names the writer marked as products."""

    body: str
    subject: str | None = None
    marked_products: tuple[str, ...] = ()


@dataclass(frozen=True)
class Violation:
    """One broken rule (one of :data:`RULES`) and what broke it."""

    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.detail}"


def strip_markers(text: str) -> tuple[str, tuple[str, ...]]:
    """Remove ``[[name]]`` product markers; return the text and the marked names."""
    marked = tuple(m.strip() for m in _MARKED.findall(text))
    return _MARKED.sub(lambda m: m.group(1).strip(), text), marked


def _tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _amount(text: str) -> float:
    return round(float(text.replace(",", "")), 2)


class Guardrails:
    """The checks of one campaign run.

    Parameters
    ----------
    catalogue_names : iterable of str
        Every product name of the catalogue (for spotting named products).
    banned_phrases : iterable of str
        Case-insensitive phrases no message may contain.
    """

    def __init__(
        self,
        catalogue_names: Iterable[str],
        banned_phrases: Iterable[str] = DEFAULT_BANNED_PHRASES,
    ) -> None:
        self._names: dict[str, list[tuple[tuple[str, ...], str]]] = defaultdict(list)
        self._catalogue = {n.lower() for n in catalogue_names if n}
        for name in {n for n in catalogue_names if n}:
            tokens = tuple(_tokens(name))
            if len(tokens) >= 2:
                self._names[tokens[0]].append((tokens, name))
        for candidates in self._names.values():
            candidates.sort(key=lambda c: -len(c[0]))
        self._banned = [
            (phrase, re.compile(r"(?<!\w)" + re.escape(phrase.lower()) + r"(?!\w)"))
            for phrase in banned_phrases
        ]

    def named_products(self, text: str) -> list[str]:
        """Catalogue names (of two words or more) that occur in ``text``, in order."""
        tokens = _tokens(text)
        found, i = [], 0
        while i < len(tokens):
            for candidate, name in self._names.get(tokens[i], ()):
                if tuple(tokens[i : i + len(candidate)]) == candidate:
                    found.append(name)
                    i += len(candidate) - 1
                    break
            i += 1
        return found

    def check(self, draft: Draft, brief: CopyBrief) -> list[Violation]:
        """Every rule ``draft`` breaks for ``brief`` (empty list: it passes)."""
        body, subject = (draft.body or "").strip(), (draft.subject or "").strip()
        text = f"{subject}\n{body}" if subject else body
        problems: list[Violation] = []
        if not body or (brief.limits.subject_chars is not None and not subject):
            problems.append(Violation("empty", "no body" if not body else "no subject"))
        if len(body) > brief.limits.body_chars:
            problems.append(
                Violation("length", f"body {len(body)} > {brief.limits.body_chars} characters")
            )
        if brief.limits.subject_chars is not None and len(subject) > brief.limits.subject_chars:
            problems.append(
                Violation(
                    "length", f"subject {len(subject)} > {brief.limits.subject_chars} characters"
                )
            )
        problems += self._products(draft, brief, text)
        problems += _money(text, brief)
        problems += _placeholders(text)
        lowered = text.lower()
        problems += [
            Violation("banned_phrase", phrase)
            for phrase, pattern in self._banned
            if pattern.search(lowered)
        ]
        offer = (brief.offer or "").lower()
        problems += [
            Violation("offer", promise)
            for promise in OFFER_PROMISES
            if promise in lowered and promise not in offer
        ]
        problems += [
            Violation("contact_detail", detail)
            for detail in _contact_details(text.replace(FIRST_NAME, ""))
        ]
        if brief.channel == "sms":
            bad = sorted({c for c in body.replace(FIRST_NAME, "") if c not in _GSM7})
            if bad:
                problems.append(Violation("sms_charset", "".join(bad)))
        return problems

    def _products(self, draft: Draft, brief: CopyBrief, text: str) -> list[Violation]:
        recommended = {n.lower() for n in brief.product_names}
        # The products the reasons refer to ("because you bought X") may be named too.
        referenced = {
            n.lower() for p in brief.products for n in self.named_products(p.reason or "")
        }
        allowed = recommended | referenced
        problems, seen = [], set()
        for name in [*draft.marked_products, *self.named_products(text)]:
            if name.lower() in allowed or name.lower() in seen:
                continue
            seen.add(name.lower())
            known = name.lower() in self._catalogue
            problems.append(Violation("not_recommended" if known else "unknown_product", name))
        return problems


def _money(text: str, brief: CopyBrief) -> list[Violation]:
    offer = brief.offer or ""
    prices = {p.price for p in brief.products if p.price is not None}
    allowed = set(prices)
    if brief.discount_percent:
        allowed |= {round(p * (1 - brief.discount_percent / 100), 2) for p in prices}
    allowed |= {_amount(a or b) for a, b in _MONEY.findall(offer)}
    problems = [
        Violation("price", match.group(0).strip())
        for match in _MONEY.finditer(text)
        if _amount(match.group(1) or match.group(2)) not in allowed
    ]
    percents = {float(v) for v in _PERCENT.findall(offer)}
    if brief.discount_percent:
        percents.add(float(brief.discount_percent))
    problems += [
        Violation("discount", match.group(0))
        for match in _PERCENT.finditer(text)
        if float(match.group(1)) not in percents
    ]
    if _HALF.search(text) and 50.0 not in percents:
        problems.append(Violation("discount", _HALF.search(text).group(0)))
    return problems


def _placeholders(text: str) -> list[Violation]:
    rest = text.replace(FIRST_NAME, "")
    found = []
    for pattern in _PLACEHOLDERS:
        match = pattern.search(rest)
        if match:
            found.append(Violation("placeholder", match.group(0)))
    return found
