"""Phone numbers for the PII rule: a candidate regex, then structure and context decide.

A number written the way phones are written (``+`` or ``00`` country code, an area code in parentheses, a
trunk ``0`` with ≥ 9 digits, 3-3-4 groups, an extension) is a phone unless the words before it name
something else (order, invoice, version, price…); a bare local shape (``467 3395``, ``9498777106``) only
when phone words are near (``call me on``, ``Mobile:``, ``-Fax``). Dates, times, decimals, versions,
ranges, amounts and house numbers are never phones.
"""

from __future__ import annotations

import itertools
import re

from tollhouse.guardrails.addresses import STREET_AFTER

CANDIDATE = re.compile(
    r"(?<![\w+/#$€£¥@%&=])(?<!\d[.,:\-])(?<![A-Za-z][.\-])"
    r"(?:\+[ ]?)?(?:\(\+?\d{1,5}\)[ .\-/]?)?\d{1,15}"
    r"(?:(?:[ .\-]|/ ?|[ .\-]?\(\d{1,4}\)[ .\-]?)\d{1,12}){0,6}"
    r"(?:[ ,]*(?:x|ext\.?|extension)[ .]*\d{1,6})?"
    r"(?![\w@])(?![.,:/\-]\d)"
)
_EXT = re.compile(r"[ ,]*(?:x|ext\.?|extension)[ .]*\d{1,6}$")
_GROUP = re.compile(r"\d+")
_SEPS = re.compile(r"\d([ .\-/]|[ .\-]?\()")
_DATE = re.compile(
    r"^(?:(?:19|20)\d\d[-./ ](?:0?[1-9]|1[0-2])[-./ ](?:0?[1-9]|[12]\d|3[01])"
    r"|(?:0?[1-9]|[12]\d|3[01])[-./ ](?:0?[1-9]|[12]\d|3[01])[-./ ](?:19|20)\d\d)(?!\d)"
)
_YEAR_RANGE = re.compile(r"^(?:19|20)\d\d ?[-/] ?(?:(?:19|20)\d\d|\d\d)$")
_ZIP4 = re.compile(r"^\d{5}-\d{4}$")
_COMPACT = re.compile(r"^(?:0[1-9]\d{7,10}|[2-9]\d\d[2-9]\d{6})$")  # 0430830401, 6114980364
_SPACE_THEN_DASH = re.compile(r"^[\d ]+-[\d\-]+$")  # 86 6232-8601 (not 5353-10 649, a range)
_PAREN_YEAR = re.compile(r"^\((?:19|20)\d\d\)")

