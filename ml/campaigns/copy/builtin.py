"""The built-in copy writer: per-channel templates and phrase banks, nothing to install.

It composes a message from the brief alone: a greeting with the ``{{first_name}}``
placeholder, an opener for the campaign's goal, a sentence about the top product built
from why it is recommended, praised aspects when reviews name some, a second product,
the offer, a closer. Every slot has several phrasings; ``brief.variant`` (a seeded hash
of campaign and customer) picks them, so the same customer gets the same message on
every run and different customers get different ones.

Goal ``service`` (customers who wrote a negative review recently) is not a sale: the
message thanks them for the review, apologises and offers help, names no product and states
the campaign's offer only as an apology.

Channels: e-mail gets a subject and a short paragraph; push (120 characters) and SMS
(160, GSM-7 characters only) get a hook and a product sentence (SMS: with the reason),
plus the offer whenever the result still fits. Names are used exactly as the catalogue spells them. When
not even the shortest candidate fits (a very long product name), the message mentions no
product rather than cutting a name.
"""

from __future__ import annotations

import random

from ml.campaigns.copy.brief import FIRST_NAME, BriefProduct, CopyBrief
from ml.campaigns.copy.guardrails import Draft

BUILTIN_VERSION = "1"
# A regeneration picks phrasings from a different stream.
_RETRY_OFFSET = 7919

OPENERS = {
    "win_back": (
        "It has been a while, and we have missed you.",
        "We have not seen you in a while, so we saved a few picks for you.",
        "A lot has arrived since your last visit.",
    ),
    "loyalty": (
        "You are one of our favourite customers, so you hear it first.",
        "Thank you for shopping with us so often.",
        "As one of our best customers, you get the first look.",
    ),
    "cross_sell": (
        "We found something that goes well with what you like.",
        "Here is a fresh pick chosen for you.",
        "We think this would go well with your last order.",
    ),
    "replenish": (
        "Running low? Restocking takes one tap.",
        "Time for a top-up?",
        "Stock up before you run out.",
    ),
    "welcome": (
        "Welcome, and thank you for joining us.",
        "We are glad you are here.",
        "Thanks for signing up. Here is a first pick for you.",
    ),
    "new_arrivals": (
        "New arrivals just landed, and a few were picked for you.",
        "Our newest arrivals are in, and you get the first look.",
        "Something new just arrived that suits you.",
    ),
    "thank_you": (
        "Thank you for being a loyal customer.",
        "We wanted to say thank you.",
        "Thanks for being part of our shop.",
    ),
    "recommend": (
        "We have a suggestion for you.",
        "Something caught our eye for you.",
        "Here is something new to discover.",
    ),
}
SUBJECTS = {
    "win_back": ("We miss you, {fn}", "{fn}, it has been a while", "{fn}, we saved a few picks"),
    "loyalty": ("{fn}, you get the first look", "Early access for you, {fn}", "Thank you, {fn}"),
    "cross_sell": ("Something new for you, {fn}", "{fn}, a fresh pick for you", "Picked for you, {fn}"),
    "replenish": ("Time to restock, {fn}?", "Running low, {fn}?", "{fn}, time for a top-up?"),
    "welcome": ("Welcome, {fn}!", "{fn}, your first picks are here", "Glad you are here, {fn}"),
    "new_arrivals": ("New arrivals for you, {fn}", "Just landed for you, {fn}", "{fn}, see what is new"),
    "thank_you": ("Thank you, {fn}", "A thank-you for you, {fn}", "{fn}, thanks for being here"),
    "recommend": ("Picked for you, {fn}", "{fn}, we found something for you", "A pick for you, {fn}"),
}  # fmt: skip
# Service outreach (goal "service"): no product, no selling.
SERVICE_SUBJECTS = ("We are sorry, {fn}", "{fn}, we read your review", "Let us put it right, {fn}")
SERVICE_OPENERS = (
    "Thank you for your honest review. We are sorry your order fell short.",
    "We read your recent review, and we are sorry it was not what you hoped for.",
    "Your review reached us, and we want to make things right.",
)
SERVICE_HELP = (
    "Reply to this message and our team will help you.",
    "Just reply, and we will sort it out with you.",
    "Reply with what went wrong and we will find a fix together.",
)
SERVICE_CLOSERS = ("Thank you for your patience.", "We appreciate your honesty.", "Thank you.")
SERVICE_SHORT = (
    "{fn}, we read your review and we are sorry. Reply and we will put it right.",
    "Sorry it fell short, {fn}. Reply and our team will help.",
)
GREETINGS = ("Hi {fn},", "Hello {fn},", "Dear {fn},")
CLOSERS = ("See you soon.", "Happy shopping!", "We hope you enjoy it.")
SHORT_HOOKS = {
    "win_back": ("We miss you, {fn}!", "{fn}, it has been a while!"),
    "loyalty": ("{fn}, you get the first look:", "Thanks for being a regular, {fn}!"),
    "replenish": ("Running low, {fn}?", "{fn}, time for a top-up?"),
    "welcome": ("Welcome, {fn}!", "Glad you are here, {fn}!"),
    "new_arrivals": ("New for you, {fn}:", "{fn}, just landed:"),
    "thank_you": ("Thank you, {fn}!", "{fn}, thanks for being a regular!"),
}


