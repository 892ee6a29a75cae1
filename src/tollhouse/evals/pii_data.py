"""Generated, labelled sentences for the PII rule: true phones, IBANs and street addresses in many national
formats, and the look-alikes that are none of them (timestamps, dates, order / invoice / tracking ids,
prices, versions, ranges, coordinates, measurements, house numbers). Written from national conventions,
not from any evaluation set; ``generate(n, seed)`` is reproducible.
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass

from tollhouse.guardrails.pii import IBAN_LENGTHS


@dataclass(slots=True, frozen=True)
class Example:
    text: str
    spans: tuple[tuple[int, int, str], ...]  # (start, end, entity)
    kind: str  # what the example is about ("phone: FR", "negative: timestamp", …)


_D = "0123456789"


def _digits(rng: random.Random, pattern: str) -> str:
    """``#`` a digit, ``N`` a digit 2-9, ``Z`` 1-9; anything else is kept."""
    out = []
    for c in pattern:
        if c == "#":
            out.append(rng.choice(_D))
        elif c == "N":
            out.append(rng.choice("23456789"))
        elif c == "Z":
            out.append(rng.choice("123456789"))
        else:
            out.append(c)
    return "".join(out)


# National ways of writing phone numbers (numbering plans' lengths; separators as people write them).
PHONE_FORMATS: dict[str, list[str]] = {
    "US": ["(N##) N##-####", "N##-N##-####", "N##.N##.####", "+1 N##-N##-####", "+1 (N##) N##-####",
           "1-N##-N##-####", "+1N##N######", "N## N## ####", "001-N##-N##-####", "N##-N##-#### x###",
           "(N##) N##-#### ext. ##", "+1.N##.N##.####"],
    "UK": ["07### ######", "07### ### ###", "+44 7### ######", "+44 (0)20 #### ####", "020 #### ####",
           "01### ######", "+447### ######", "0161 ### ####", "+44 1### ######"],
    "FR": ["0Z ## ## ## ##", "0Z.##.##.##.##", "+33 Z ## ## ## ##", "+33 (0)Z ## ## ## ##", "0Z-##-##-##-##"],
    "DE": ["030 ########", "030/#######", "+49 30 ########", "+49 (0)89 #######", "0151 ########",
           "+49 151 ########", "089 ### ####", "0Z## #######"],
    "IT": ["+39 06 #### ####", "06 ########", "3## ### ####", "+39 3## ### ####", "02 #### ####"],
    "ES": ["+34 6## ## ## ##", "6## ### ###", "9## ## ## ##", "+34 9## ### ###"],
    "NL": ["06 ########", "06-########", "+31 6 ########", "020 ### ####", "+31 (0)20 ### ####"],
    "BE": ["04## ## ## ##", "+32 4## ## ## ##", "02 ### ## ##", "0Z #######"],
    "CH": ["+41 (0)Z# ### ## ##", "0Z# ### ## ##", "+41 7# ### ## ##", "07# ### ## ##"],
    "AT": ["+43 1 #######", "0664 #######", "+43 664 #######", "01 ### ####"],
    "SE": ["07#-### ## ##", "+46 7# ### ## ##", "08-### ### ##", "+46 (0)8 ### ### ##"],
    "NO": ["+47 ### ## ###", "### ## ###", "+47 ## ## ## ##"],
    "DK": ["+45 ## ## ## ##", "## ## ## ##", "+45 ########"],
    "FI": ["+358 40 #######", "040 ### ####", "09 #######", "+358 9 ### ####"],
    "PL": ["+48 ### ### ###", "### ### ###", "+48 ## ### ## ##"],
    "PT": ["+351 9## ### ###", "9## ### ###", "+351 21# ### ###"],
    "BR": ["(##) 9####-####", "+55 (##) 9####-####", "+55 ## 9####-####", "(##) ####-####"],
    "AU": ["04## ### ###", "+61 4## ### ###", "(0Z) #### ####", "+61 Z #### ####", "0Z #### ####"],
    "IN": ["+91 9#### #####", "+91-9#########", "09#########", "9#### #####"],
    "JP": ["03-####-####", "+81 3-####-####", "090-####-####", "+81 90 #### ####"],
    "MX": ["+52 55 #### ####", "55 #### ####", "+52 1 55 #### ####"],
    "ZA": ["0## ### ####", "+27 ## ### ####", "0Z# ### ####"],
    "IE": ["08# ### ####", "+353 8# ### ####", "01 ### ####"],
    "HU": ["+36 1 ### ####", "06 ## ### ####", "+36 ## ### ####"],
    "CZ": ["+420 ### ### ###", "### ### ###"],
}  # fmt: skip
# Unambiguous written alone: a country code, an area code in brackets, 3-3-4, a trunk 0 and ≥ 9 digits.
_SELF_EVIDENT = ("+", "(", "00", "0")

