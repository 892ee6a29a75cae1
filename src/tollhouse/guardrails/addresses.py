"""Street addresses for the PII rule (``STREET_ADDRESS``), written the common countries' ways.

``221B Baker Street`` (number, name, street type: US / UK / CA / AU / IE), ``12 rue de la Paix`` (FR),
``Hauptstraße 5`` / ``Kerkstraat 12`` / ``Hersnapvej 18`` (a street word glued to the name: DE, NL, Nordic,
FI), ``Via Roma 10`` / ``Calle Mayor, 12`` / ``ul. Długa 5`` (the type first: IT, ES, PT, PL…),
``Kossuth Lajos utca 3.`` (HU, TR, NO), US military mail (``PSC 1234, Box 5678``) and PO boxes, and —
after words such as "lives at" or "address:" — a bare name and number (``Edeby 55``). The span runs on
over units (Apt., Suite, Flat…) and the city / state / postcode / country that follow.
"""

from __future__ import annotations

import re

_UPPER = "A-Z" + "".join(
    chr(c) for c in (*range(0xC0, 0x250), *range(0x386, 0x3B0), *range(0x400, 0x430)) if chr(c).isupper()
)
_CAP = rf"[{_UPPER}][\w'\u2019.\-]*"  # a capitalised word
_ANY = r"[^\W\d_][\w'\u2019.\-]*"  # any word (all-lowercase texts)
_PARTICLE = (
    r"(?:de|del|della|delle|dei|di|da|do|dos|das|du|des|la|le|les|los|las|el|al|van|von|der|den|ter|"
    r"y|e|of|the|and|on|upon|\d{1,3}(?:st|nd|rd|th)|[NSEW]\.?)"
)
# Street types written after the name: the common ones, enough on their own ("10 Downing Street") …
_EN_COMMON = (
    r"Street|St|Str|Avenue|Ave|Av|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|Terrace|Tce|"
    r"Terr|Crescent|Cres|Close|Way|Highway|Hwy|Parkway|Pkwy|Square|Sq|Circle|Cir|Trail|Trl|Gardens|Gdns|"
    r"Mews|Parade|Pde|Broadway|Alley|Expressway|Expy|Freeway|Fwy|Turnpike|Tpke|Causeway|Esplanade"
)
# … and the rest of USPS Publication 28's suffixes (plurals too) and UK / AU / NZ ones, which also name
# other things ("Silver Lake", "Park"), so a unit, a postcode or an address cue must stand near them.
_EN_RARE = (
    r"Alleyway|Anex|Approach|Arcade|Bayou|Beach|Bend|Bluffs?|Bottom|Brae|Branch|Bridge|Brooks?|Burgs?|"
    r"Bypass|Camp|Canyon|Cape|Centers?|Centre|Chase|Circles|Circus|Cliffs?|Club|Commons?|Corners?|Course|"
    r"Courts|Coves?|Creek|Crest|Cross|Crossing|Crossroads?|Curve|Dale|Dam|Divide|Drives|Estates?|"
    r"Extensions?|Falls?|Ferry|Fields?|Flats?|Fords?|Forest|Forges?|Forks?|Fort|Gateway|Glens?|Greens?|"
    r"Green|Groves?|Gr|Harbou?rs?|Haven|Heights|Hts|Hills?|Hollow|Inlet|Islands?|Isle|Junctions?|Keys?|"
    r"Knolls?|Lakes?|Land|Landing|Lights?|Loaf|Locks?|Lodge|Loop|Mall|Manors?|Meadows?|Mills?|Mission|"
    r"Motorway|Mount|Mountains?|Neck|Orchard|Oval|Overpass|Parks?|Parkways|Pass|Passage|Path|Pike|Pines?|"
    r"Plains?|Plaza|Points?|Ports?|Prairie|Quay|Radial|Ramp|Ranch|Rapids?|Rest|Ridges?|Rise|River|Roads|"
    r"Route|Rte|Row|Rue|Run|Shoals?|Shores?|Skyway|Springs?|Spurs?|Squares|Station|Strand|Stravenue|"
    r"Stream|Streets|Summit|Terraces|Throughway|Trace|Track|Trafficway|Tunnel|Underpass|Unions?|Vale|"
    r"Valleys?|Viaduct|Views?|Villages?|Villas|Ville|Vista|Walks?|Wall|Ways|Wells?|Wharf|Wynd|Yard"
)
_EN_TYPES = _EN_COMMON + "|" + _EN_RARE
_EN_STRONG = re.compile(rf"(?:{_EN_COMMON})\.?$", re.I)
# A number followed by a street name and type is a house number ("03262 2437 Main St"), never a phone.
STREET_AFTER = re.compile(rf"[ \t]+(?:[^\W\d_][\w'\u2019.\-]*[ \t]+){{0,3}}(?:{_EN_COMMON})\b")
# Street words glued to the name: DE / AT / CH, NL / BE, DK / NO / SE, FI, IS, EE (also after a hyphen:
# "Ana-Noack-Weg 9").
_SUFFIX = (
    r"straße|strasse|str\.|gasse|platz|allee|weg|damm|ufer|chaussee|steig|pfad|markt|straat|laan|plein|"
    r"gracht|kade|dijk|singel|steeg|baan|hof|dreef|plantsoen|vej|gade|gård|plads|torv|stræde|veien|vegen|"
    r"vei|gata|gaten|gatan|vägen|väg|gränd|torget|stigen|stien|backen|bakken|svingen|tunet|haugen|plassen|"
    r"brygga|kaia|havna|alléen|katu|kuja|tie|polku|väylä|kaari|raitti|bulevardi|aukio|penger|puistikko|"
    r"braut|vegur|stræti|stígur|tänav|maantee|puiestee|ulice|utca"
)
# Street types written before the name: IT, ES / MX, PT / BR, FR, PL, CZ, RO, RU / UA, GR.
_PREFIX = (
    r"Via|Viale|Piazza|Piazzale|Corso|Largo|Vicolo|Vico|Strada|Lungomare|Borgo|Contrada|Località|Loc\.|"
    r"Salita|Traversa|Galleria|Frazione|Calle|C/|Callejón|Avenida|Avda\.?|Av\.?|Paseo|Pasaje|Plaza|Camino|"
    r"Carrera|Ronda|Travesía|Glorieta|Rambla|Carretera|Cuesta|Urbanización|Urb\.|Carrer|Passeig|Plaça|"
    r"Avinguda|Calzada|Privada|Cerrada|Andador|Circuito|Circunvalación|Prolongación|Retorno|Rua|Travessa|"
    r"Praça|Alameda|Estrada|Rodovia|Beco|Ladeira|Quadra|Viela|Esplanada|Viaduto|Rue|Avenue|Boulevard|Bd|"
    r"Bld|Chemin|Impasse|Quai|Allée|Cours|ul\.|ulica|al\.|aleja|aleje|pl\.|plac|os\.|osiedle|skwer|"
    r"rondo|bulwar|náměstí|nám\.|třída|trg|Str\.|Strada|Bulevardul|Calea|Aleea|Splaiul|Şoseaua|Drumul|"
    r"Intrarea|Piața|Piaţa|ул\.|улица|пр\.|пр-т|проспект|пер\.|переулок|наб\.|набережная|бул\.|"
    r"бульвар|шоссе|пл\.|площадь|вул\.|вулиця|просп\.|провулок|шосе|Οδός|Λεωφόρος|Λεωφ\.|Πλατεία"
)
# Street types written between the name and the number: HU, NO, DK, SE, FI, TR, and DE spelt apart.
_MIDDLE = (
    r"utca|u\.|út|útja|tér|körút|krt\.|köz|sor|sétány|(?i:Caddesi|Cad\.|Sokak|Sok\.|Sokağ\u0131|Bulvar\u0131|"
    r"Mahallesi|Mah\.|Straße|Strasse|Weg|Platz|Allee|Gasse|vej|gade|vei|veien|allé|plads|katu|tie|gatan|"
    r"vägen|väg)"
)
_NUMBER_WORD = r"(?:(?:Nr|No|д|буд|дом|č|br)\.?[ \t]*|№[ \t]*)?"  # "Drumul Cristea Nr. 265", "д. 9"
_UNIT_WORD = r"(?:Apt|Apartment|Suite|Ste|Unit|Flat|Floor|Fl|Room|Rm|Bldg|Building|Block|Lot|Dept)\.?"
_UNIT = r"(?:Apt|Apartment|Suite|Ste|Unit|Flat|Floor|Fl|Room|Rm|Bldg|Building|Block|Lot|Dept|#)\.?"
_POSTCODE = (
    r"(?:\d{5}(?:-\d{4})?|\d{4}|\d{2}-\d{3}|\d{3} ?\d{2}|[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}|"
    r"[A-Z]\d[A-Z] ?\d[A-Z]\d)"
)
_CUE = (
    r"(?:\b(?:lives?|living|resides?|residing|located|moved|relocated|ship(?:ped)?|deliver(?:ed)?|send|"
    r"sent|mail(?:ed)?|post(?:ed)?|return(?:ed)?|forward(?:ed)?|arrived|office|offices|headquarters|"
    r"visit|find us|us)(?: \w+){0,3}? (?:at|to):?|\baddress(?:es)?(?: is| was|:)?|\baddr\.?:?)[ \t]*\n?[ \t]*"
)


