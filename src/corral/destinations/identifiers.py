"""Normalizing and hashing the identifiers that destinations match people on.

Ad platforms match the people in an audience by comparing SHA-256 digests of their
identifiers, so a value must be normalized exactly as the platform normalizes its own
copy before it is hashed: `John.Doe@GMail.com` and `johndoe@gmail.com` are one person to
Google, two to a naive hash. Each platform publishes its own rules, and they differ:

    google  Google's Data Manager and Customer Match rules (Google's own normalizer,
            google-ads-datamanager-util, is the reference the tests compare against)
    meta    Meta's Custom Audiences customer-file rules (facebook-business is the
            reference, except where Meta's published table says otherwise)
    plain   readable values for tools that store them as text (CRMs, messaging):
            trimmed, emails lowercased, phones in E.164; callers never hash these

`docs/identifiers.md` tables every kind against every rule set, with examples, and says
where Corral follows a platform's published rules rather than its SDK.

`default_region` is the country a value belongs to when it does not say: the country of
a phone number written without its country code, and the country whose postal rules
apply to a zip code.

Errors: `InvalidIdentifier` (a `CorralError` and a `ValueError`) means the value cannot
be normalized; its message names the kind and shows the value masked, so it can be shown
to a user and logged. An unknown kind or rule set is a plain `ValueError`: a bug in the
caller, not in the data.

>>> normalize("email", " John.Doe+promo@GMail.com ", "google")
'johndoe@gmail.com'
>>> normalize("phone", "(415) 555-0132", "meta")
'14155550132'
>>> prepare("email", "JANE@example.co.uk", "meta")
'be3724586de5c96ef874f6ccd5f779e375450643ec009966e57975edbddcd20a'
>>> prepare("email", "   ", "meta") is None
True
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections.abc import Callable

import phonenumbers

from corral.errors import CorralError

KINDS: frozenset[str] = frozenset(
    {
        "email",
        "phone",
        "first_name",
        "last_name",
        "zip",
        "country",
        "city",
        "state",
        "mobile_ad_id",
        "external_id",
    }
)
RULES: frozenset[str] = frozenset({"google", "meta", "plain"})

_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
_WHITESPACE = re.compile(r"\s+")
# Invisible characters that survive copy and paste from web forms and spreadsheets.
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
_GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
# What Google's normalizer removes from cities and states: anything not a word
# character or whitespace, and the underscore.
_SYMBOLS = re.compile(r"[^\w\s]|_")
_NOT_A_TO_Z = re.compile(r"[^a-z]")
_UUID = re.compile(r"([0-9a-f]{8})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{12})")
_ZEROED_AD_ID = "00000000-0000-0000-0000-000000000000"
# A UK postcode: outward code (area and district), then the inward code (sector digit
# and unit letters).
_UK_POSTCODE = re.compile(r"([a-z]{1,2}[0-9][a-z0-9]?)([0-9])[a-z]{2}")

# ISO 3166-1 alpha-2: the regions phonenumbers knows, less its two non-ISO ones (AC,
# TA), plus the uninhabited territories it has no numbers for. XK (Kosovo) is kept:
# it is user-assigned in ISO but used by both platforms.
_COUNTRIES = frozenset(phonenumbers.SUPPORTED_REGIONS - {"AC", "TA"}) | {
    "AQ",
    "BV",
    "GS",
    "HM",
    "PN",
    "TF",
    "UM",
}
_COUNTRY_ALIASES = {"UK": "GB"}

# Meta wants US states as their two-letter USPS code; names are keyed without spaces,
# the way Meta's normalization leaves them.
_US_STATES = {
    "alabama": "al",
    "alaska": "ak",
    "arizona": "az",
    "arkansas": "ar",
    "california": "ca",
    "colorado": "co",
    "connecticut": "ct",
    "delaware": "de",
    "districtofcolumbia": "dc",
    "florida": "fl",
    "georgia": "ga",
    "hawaii": "hi",
    "idaho": "id",
    "illinois": "il",
    "indiana": "in",
    "iowa": "ia",
    "kansas": "ks",
    "kentucky": "ky",
    "louisiana": "la",
    "maine": "me",
    "maryland": "md",
    "massachusetts": "ma",
    "michigan": "mi",
    "minnesota": "mn",
    "mississippi": "ms",
    "missouri": "mo",
    "montana": "mt",
    "nebraska": "ne",
    "nevada": "nv",
    "newhampshire": "nh",
    "newjersey": "nj",
    "newmexico": "nm",
    "newyork": "ny",
    "northcarolina": "nc",
    "northdakota": "nd",
    "ohio": "oh",
    "oklahoma": "ok",
    "oregon": "or",
    "pennsylvania": "pa",
    "rhodeisland": "ri",
    "southcarolina": "sc",
    "southdakota": "sd",
    "tennessee": "tn",
    "texas": "tx",
    "utah": "ut",
    "vermont": "vt",
    "virginia": "va",
    "washington": "wa",
    "westvirginia": "wv",
    "wisconsin": "wi",
    "wyoming": "wy",
    "americansamoa": "as",
    "guam": "gu",
    "northernmarianaislands": "mp",
    "puertorico": "pr",
    "usvirginislands": "vi",
}


class InvalidIdentifier(CorralError, ValueError):
    """A value that cannot be normalized as the identifier it is mapped to.

    `kind` is the identifier kind. The message shows a personal value masked, never
    whole; countries and states are not personal and are shown as they are.
    """

    def __init__(self, kind: str, text: str, problem: str):
        self.kind = kind
        label = _LABELS.get(kind, kind.replace("_", " "))
        shown = repr(text[:40]) if kind in _UNMASKED else _mask(text)
        super().__init__(f"{label} {shown} {problem}")


def normalize(kind: str, value: object, rules: str, *, default_region: str = "US") -> str | None:
    """`value` normalized as a `kind` identifier under `rules`, or None if it is empty.

    Raises InvalidIdentifier when the value cannot be normalized, and ValueError for an
    unknown kind, rule set or region.

    >>> normalize("country", " us ", "meta")
    'us'
    >>> normalize("zip", "94303-5300", "meta")
    '94303'
    """
    _check(kind, rules)
    region = _region(default_region)
    text = _as_text(kind, value, region)
    if text is None:
        return None
    return _NORMALIZERS[kind](text, rules, region)


def sha256_hex(text: str) -> str:
    """The SHA-256 digest of `text` encoded as UTF-8, in lowercase hex.

    >>> sha256_hex("abc")
    'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def looks_hashed(value: str) -> bool:
    """Whether `value` is already a SHA-256 hex digest: 64 hex digits, any case."""
    return _HEX_DIGEST.fullmatch(value.strip()) is not None