PHONE_CONTEXT = [
    "Call me at {}.", "My number is {}", "You can reach me on {} after 6pm.", "Tel: {}", "Phone: {}",
    "Mobile: {}\nEmail: pat@example.org", "Please ring {} to confirm.", "Text {} when you arrive.",
    "{} (mobile)", "Fax: {}", "Contact our office on {} for details.", "WhatsApp: {}",
    "If anything goes wrong, call {} or email us.", "Her cell is {}", "Desk {} | Mobile {}",
    "Best regards,\nAnna Berg\nSales Manager\nT: {}\n", "Can someone call me on {}? Thanks",
    "Leave a voicemail at {}", "The hotline number is {}.", "Dial {} and press 2.",
    "Telefon: {}", "Tél. : {}", "Kontakt: {}", "Llámame al {}", "{} - office",
]  # fmt: skip
PHONE_BARE = [
    "Jamie Lee, {}, Marketing", "{}", "Contact list:\n- Sam Ortiz {}\n", "Sam Ortiz\n{}\nsam@example.com",
    "From: Oskar\nSent from my phone\n{}", "Reservations {} / info@hotel.example", "Emergency: {}",
]  # fmt: skip


def _phone(rng: random.Random, bare: bool) -> tuple[str, str]:
    country = rng.choice(list(PHONE_FORMATS))
    fmts = PHONE_FORMATS[country]
    if bare:
        fmts = [f for f in fmts if f.startswith(_SELF_EVIDENT) or f.count("#") + f.count("N") >= 10] or fmts
    return _digits(rng, rng.choice(fmts)), country


def _iban(rng: random.Random, country: str | None = None) -> str:
    cc = country or rng.choice(list(IBAN_LENGTHS))
    n = IBAN_LENGTHS[cc] - 4
    alnum = string.ascii_uppercase + _D
    bban = "".join(rng.choice(_D if i < 4 or rng.random() < 0.8 else alnum) for i in range(n))
    num = int("".join(str(int(c, 36)) for c in bban + cc + "00"))
    return f"{cc}{98 - num % 97:02d}{bban}"


def _iban_written(rng: random.Random) -> str:
    iban = _iban(rng)
    style = rng.random()
    if style < 0.4:
        iban = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    elif style < 0.5:
        iban = "-".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    return iban.lower() if rng.random() < 0.3 else iban


IBAN_CONTEXT = [
    "Please wire it to {}.", "IBAN: {}", "My account is {} (Sparkasse).", "Send to {}, thanks!",
    "iban {} bic DEUTDEFF", "Bankverbindung: {}", "Pay the invoice to {} by Friday.", "{}",
    "Refund account - {} - holder J. Smith", "use iban {} for the deposit",
]  # fmt: skip

_STEMS = [
    "Oak", "Maple", "Church", "High", "Station", "King", "Queen", "Mill", "Park", "Victoria", "Baker",
    "Elm", "Cedar", "Lake", "Hill", "Bridge", "North", "George", "Albert", "Market", "Green", "Willow",
    "Chestnut", "Washington", "Lincoln", "Franklin", "Jefferson", "Sunset", "Riverside", "Harbour",
]  # fmt: skip
_SYL = ["ka", "lo", "ri", "ber", "sen", "ma", "to", "vi", "len", "dor", "ni", "sa", "gal", "mon", "te", "ru"]