def _fill(template: str) -> str:
    return template.replace("{fn}", FIRST_NAME)


def reason_sentences(product: BriefProduct) -> list[str]:
    """Sentences naming ``product`` and why it is recommended."""
    name, reason = product.name, (product.reason or "").strip().rstrip(".")
    lowered = reason.lower()
    if lowered.startswith("because you "):
        rest = reason[len("because you ") :]
        if name.lower() in rest.lower():  # a repurchase: the reason names the product itself
            return [
                f"Time to stock up on {name} again?",
                f"Running low on {name}? It is ready when you are.",
            ]
        return [
            f"Because you {rest}, we think you will like {name}.",
            f"You {rest}, so we picked {name} for you.",
            f"Since you {rest}, {name} could be a good match.",
        ]
    if lowered.startswith("popular"):
        when = "" if lowered.endswith("right now") else " right now"
        return [f"{name} is {reason}{when}.", f"Take a look at {name}: it is {reason}."]
    return [f"We think you will love {name}.", f"{name} could be just right for you."]


def short_product_sentences(product: BriefProduct) -> list[str]:
    """Short sentences naming ``product`` (push and SMS)."""
    name = product.name
    return [
        f"We picked {name} for you.",
        f"{name} is waiting for you.",
        f"Meet {name}, picked for you.",
    ]


def offer_text(brief: CopyBrief) -> str | None:
    """The offer in words: as given, else from the discount (else none)."""
    if brief.offer:
        return brief.offer.rstrip(".")
    if brief.discount_percent:
        return f"{brief.discount_percent:g}% off your next order"
    return None


def _email_body(parts: list[str], closer: str) -> str:
    """Greeting line, one paragraph, closer line."""
    return f"{parts[0]}\n\n{' '.join(parts[1:])}\n\n{closer}"