_STOP = (
    r"(?!(?:the|a|an|and|or|of|to|in|on|at|by|for|from|with|down|up|my|your|his|her|our|their|this|that|"
    r"is|are|was|were|be|it|we|you|they|he|she|i|me|us|them|about|over|under|per|more|than|some|all)\b)"
)
_FR_FIRST = (
    r"(?i:rue|avenue|av\.|boulevard|bd|place|allée|chemin|impasse|quai|route|cours|passage|calle|avenida|rua)|"
    r"Via|Viale|Piazza|Corso|Largo|Plaza|Paseo|Travessa|Praça|Alameda|Estrada"
)
_NORDIC = r"(?<=s[ \t])(?:gate|gata)"


def _build(word: str, stem: str, particle: str) -> tuple[re.Pattern[str], ...]:
    name = rf"(?:{word}|{particle})"
    house = r"\d{1,6}[A-Za-z]?(?:[-/]\d{1,5}[A-Za-z]?)?"
    num_after = rf"{_NUMBER_WORD}\d{{1,5}}[A-Za-z]?(?:[-/]\d{{1,5}}[A-Za-z]?)?\b\.?"
    unit_before = rf"(?:{_UNIT}[ \t]?[\w\-]{{1,6}},?[ \t]+)?"
    lead = r"(?:\d{1,6}[ \t]+)?"  # a building or postal number written first
    types = rf"(?P<t>{_EN_TYPES})" if word == _CAP else rf"(?P<t>(?i:{_EN_TYPES}))"
    inner = rf"(?:{word}|{_ANY})"
    start = r"(?<![\w'\u2019.\-])"  # matches start at a word: fails fast elsewhere
    return (
        # 221B Baker Street / 350 Fifth Avenue / 10 Downing St
        re.compile(
            rf"{start}{unit_before}{lead}\b{house}[ \t]+(?:{name}[ \t]+){{0,3}}?{word}[ \t]+{types}\b\.?"
        ),
        # 12 rue de la Paix / 5 Calle Mayor
        re.compile(
            rf"{start}{unit_before}{lead}\b{house},?[ \t]+(?:(?:bis|ter)[ \t]+)?(?:{_FR_FIRST})[ \t]+"
            rf"(?:{name}[ \t]+){{0,4}}?{word}"
        ),
        # Hauptstraße 5 / Hersnapvej 18 / Brucker Bundesstrasse 31 / Hauptstr. 5
        re.compile(
            rf"{start}{lead}(?:{word}[ \t]+){{0,2}}\b{stem}(?:{_SUFFIX}|-(?i:{_SUFFIX}|ring))"
            rf"[ \t]?{num_after}"
        ),
        # Via Roma 10 / Calle Mayor, 12 / ul. Słowicza 10
        re.compile(
            rf"{start}{lead}(?<!\bet )\b(?:{_PREFIX})[ \t]+(?:{name}[ \t]+){{0,5}}?{word},?[ \t]+{num_after}"
        ),
        # Kossuth Lajos utca 3. / Árpád fejedelem útja 3. / Trenerys gate 232 / Atatürk Caddesi 12
        re.compile(
            rf"{start}{lead}\b{word}(?:[ \t]+{inner}){{0,2}}[ \t]+(?:{_MIDDLE}|{_NORDIC})[ \t]+{num_after}"
        ),
        # after "lives at" / "address:": Edeby 55 / 172 Maneeži 75 / 86036 Rua do Arenque 1634
        re.compile(
            rf"(?i:{_CUE})(?P<a>(?:{house}[ \t]+)?(?:{name}[ \t]+){{0,3}}{word}[ \t]+{num_after})"
            rf"(?=[ \t]*(?:,|\n|\.|$|(?i:{_UNIT})))"
        ),
        # a unit next: 28030 Edeby 55, Apt. 297 / 2505 Heatherleigh Suite 620
        re.compile(
            rf"{start}(?:{house}[ \t]+)?(?:{name}[ \t]+){{0,3}}(?=[^\W\d_]{{3}}){word}"
            rf"(?:[ \t]+{num_after}|(?<=\w)(?=[ \t]+(?i:Suite|Apt)))"
            rf"(?=,?[ \t]*(?:\n[ \t>]*)?(?i:{_UNIT_WORD})[ \t]?\d)"
        ),
        # the corner of 159 Venizelou Street and Rennie Union
        re.compile(
            rf"(?i:\bcorner of)[ \t]+(?:{house}[ \t]+)?(?:{name}[ \t]+){{0,4}}{word}[ \t]+(?:and|&)[ \t]+"
            rf"(?:{name}[ \t]+){{0,3}}{word}"
        ),
    )