# Words before a number that say it is a phone (_POS) or something else (_NEG).
_POS = frozenset((
    "phone", "phones", "telephone", "telefono", "telefon", "teléfono", "téléphone", "telefone", "tel",
    "tél", "tlf", "ph", "mob", "mobile", "mobil", "cell", "cellular", "cellphone", "handy", "fax", "call",
    "calls", "calling", "called", "ring", "dial", "text", "texting", "sms", "whatsapp", "signal", "viber",
    "telegram", "contact", "reach", "desk", "office", "home", "work", "direct", "landline", "hotline",
    "helpline", "switchboard", "voicemail", "emergency", "tty", "appel", "appelez", "llamar", "llame",
    "llámame", "ligue", "ligar", "anrufen", "ruf", "kontakt", "contato", "contacto",
))  # fmt: skip
_NEG = frozenset((
    "order", "orders", "invoice", "inv", "tracking", "track", "shipment", "parcel", "ticket", "ref",
    "reference", "id", "ids", "serial", "sn", "sku", "item", "product", "part", "model", "isbn", "issn",
    "doi", "account", "acct", "iban", "bic", "swift", "routing", "sort", "transaction", "txn", "payment",
    "confirmation", "booking", "reservation", "pnr", "case", "claim", "policy", "customer", "client",
    "member", "membership", "patient", "employee", "student", "license", "licence", "passport", "permit",
    "batch", "lot", "version", "ver", "build", "release", "revision", "rev", "commit", "pr", "issue",
    "bug", "zip", "postal", "postcode", "plz", "cp", "po", "box", "suite", "ste", "apt", "unit", "room",
    "floor", "flat", "page", "pages", "pp", "chapter", "section", "figure", "fig", "table", "line",
    "lines", "row", "rows", "step", "price", "cost", "costs", "total", "amount", "sum", "balance",
    "salary", "budget", "revenue", "pay", "paid", "fee", "usd", "eur", "gbp", "chf", "jpy", "inr", "rs",
    "population", "range", "score", "scores", "timestamp", "epoch", "coordinates", "lat", "latitude",
    "lon", "lng", "longitude", "gps", "port", "pid", "uid", "gid", "hash", "checksum", "pin", "otp", "cvv",
    "address", "addr", "street", "road", "avenue", "lives", "located", "apartment", "building", "vin",
    "plate", "registration", "reg", "vat", "tax", "ein", "tin", "ssn", "nif", "nie", "siret", "siren",
    "abn", "acn", "nhs", "sin", "record", "records", "file", "files", "document", "doc", "contract",
    "agreement", "receipt", "bill", "statement", "quote", "estimate", "voucher", "coupon", "card", "gift",
    "loyalty", "points", "miles", "steps", "calories", "views", "likes", "followers", "downloads", "users",
    "votes", "code", "codes", "passcode", "password", "token", "key", "imei",
))  # fmt: skip
_NUMBER_WORDS = frozenset((
    "number", "numbers", "num", "no", "nr", "numéro", "número", "nummer",
))  # fmt: skip
_OWNERS = frozenset((
    "my", "your", "his", "her", "our", "their", "new", "mobile", "cell", "phone",
))  # fmt: skip
_LETTERS = frozenset("tmpfo")  # "T: …", "M: …" in signatures
_TOKENS = re.compile(r"([^\W\d_]+)([ \t]*:)?")
NEAR = 24  # characters: other-number words further away do not veto a phone-shaped number
_AFTER_POS = re.compile(
    r"^\s?[-(/,]?\s?(?:office|fax|mobile|mob|cell|home|work|desk|phone|tel|direct|main|landline|"
    r"whatsapp|voicemail|switchboard|reception)\b",
    re.I,
)
_AFTER_NEG = re.compile(
    r"^\s?(?:%|‰|€|\$|£|¥|°|percent|pct|kg|mg|lbs?|oz|km|cm|mm|mi|miles|ft|feet|inches|ms|sec|"
    r"secs|seconds|min|mins|minutes|hrs|hours|days|weeks|months|years|yrs|bytes|[kmgt]i?b|kbps|mbps|px|"
    r"dpi|hz|khz|mhz|ghz|[mk]?w|kwh|mah|usd|eur|gbp|chf|jpy|inr|rs|dollars|euros|pounds|yen|rupees|"
    r"times|people|persons|users|members|customers|items|units|pcs|pieces|rows|records|votes|views|"
    r"downloads|tokens|words|pages|steps|points|pts|calories|kcal|cases|deaths|residents|inhabitants|"
    r"am|pm|a\.m\.|p\.m\.|utc|gmt|bc|ad|bce|ce)\b",
    re.I,
)
_UPPER_WORDS = re.compile(r"^\s+(?:[A-Z][\w'\u2019.\-]*\s+){0,3}?[A-Z][\w'\u2019.\-]*\s*(?:\n|,|$)")


def _context(before: str) -> tuple[int, int]:
    """(+1 phone words nearest, -1 other-number words nearest, 0 neither; characters from the keyword to
    the number). ``before`` is lowercased."""
    found = [(m.group(1), bool(m.group(2)), m.end(1)) for m in _TOKENS.finditer(before)]
    for i in range(len(found) - 1, -1, -1):
        word, colon, end = found[i]
        if word in _POS or (colon and word in _LETTERS):
            return 1, len(before) - end
        if word in _NEG:
            dialling = word == "code" and i and found[i - 1][0] in ("area", "country", "dialling", "dialing")
            return (1 if dialling else -1), len(before) - end
        # "number" / "no." alone: whose number? the word before it decides ("my number" is a phone).
        if word in _NUMBER_WORDS and i and found[i - 1][0] in _OWNERS:
            return 1, len(before) - end
    return 0, len(before)