def prepare(
    kind: str,
    value: object,
    rules: str,
    *,
    hashed: bool = True,
    default_region: str = "US",
) -> str | None:
    """`value` ready to send: normalized under `rules`, then hashed if `hashed`.

    Empty values give None and are never hashed. When `hashed`, a value that is already a
    SHA-256 hex digest passes through, lowercased, so warehouses may hold hashes.

    >>> prepare("phone", "+1 (234) 567-8901", "meta")
    '254aa248acb47dd654ca3ea53f48c2c26d641d23d7e2e93a1ec56258df7674c4'
    """
    _check(kind, rules)
    _region(default_region)
    if hashed and isinstance(value, str) and looks_hashed(value):
        return value.strip().lower()

    normalized = normalize(kind, value, rules, default_region=default_region)
    if normalized is None or not hashed:
        return normalized
    return sha256_hex(normalized)


def _check(kind: str, rules: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown identifier kind {kind!r}; kinds are {', '.join(sorted(KINDS))}")
    if rules not in RULES:
        raise ValueError(
            f"unknown identifier rules {rules!r}; rules are {', '.join(sorted(RULES))}"
        )


def _region(default_region: str) -> str:
    region = default_region.strip().upper()
    if region not in _COUNTRIES:
        raise ValueError(f"default_region {default_region!r} is not an ISO 3166-1 alpha-2 code")
    return region


def _as_text(kind: str, value: object, region: str) -> str | None:
    """The value as stripped text; None for None, NaN and blank values.

    Whole numbers are accepted because warehouses often store phones and zips as
    numbers; a numeric US zip of fewer than five digits lost its leading zeros that way,
    so they are put back.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        digits = str(value)
        return digits.zfill(5) if kind == "zip" and region == "US" else digits
    if not isinstance(value, str):
        raise InvalidIdentifier(kind, str(value), f"is a {type(value).__name__}, not text")

    text = _INVISIBLE.sub("", value).strip()
    return text or None


def _email(text: str, rules: str, region: str) -> str:
    # Google asks for whitespace inside an address to be removed; no address can hold
    # any, so every rule set removes it rather than reject the row.
    address = _WHITESPACE.sub("", text).lower()
    if rules == "meta":
        address = address.strip(".")  # as Meta's SDK does before hashing

    if address.count("@") != 1:
        raise InvalidIdentifier("email", text, "must contain exactly one @")
    local, _, domain = address.partition("@")
    if not local:
        raise InvalidIdentifier("email", text, "has nothing before the @")
    if "." not in domain.strip("."):
        raise InvalidIdentifier("email", text, "has no domain with a dot after the @")

    if rules == "google" and domain in _GMAIL_DOMAINS:
        # Gmail ignores dots and everything from a + in the local part.
        local = local.split("+", 1)[0].replace(".", "")
        if not local:
            raise InvalidIdentifier("email", text, "has no Gmail user name left once normalized")
    return f"{local}@{domain}"


def _phone(text: str, rules: str, region: str) -> str:
    e164 = phonenumbers.format_number(
        _parse_phone(text, region), phonenumbers.PhoneNumberFormat.E164
    )
    # Meta wants the digits only: country code included, no +. E.164 never starts with 0.
    return e164[1:] if rules == "meta" else e164


def _parse_phone(text: str, region: str) -> phonenumbers.PhoneNumber:
    """The valid phone number `text` spells, read as from `region` if it has no +."""
    candidates = [text]
    compact = re.sub(r"[\s\-().]", "", text)
    if compact.startswith("00"):
        # 00 is the international prefix in most of the world, even where the
        # region's own prefix (011 in the US) differs.
        candidates.append("+" + compact[2:])

    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return number

    where = "" if text.startswith("+") else f" for region {region}"
    raise InvalidIdentifier("phone", text, f"is not a valid number{where}")


def _name(kind: str) -> Callable[[str, str, str], str]:
    def normalize_name(text: str, rules: str, region: str) -> str:
        if rules == "google":
            return text.lower()
        if rules == "plain":
            return _WHITESPACE.sub(" ", text)
        # Meta: letters only, lowercase, accented letters kept (hashed as UTF-8).
        letters = "".join(c for c in unicodedata.normalize("NFC", text.lower()) if c.isalpha())
        if not letters:
            raise InvalidIdentifier(kind, text, "has no letters")
        return letters

    return normalize_name


def _zip(text: str, rules: str, region: str) -> str:
    if rules != "meta":
        return _WHITESPACE.sub(" ", text) if rules == "plain" else text

    code = _WHITESPACE.sub("", text.lower()).split("-", 1)[0]
    if region == "US" and code.isdigit() and len(code) > 5:
        code = code[:5]  # ZIP+4 written without its hyphen
    elif region == "GB" and (uk := _UK_POSTCODE.fullmatch(code)):
        code = uk.group(1) + uk.group(2)  # Meta matches UK postcodes to the sector
    if not code:
        raise InvalidIdentifier("zip", text, "has no postal code before the -")
    return code


def _country(text: str, rules: str, region: str) -> str:
    letters = re.sub(r"[\s.]", "", text).upper()
    code = _COUNTRY_ALIASES.get(letters, letters)
    if code not in _COUNTRIES:
        raise InvalidIdentifier("country", text, "is not a two-letter ISO 3166-1 code such as US")
    return code.lower() if rules == "meta" else code


def _place(kind: str) -> Callable[[str, str, str], str]:
    def normalize_place(text: str, rules: str, region: str) -> str:
        if rules == "plain":
            return _WHITESPACE.sub(" ", text)
        if rules == "google":
            place = _SYMBOLS.sub("", text.lower()).strip()
        else:
            # Meta: a to z only. Accents are folded to their base letter rather than
            # dropped, so Montréal becomes montreal (and casefold makes ß ss).
            folded = unicodedata.normalize("NFKD", text.casefold())
            place = _NOT_A_TO_Z.sub("", folded)
            if kind == "state" and region == "US":
                place = _US_STATES.get(place, place)
        if not place:
            raise InvalidIdentifier(kind, text, "has no letters")
        return place

    return normalize_place


def _mobile_ad_id(text: str, rules: str, region: str) -> str | None:
    match = _UUID.fullmatch(text.lower())
    if match is None:
        raise InvalidIdentifier(
            "mobile_ad_id", text, "is not an advertising ID (IDFA or AAID, a UUID)"
        )
    ad_id = "-".join(match.groups())
    # All zeros is what a device reports when its user limits ad tracking: no one.
    return None if ad_id == _ZEROED_AD_ID else ad_id


def _external_id(text: str, rules: str, region: str) -> str:
    # Meta lowercases every customer-file value, external IDs included.
    return text.lower() if rules == "meta" else text


def _mask(text: str) -> str:
    """`text` quoted with its middle starred out: enough to recognize, not to read."""
    shown = min(len(text) // 4, 3)
    middle = "*" * min(len(text) - 2 * shown, 24)
    return repr(text[:shown] + middle + text[len(text) - shown :] if shown else middle)


_UNMASKED = frozenset({"country", "state"})
_LABELS = {"mobile_ad_id": "mobile ad ID", "external_id": "external ID"}
_NORMALIZERS: dict[str, Callable[[str, str, str], str | None]] = {
    "email": _email,
    "phone": _phone,
    "first_name": _name("first_name"),
    "last_name": _name("last_name"),
    "zip": _zip,
    "country": _country,
    "city": _place("city"),
    "state": _place("state"),
    "mobile_ad_id": _mobile_ad_id,
    "external_id": _external_id,
}