_CASED = _build(_CAP, rf"[{_UPPER}][\w\-]*?", _PARTICLE)
_LOWER = _build(
    _STOP + _ANY,
    r"[^\W\d_][\w\-]*?",
    r"(?:de|del|della|di|da|do|dos|das|du|des|la|le|van|von|der|\d{1,3}(?:st|nd|rd|th))",
)
_MILITARY = re.compile(
    r"\b(?:(?:PSC|CMR|Unit)[ \t]\d{3,5},?[ \t]Box[ \t]\d{3,5}|"
    r"(?:USNS|USS|USNV|USCGC)[ \t][\w'\u2019.\-]+(?:[ \t][\w'\u2019.\-]+)?)"
    r",?\s+[AFD]PO[ \t]A[AEP][ \t]\d{5}\b",
    re.I,
)
# 茨城県多摩市独鈷沢22丁目22番19号: prefecture / city / district, then chōme, block and house numbers
_JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]{0,20}\d{1,3}丁目\d{1,4}(?:番地?|-)(?:\d{1,4}号?)?")
_PO_BOX = re.compile(
    r"\b(?:P\.?[ \t]?O\.?[ \t]?Box|Post(?:al)? Office Box|Postfach|Apartado|Caixa Postal)[ \t]\d{1,6}\b", re.I
)
_PLACE_WORD = rf"(?:[{_UPPER}][^\W\d_]*(?:['\u2019.\-][^\W\d_]+)*\.?|\([^()\n\d]{{1,30}}\))(?!\w)"
_PLACE_ANY = r"[^\W\d_]+(?:['\u2019.\-][^\W\d_]+)*\.?(?!\w)"