def _shape(value: str) -> int:
    """2 a phone's way of writing, 1 plausible, 0 local or ambiguous, -1 never a phone."""
    main = _EXT.sub("", value)
    ext = main != value
    digits = sum(map(str.isdigit, main))
    if not 7 <= digits <= 15:
        return -1
    groups = [len(g) for g in _GROUP.findall(main)]
    seps = {m.group(1).strip() or " " for m in _SEPS.finditer(main)}
    if _DATE.match(main.lstrip("+")) or _YEAR_RANGE.match(main) or _ZIP4.match(main):
        return -1
    if "." in seps and (len(groups) < 3 or any(n > 4 for n in groups[1:]) or seps - {".", "("}):
        if len(groups) == 2 and min(groups) >= 3 and seps == {"."}:
            return 0  # 1700.7723: a phone only when phone words say so
        return -1  # decimals (3.14159265), versions (10.0.19041), coordinates (48.8566 2.3522)
    if seps == {"/"} and len(groups) > 2:
        return -1  # 12/05/2024-like runs
    if main.startswith("+") or (main.startswith("00") and len(groups) > 1):
        return 2 if digits >= 8 else 0
    if ext or (main.startswith("(") and not _PAREN_YEAR.match(main)) or "(" in seps:
        return 2  # an extension, an area code in brackets: (08) 8747 6301, 8 (483) 378-87-62
    if groups == [3, 3, 4] or groups == [1, 3, 3, 4]:
        return 2
    if main.startswith("0") and digits >= 9 and len(groups) >= 2:
        return 2
    if len(groups) == 1:  # written without separators: a trunk 0 or a North American number, else local
        return 1 if _COMPACT.match(main) else 0
    if len(groups) >= 3 and all(2 <= n <= 4 for n in groups) and digits >= 9 and _one_style(main):
        if all(n == 3 for n in groups[1:]) and groups[0] <= 3:
            return 0  # 1 299 000: thousands, or a local number
        values = [int(g) for g in _GROUP.findall(main)]
        if all(b == a + 1 for a, b in itertools.pairwise(values)):
            return 0  # 10 11 12 13 14: a list of references
        return 1
    return 0


def _one_style(main: str) -> bool:
    """One kind of separator, or spaces then dashes (86 6232-8601)."""
    seps = {c for c in main if not c.isdigit()}
    return len(seps) == 1 or (seps == {" ", "-"} and _SPACE_THEN_DASH.match(main) is not None)


def is_phone(text: str, start: int, end: int) -> bool:
    """The candidate ``text[start:end]`` (a ``CANDIDATE`` match) is a phone number."""
    shape = _shape(text[start:end])
    if shape < 0:
        return False
    line_start = text.rfind("\n", 0, start)
    if not text[line_start + 1 : start].strip():  # first on its line: the line before counts ("Phone:\n…")
        line_start = text.rfind("\n", 0, max(0, line_start))
    before = text[max(line_start + 1, start - 48) : start].lower()
    if before.endswith(("$", "€", "£", "¥", "-", "\u2013", "~", "#", "№")):
        return False
    after = text[end : end + 40]
    if _AFTER_NEG.match(after) or STREET_AFTER.match(after):
        return False  # "12 kg", "03262 2437 Main St": a quantity, a house number
    context, gap = _context(before)
    if context == 0 and _AFTER_POS.match(after):
        context = 1
    if context < 0 and (shape < 2 or gap <= NEAR):
        return False
    if context <= 0 and shape == 0:
        return False
    # "3747 3911 Fourth Avenue": a house number
    return not (context <= 0 and shape == 1 and _UPPER_WORDS.match(after))