def _name(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return rng.choice(_STEMS)
    return "".join(rng.choice(_SYL) for _ in range(rng.randint(2, 3))).capitalize()


_CITIES = [
    "Springfield", "Leeds", "Toronto", "Perth", "Cork", "Lyon", "Berlin", "Graz", "Utrecht", "Aarhus",
    "Bergen", "Uppsala", "Tampere", "Milano", "Sevilla", "Porto", "Curitiba", "Kraków", "Szeged", "Brno",
]  # fmt: skip
_CHOICES = {
    "en": ["Street", "St", "Avenue", "Ave", "Road", "Rd", "Lane", "Drive", "Dr", "Court", "Place",
           "Boulevard", "Blvd", "Way", "Terrace", "Crescent", "Close", "Parkway", "Highway", "Circle",
               "Trail",
           "Square"],
    "uk": ["Road", "Street", "Lane", "Close", "Gardens", "Mews"],
    "ca": ["Avenue", "Street", "Crescent", "Drive"],
    "au": ["Street", "Road", "Parade", "Terrace"],
    "unit": ["", "", ", Apt <#>", " Suite <Z##>", ", Flat <Z>"],
    "unitword": ["Apt.", "Suite", "Flat", "Unit"],
    "fr": ["rue", "avenue", "boulevard", "place", "chemin"],
    "frof": ["de la ", "du ", "des ", ""],
    "de": ["straße", "strasse", "weg", "gasse", "platz", "allee", "str."],
    "desep": [", ", " ", "\n"],  # "Hauptstraße 5 10115 Berlin": a house number, then a postcode
    "nl": ["straat", "laan", "weg", "gracht"],
    "nordic": ["vej", "gade", "gatan", "vägen", "veien", "gata"],
    "fi": ["katu", "tie", "kuja"],
    "it": ["Via", "Viale", "Piazza", "Corso"],
    "itof": ["", "dei ", "della "],
    "es": ["Calle", "Avenida", "Paseo", "Plaza"],
    "esof": ["de ", "del ", ""],
    "essep": [", ", " "],
    "pt": ["Rua", "Avenida", "Travessa"],
    "ptof": ["do ", "da ", "dos ", ""],
    "hu": ["utca", "út", "tér", "u."],
    "state": ["CA", "NY", "TX", "IL", "WA", "MA"],
    "ukpc": ["LS<#> <#>DX", "M<##> <#>QT", "SW<#>A <#>AA"],
    "lead": ["", "<Z####> "],
}  # fmt: skip
ADDRESS_FORMATS = {
    "US": "<Z###> {name} {en}{unit}, {city}, {state} <#####>",
    "UK": "<Z##> {name} {uk}, {city} {ukpc}",
    "UK flat": "Flat 2, <Z##> {name} {uk}, {city} {ukpc}",
    "CA": "<Z###> {name} {ca}{unit}, {city}, ON M5V 2T6",
    "AU": "<Z##> {name} {au}, {city} NSW 2<###>",
    "AU unit": "Unit 4/<Z#> {name} {au}, {city} NSW 2<###>",
    "FR": "<Z#> {fr} {frof}{name}, <#####> {city}",
    "DE": "{name}{de} <Z#>{desep}<#####> {city}",
    "NL": "{name}{nl} <Z##>, <####> KL {city}",
    "NORDIC": "{name}{nordic} <Z#>, <####> {city}",
    "FI": "{name}{fi} <Z#> B, <#####> {city}",
    "IT": "{it} {itof}{name} <Z##>, <#####> {city}",
    "ES": "{es} {esof}{name}{essep}<Z##>, <#####> {city}",
    "PT": "{pt} {ptof}{name} <Z###>, {city}",
    "PL": "ul. {name} <Z##>/<Z>, <##>-<###> {city}",
    "HU": "{name} {hu} <Z#>., {city}",
    "UNIT": "{lead}{name} <Z##>, {unitword} <Z##>, {city}",  # no street type: the unit after makes it one
    "CORNER": "the corner of {name} {en} and {name} {ca}",
}


def _fill(rng: random.Random, template: str) -> str:
    """``{key}``: a choice (``name``, ``city`` or from ``_CHOICES``); ``<pattern>``: digits (``_digits``)."""

    def choose(m: re.Match[str]) -> str:
        key = m.group(1)
        if key == "name":
            return _name(rng)
        return rng.choice(_CITIES) if key == "city" else _fill(rng, rng.choice(_CHOICES[key]))

    text = re.sub(r"\{(\w+)\}", choose, template)
    return re.sub(r"<([#NZ]+)>", lambda m: _digits(rng, m.group(1)), text)


def _address(rng: random.Random) -> tuple[str, str]:
    style = rng.choice(list(ADDRESS_FORMATS))
    return _fill(rng, ADDRESS_FORMATS[style]), style.split()[0]


ADDRESS_CONTEXT = [
    "I live at {}.", "Ship to: {}", "Please send the documents to {}", "Our office: {}\nOpen 9-5.",
    "Billing address:\n{}", "Delivery address - {}", "We moved to {} last month.", "{}",
    "Jane Roe\n{}\nUnited Kingdom", "Meet me at {} at noon.", "Return address: {}",
]  # fmt: skip
# Numbers that are none of the structured types ({y}: a year; <…>: digits; <0Z> a month, <1#> a day).
NEGATIVES = {
    "timestamp": ["{y}-<0Z>-<1#> <1#>:<##>:<##>,<###> INFO worker started",
                  "[<1#>/<0Z>/{y} <1#>:<##>] request took 12 ms",
                  "created_at=1<#########> updated=1<############>"],
    "date": ["The contract runs from <1#>.<0Z>.{y} to <2#>.<0Z>.{y}.",
             "Due <0Z>-<2#>-{y}, posted {y}/<0Z>/<1#>"],
    "order id": ["Your order #<Z########> has shipped.", "Order number <Z##> <###> <####> is on its way"],
    "invoice": ["Invoice <Z#######> dated {y}-03-01, total 1,240.00 EUR", "Ref: {y}<####>-<####>"],
    "tracking": ["Tracking number: 9400 <####> <####> <####> <####> <##>",
                 "Parcel <Z####> <#####> left the depot"],
    "ticket": ["Ticket <Z###>-<####> was closed; see case 00<######>."],
    "price": ["The house sold for $1,<###>,<###> (<Z> <###> <###> €).",
              "Budget: <Z##> <###> <###> EUR for {y}"],
    "version": ["Upgrade to version <Z>.<#>.<#####>.<####>",
                "Windows build 2<####>.<####> and v<Z>.<Z#>.<#>"],
    "range": ["See pages <Z###>-<Z###> and the years {y}-{y}.", "Salaries range <Z####>-<Z####> a year"],
    "coordinates": ["Coordinates: <Z#>.<######> <Z##>.<######>", "GPS -<Z#>.<####>, <Z##>.<####>"],
    "measure": ["The city has <Z> <###> <###> inhabitants and covers <Z> <###> km2.",
                "Transferred <Z#########> bytes in <Z#> seconds"],
    "decimal": ["pi is about 3.<##########> and e 2.<#######>"],
    "score": ["Final score <#>-<#>; attendance <Z#>,<###>"],
    "title": ["Top <Z#> {name} Road Trips for {y}"],
    "gate": ["Boarding at gate <Z#>, seat <Z#>C, flight <Z###>"],
    "walk": ["walk <Z> blocks down the street and take route <Z#>"],
    "account": ["Account ID <Z###> <####> <####> was suspended"],
    "serial": ["Serial number <####>-<####>-<####>; model <Z###>"],
    "names with numbers": ["Apollo 13 and Top 10 Park Ideas",
                           "Windows 11 Home on the 2nd Floor, Meeting Room 4",
                           "5 Things Every Street Photographer Knows", "iPhone 15 Pro Max at Studio 54",
                           "In {y} Apple sold <Z#> million iPhones; the {y} Games had <Z> <###> athletes."],
}  # fmt: skip
_HEX = "0123456789abcdef"


def _negative(rng: random.Random) -> tuple[str, str]:
    """A sentence with numbers that are none of the structured types."""
    kind = rng.choice([*NEGATIVES, "hash"])
    if kind == "hash":
        sha = "".join(rng.choice(_HEX) for _ in range(40))
        return f"commit {sha} fixes it; id {rng.choice('abcdefgh')}{rng.choice('klmnop')}{sha[:20]}", kind
    text = rng.choice(NEGATIVES[kind]).replace("{y}", str(rng.randint(1990, 2029)))
    text = text.replace("<0Z>", "0<Z>").replace("<1#>", "1<#>").replace("<2#>", "2<#>")
    return _fill(rng, text), kind


_EMAIL = re.compile(r"[\w.]+@[\w.]+\.\w+")


def _example(text: str, spans: list[tuple[int, int, str]], kind: str) -> Example:
    """With the template's own e-mail addresses labelled too."""
    spans += [(m.start(), m.end(), "EMAIL_ADDRESS") for m in _EMAIL.finditer(text)]
    return Example(text, tuple(sorted(spans)), kind)


def _place(template: str, value: str) -> tuple[str, tuple[int, int]]:
    i = template.index("{}")
    return template.replace("{}", value, 1), (i, i + len(value))


def generate(n: int = 2000, seed: int = 0) -> list[Example]:
    """``n`` examples: about a quarter phones, a tenth IBANs, a fifth addresses, the rest look-alikes."""
    rng = random.Random(seed)
    out: list[Example] = []
    for _ in range(n):
        r = rng.random()
        if r < 0.25:
            bare = rng.random() < 0.25
            value, country = _phone(rng, bare)
            template = rng.choice(PHONE_BARE if bare else PHONE_CONTEXT)
            text, (a, b) = _place(template, value)
            spans = [(a, b, "PHONE_NUMBER")]
            if "{}" in text:  # a second phone slot
                other, _ = _phone(rng, False)
                text, (c, d) = _place(text, other)
                spans.append((c, d, "PHONE_NUMBER"))
            out.append(_example(text, spans, f"phone: {country}{' (alone)' if bare else ''}"))
        elif r < 0.35:
            text, (a, b) = _place(rng.choice(IBAN_CONTEXT), _iban_written(rng))
            out.append(_example(text, [(a, b, "IBAN_CODE")], "iban"))
        elif r < 0.55:
            value, style = _address(rng)
            text, (a, b) = _place(rng.choice(ADDRESS_CONTEXT), value)
            out.append(_example(text, [(a, b, "STREET_ADDRESS")], f"address: {style}"))
        else:
            text, kind = _negative(rng)
            out.append(Example(text, (), f"negative: {kind}"))
    return out