def _tail(word: str, parts: int) -> re.Pattern[str]:
    """Units, then places (capitalised words, a particle only between two: "Saint-Jean de Luz"), state
    codes and postcodes, on the same line or the next ones."""
    place = rf"{word}(?:[ \t]+(?:{_PARTICLE}[ \t]+)?{word}){{0,3}}"
    return re.compile(
        rf"(?:,?[ \t]*(?:\n[ \t>]*,?[ \t]*)?(?:(?i:{_UNIT})[ \t]?[\w\-]{{1,6}}\b\.?|"
        rf"{_POSTCODE}\b(?:[ \t]+{place})?|{place}(?:,?[ \t]+{_POSTCODE}\b)?)"
        rf"(?![\w'\u2019.\-]*:)){{0,{parts}}}"
    )


_TAIL = _tail(_PLACE_WORD, 5)
_TAIL_LOWER = _tail(_PLACE_ANY, 2)
_TITLE_WORDS = re.compile(
    r"\b(?:top|best|chapter|episode|season|part|vol|volume|level|page|step|round|day|week|grade|class|"
    r"room|gate|platform|track|route|interstate|exit|windows|iphone|version)[ \t]*$",
    re.I,
)
_HEADLINE = re.compile(  # "5 Things Every Street Photographer Knows": a headline, not an address
    r"\d+[ \t]+(?:things|ways|reasons|tips|steps|days|years|times|best|top|great|easy|simple|ideas|facts|"
    r"signs|rules|lessons|secrets|minutes|hours|weeks|months|people|places|books|songs|movies|new|more|"
    r"million|billion|thousand|hundred)\b",
    re.I,
)
_TAIL_EVIDENCE = re.compile(rf"\d|\b(?i:{_UNIT})")
_UNIT_FIRST = re.compile(rf"(?i:{_UNIT})[ \t]?\w")
_CUE_BEFORE = re.compile(rf"(?i:{_CUE})$")
_YEAR = re.compile(r"(?:1[89]|20)\d\d\b")
_BEFORE_YEAR = re.compile(
    r"\b(?:in|since|until|by|from|year|of|during|before|after|the|a|an|its|his|her|their|our|my|your|this|"
    r"that|next|last)[ \t]*$",
    re.I,
)