def _join(words: tuple[str, ...]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


class BuiltinWriter:
    """Composes copy from the brief with phrase banks (see the module docstring).

    Parameters
    ----------
    currency : str
        Symbol put before prices in e-mails (the shop's currency).
    """

    name = "builtin"
    version = BUILTIN_VERSION
    model = None
    cacheable = False  # deterministic and cheap: recomputing is the cache

    def __init__(self, currency: str = "£") -> None:
        self.currency = currency

    def write(self, brief: CopyBrief, feedback: list[str] | None = None) -> Draft:
        """Draft one message; a ``feedback`` (a retry) draws other phrasings."""
        rng = random.Random(brief.variant + (_RETRY_OFFSET if feedback else 0))
        if brief.goal == "service":
            return self._service(brief, rng)
        if brief.channel == "email" or brief.limits.subject_chars is not None:
            return self._email(brief, rng)
        return Draft(body=self._short(brief, rng))

    def fallback(self, brief: CopyBrief) -> Draft:
        """A message that names no product and states no offer: always within limits."""
        if brief.limits.subject_chars is not None:
            return Draft(
                subject=f"New picks for you, {FIRST_NAME}",
                body=f"Hi {FIRST_NAME},\n\nWe picked a few things we think you will like. "
                "Take a look when you have a moment.",
            )
        return Draft(body=f"Hi {FIRST_NAME}, new picks are waiting for you.")

    # ------------------------------------------------------------------ service

    def _service(self, brief: CopyBrief, rng: random.Random) -> Draft:
        """An apology and an offer of help; the campaign's offer as an apology, if any."""
        offer = offer_text(brief)
        if brief.limits.subject_chars is not None:
            parts = [
                _fill(rng.choice(GREETINGS)),
                rng.choice(SERVICE_OPENERS),
                rng.choice(SERVICE_HELP),
            ]
            if offer:
                parts.append(f"As an apology, please enjoy {offer}.")
            body = _email_body(parts, rng.choice(SERVICE_CLOSERS))
            subject = _fill(rng.choice(SERVICE_SUBJECTS))
            if len(body) > brief.limits.body_chars or len(subject) > brief.limits.subject_chars:
                parts, subject = parts[:3], _fill(SERVICE_SUBJECTS[0])  # no offer sentence
                body = _email_body(parts, SERVICE_CLOSERS[-1])
            return Draft(subject=subject, body=body)
        candidates = [_fill(t) for t in SERVICE_SHORT]
        rng.shuffle(candidates)
        if offer:
            candidates = [f"{c} Enjoy {offer}." for c in candidates] + candidates
        for text in candidates:
            if len(text) <= brief.limits.body_chars:
                return Draft(body=text)
        return Draft(body=_fill("Sorry, {fn}. Reply and we will help."))

    # ------------------------------------------------------------------ e-mail

    def _email(self, brief: CopyBrief, rng: random.Random) -> Draft:
        goal = brief.goal if brief.goal in OPENERS else "recommend"
        subjects = [_fill(s) for s in SUBJECTS[goal]]
        if brief.discount_percent:
            subjects.append(f"{brief.discount_percent:g}% off for you, {FIRST_NAME}")
        fitting = [s for s in subjects if len(s) <= (brief.limits.subject_chars or 10**6)]
        if not brief.products:
            return self.fallback(brief)
        subject = rng.choice(fitting) if fitting else self.fallback(brief).subject
        top = brief.products[0]
        parts = [_fill(rng.choice(GREETINGS)), rng.choice(OPENERS[goal])]
        parts.append(rng.choice(reason_sentences(top)))
        if top.praised_aspects:
            aspects = _join(top.praised_aspects[:2])
            parts.append(
                rng.choice((f"Reviewers praise its {aspects}.", f"Shoppers love its {aspects}."))
            )
        if top.price is not None and rng.random() < 0.5:
            parts.append(f"It costs {self.currency}{top.price:.2f}.")
        if len(brief.products) > 1:
            second = brief.products[1].name
            parts.append(
                rng.choice((f"You might also like {second}.", f"{second} is worth a look too."))
            )
        offer = offer_text(brief)
        if offer:
            parts.append(
                rng.choice(
                    (
                        f"As a thank-you, enjoy {offer}.",
                        f"To make it easier, here is {offer}.",
                        f"And there is more: {offer}.",
                    )
                )
            )
        closer = rng.choice(CLOSERS)
        body = _email_body(parts, closer)
        while len(body) > brief.limits.body_chars and len(parts) > 3:
            parts.pop(-2)  # drop optional sentences; keep greeting, opener, product
            body = _email_body(parts, closer)
        if len(body) > brief.limits.body_chars:
            return self.fallback(brief)
        return Draft(subject=subject, body=body)

    # ------------------------------------------------------------------ push / SMS

    def _short(self, brief: CopyBrief, rng: random.Random) -> str:
        limit = brief.limits.body_chars
        if not brief.products:
            return self.fallback(brief).body
        top = brief.products[0]
        hooks = [_fill(h) for h in SHORT_HOOKS.get(brief.goal, ())] + [
            f"Hi {FIRST_NAME},",
            f"{FIRST_NAME},",
        ]
        sentences = short_product_sentences(top)
        if brief.channel == "sms":  # room for the reason
            sentences = reason_sentences(top) + sentences
        offer = offer_text(brief)
        offers = [f"Enjoy {offer}.", f"Here is {offer}."] if offer else []
        rng.shuffle(hooks)
        rng.shuffle(sentences)
        rng.shuffle(offers)
        candidates = []
        for hook in hooks:
            for sentence in sentences:
                if hook.endswith((",", ":")) and not sentence.startswith(top.name):
                    sentence = sentence[:1].lower() + sentence[1:]
                base = f"{hook} {sentence}"
                candidates += [f"{base} {o}" for o in offers] + [base]
        for text in candidates:
            if len(text) <= limit:
                return text
        return self.fallback(brief).body