def _variants(alternation: str) -> set[str]:
    """The lowercased words of a regex alternation of literals ("Bluffs?" gives bluff and bluffs)."""
    out: set[str] = set()
    plain = re.sub(r"\\u([0-9a-f]{4})", lambda m: chr(int(m.group(1), 16)), alternation)
    for alt in re.sub(r"\(\?<=[^)]*\)|\(\?[:i]+|[()]", "", plain).replace("\\", "").split("|"):
        forms = [""]
        for i, ch in enumerate(alt):
            if ch == "?":
                continue
            optional = i + 1 < len(alt) and alt[i + 1] == "?"
            forms = [f + ch for f in forms] + (forms if optional else [])
        out.update(f.lower().rstrip(".") for f in forms if f.rstrip("."))
    return out


# Which patterns a word calls for (indices into _CASED / _LOWER, then the extra ones).
_MIL, _BOX = len(_CASED), len(_CASED) + 1
_KEYS: dict[str, tuple[int, ...]] = {}
for _i, _alternation in (
    (0, _EN_TYPES), (1, _FR_FIRST), (3, _PREFIX), (4, _MIDDLE + "|gate|gata"),
    (6, "apt|apartment|suite|ste|unit|flat|bldg"),
    (5, r"lives?|living|resides?|residing|located|moved|relocated|ship|shipped|deliver|delivered|send|sent|"
        r"mail|mailed|post|posted|return|returned|forward|forwarded|arrived|office|offices|headquarters|"
        r"visit|us|address|addresses|addr"),
    (7, "corner"), (_MIL, "psc|cmr|unit|usns|uss|usnv|uscgc|apo|fpo|dpo"),
    (_BOX, "box|postfach|apartado|caixa"),
):  # fmt: skip
    for _w in _variants(_alternation):
        _KEYS[_w] = _KEYS[_w + "."] = (*_KEYS.get(_w, ()), _i)
_SUFFIXES = tuple(_variants(_SUFFIX)) + tuple(f"-{w}" for w in _variants(_SUFFIX)) + ("-ring", "str.")
_KEYSET = frozenset(_KEYS)
_BOUNDARY = frozenset(' \t\n\r,;:!?()[]{}<>"/|*=+&@$%^~`')  # characters a street word may touch
_WORDS = re.compile(r"([^\W\d_][\w'\u2019.\-]*)([ \t]?\d)?")
_UNIT_NUMBER = re.compile(r"\.?[ \t]?\d").match
_DIGIT_NEXT = re.compile(r"[ \t]?\d").match
_NUMBER = re.compile(r"\d+")
_LAST = (5, 6)  # cue and unit patterns: only where no other pattern found the address
_AT_WORD = (5, 7)  # patterns that start with their street word ("lives at …", "corner of …")
# Per pattern, how far before and after its street word a match can start and the word stand.
_SPAN = {
    0: (64, 4), 1: (30, 90), 2: (60, 16), 3: (12, 100), 4: (60, 16), 5: (0, 110), 6: (56, 14), 7: (0, 130),
    _MIL: (30, 60), _BOX: (25, 16),
}  # fmt: skip


def _windows(text: str, low: str) -> dict[int, list[tuple[int, int]]]:
    """Per pattern, the stretches of ``text`` worth searching: around street words near a number."""
    anchors: list[tuple[int, int, int]] = []
    pairs = _WORDS.findall(low)  # (word, the digit right after it or "")
    # Hauptstraße 5, Hersnapvej 18: a street word glued to the name, right before the number
    glued = {w for w, digit in pairs if digit and w.endswith(_SUFFIXES)}
    for word in _KEYSET.intersection(dict(pairs)) | glued:
        at = low.find(word)
        while at >= 0:  # every whole-word occurrence
            end = at + len(word)
            if (at == 0 or low[at - 1] in _BOUNDARY) and (end == len(low) or low[end] in _BOUNDARY):
                if word in glued and _DIGIT_NEXT(low, end):
                    anchors.append((2, at, end))
                anchors += [(pid, at, end) for pid in _KEYS.get(word, ())]
            at = low.find(word, end)
    found: dict[int, list[tuple[int, int]]] = {}
    for pid, start, end in sorted(anchors, key=lambda x: x[1]):
        before, after = _SPAN[pid]
        a, b = max(0, start - before), min(len(text), end + after)
        if pid != 7 and _NUMBER.search(text, a, b) is None:
            continue  # every address but "the corner of X and Y" has a number within its reach
        if pid == 6 and not _UNIT_NUMBER(low, end):
            continue  # "Apt. 5", "Suite 620": the unit's own number
        spans = found.setdefault(pid, [])
        if spans and a <= spans[-1][1] and pid not in _AT_WORD:
            spans[-1] = (spans[-1][0], max(b, spans[-1][1]))
        else:
            spans.append((a, b))
    return found


def find(text: str) -> list[tuple[int, int]]:
    """Spans of street addresses in ``text``, merged where they overlap. Only the stretches around street
    words (``Street``, ``Via``, ``…straße``, ``Apt``, "lives at"…) near a number are searched."""
    lower = text.islower()
    patterns = _LOWER if lower else _CASED
    spans: list[tuple[int, int]] = []
    for pid, stretches in sorted(_windows(text, text.lower()).items(), key=lambda kv: kv[0] in _LAST):
        pattern = _MILITARY if pid == _MIL else _PO_BOX if pid == _BOX else patterns[pid]
        for lo, hi in stretches:
            if pid in _LAST and _covered(spans, lo + _SPAN[pid][0]):
                continue  # the street word is inside an address found already
            found = [pattern.match(text, lo, hi)] if pid in _AT_WORD else pattern.finditer(text, lo, hi)
            for m in filter(None, found):
                start = m.start("a") if "a" in pattern.groupindex else m.start()
                if pid < _MIL and not _plausible(text, m, pid, start):
                    continue
                spans.append((start, _extend(text, m.end(), lower)))
    if "丁目" in text:
        spans += [(m.start(), m.end()) for m in _JAPANESE.finditer(text)]
    merged: list[tuple[int, int]] = []
    for start, end in sorted((a, _trim_stop(text, a, b)) for a, b in spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


_ABBREVIATION = re.compile(
    r"(?:\b(?:st|str|ave?|rd|apt|blvd|ln|dr|ct|pl|sq|hwy|pkwy|ste|fl|no|nr|ul|al|bd|cir|ter|trl|mt|ft|"
    r"jr|sr|bldg|dept|ste|av|gen|pres|rr)|\b[^\W\d_])\.$",
    re.I,
)


_FULL_STOP = re.compile(r"(?<=[^\W\d_])\.(?=[ \t]+\S)")  # after a letter, inside the span


def _trim_stop(text: str, start: int, end: int) -> int:
    """The span up to its sentence's full stop: "… Nicosia, Cyprus." ends at "Cyprus", "… New Zealand.
    Please call" at "Zealand", "Ana-Noack-Weg 9-4." at "9-4"; an abbreviation's dot stays ("12 Filadelfeos
    Str.", "Apt. 4"), and so does a house number's inside the span ("Rákóczi út 13. Suite 104")."""
    for m in _FULL_STOP.finditer(text, start, end):
        if not _ABBREVIATION.search(text[max(start, m.end() - 8) : m.end()]):
            return m.start()
    final = end > start and text[end - 1] == "." and (end == len(text) or text[end].isspace())
    if final and not _ABBREVIATION.search(text[max(start, end - 8) : end]):
        return end - 1
    return end


def _covered(spans: list[tuple[int, int]], at: int) -> bool:
    return any(a <= at < b for a, b in spans)


def _plausible(text: str, m: re.Match[str], pid: int, start: int) -> bool:
    if (
        pid == 0
        and not _EN_STRONG.match(m.group("t"))
        and not _supported(text, m.start(), m.end(), m.group(0))
    ):
        return False  # "3 Big Lake": a rare street type needs a unit, a postcode or a cue around it
    if _TITLE_WORDS.search(text[max(0, start - 12) : start]) or _HEADLINE.match(m.group(0)):
        return False  # "Top 10 Beach Road Trips", "Chapter 3 Main Street", "5 Things Every Street…"
    return not (_YEAR.match(text, start) and _BEFORE_YEAR.search(text[max(0, start - 8) : start]))


def _extend(text: str, end: int, lower: bool) -> int:
    m = (_TAIL_LOWER if lower else _TAIL).match(text, end)
    return m.end() if m is not None else end


def _supported(text: str, start: int, end: int, core: str) -> bool:
    """A unit, a postcode or an address cue around a number + name + rare street type."""
    tail = text[end : _extend(text, end, False)]
    return (
        bool(_TAIL_EVIDENCE.search(tail))
        or _UNIT_FIRST.match(core) is not None
        or _CUE_BEFORE.search(text[max(0, start - 40) : start]) is not None
    )
