"""Field rules shared by every area's service, and the errors services raise.

A service collects every field's problem before it touches the session, so bad input writes nothing.
"""

import ipaddress
import re
import secrets
import string


class ServiceError(Exception):
    status = 400

    def __init__(self, errors: dict[str, str]):
        super().__init__(errors)
        self.errors = errors


class ValidationError(ServiceError):
    status = 400


class Conflict(ServiceError):
    status = 409


class Forbidden(ServiceError):
    status = 403


class Unavailable(ServiceError):
    """Asterisk could not be reached: nothing was done, trying again later may work."""

    status = 503


class TooManyRequests(ServiceError):
    """A rate limit (sign-in failures, click-to-call) says no for a while."""

    status = 429


class Gone(ServiceError):
    """Something handed out once (a preview's upload, a download of passwords) that was used or expired."""

    status = 410


class NotFound(ServiceError):
    status = 404

    def __init__(self, what: str):
        super().__init__({"_": f"{what} not found"})


class Errors(dict):
    """Collects one message per field; `raise_if_any()` raises them all at once."""

    def check(self, field: str, ok: bool, message: str) -> bool:
        if not ok and field not in self:
            self[field] = message
        return ok

    def raise_if_any(self) -> None:
        if self:
            raise ValidationError(dict(self))


# Characters a person cannot see or that turn text around: control characters (C0, DEL, C1 such as U+0085),
# format characters (U+200B-U+200F, U+202A-U+202E, U+2066-U+206F, U+FEFF, …), line and paragraph separators
# and lone surrogates: Unicode categories Cc, Cf, Zl, Zp and Cs (a test holds this class against unicodedata).
INVISIBLE = (
    "\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f"
    "\u2028-\u202e\u2060-\u2064\u2066-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U00013438\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
)
INVISIBLE_CHARS = re.compile(f"[{INVISIBLE}]")
# Asterisk decodes `^XX` after splitting a realtime value on `;`: `a^3Bb` would be read back as `a;b`.
HEX_ESCAPE = re.compile(r"\^[0-9A-Fa-f]{2}")
# One scan for the three: what the realtime writer checks on every value it writes.
ASTERISK_UNSAFE = re.compile(f"[;{INVISIBLE}]|\\^[0-9A-Fa-f]{{2}}")
KNOWN_CODECS = frozenset(
    "ulaw alaw g722 g729 g726 g726aal2 gsm ilbc speex speex16 speex32 lpc10 adpcm opus silk8 silk12 silk16 "
    "silk24 slin slin16 codec2 g719 siren7 siren14 h261 h263 h263p h264 h265 mpeg4 vp8 vp9 t140 t140red".split()
)
HOSTNAME = re.compile(r"(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")
EMAIL = re.compile(r"[^@\s;\"<>]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
CONTEXT = re.compile(r"[A-Za-z0-9_-]{1,40}")


def asterisk_safe(value: str) -> str | None:
    """Why a value may not reach a realtime table, or None. Asterisk splits every value it reads over ODBC
    on `;` and then decodes `^XX`; a control character ends a config line; an invisible or direction-changing
    character makes a caller ID or a password read differently from how it looks."""
    if ";" in value:
        return "must not contain ';' (Asterisk splits values on it)"
    if HEX_ESCAPE.search(value):
        return "must not contain '^' followed by two hex digits (Asterisk reads it as an escaped character)"
    if INVISIBLE_CHARS.search(value):
        return "must not contain control characters, line breaks or invisible characters"
    return None


def text(errors: Errors, field: str, value, *, required=True, max_length: int) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        errors.check(field, not required, "is required")
        return None
    if not errors.check(field, isinstance(value, str), "must be a string"):
        return None
    value = value.strip()
    if not errors.check(field, len(value) <= max_length, f"must be at most {max_length} characters"):
        return None
    problem = asterisk_safe(value)
    errors.check(field, problem is None, problem or "")
    return value


WHOLE_NUMBER = re.compile(r"-?[0-9]{1,12}")


def integer(errors: Errors, field: str, value, *, minimum: int, maximum: int) -> int | None:
    # int() would also take "1_0", " 5 " and Arabic-Indic digits: only plain ASCII digits are a number here.
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and WHOLE_NUMBER.fullmatch(value))):
        errors.check(field, False, "must be a whole number (digits 0-9)")
        return None
    number = int(value)
    if errors.check(field, minimum <= number <= maximum, f"must be between {minimum} and {maximum}"):
        return number
    return None


def boolean(errors: Errors, field: str, value) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
        return value.lower() in ("true", "yes", "on", "1")
    # CSV files and forms say yes/no, JSON true/false: either is taken.
    errors.check(field, False, "must be yes or no (true or false)")
    return None


def choice(errors: Errors, field: str, value, choices) -> str | None:
    if errors.check(field, value in choices, f"must be one of: {', '.join(choices)}"):
        return value
    return None


def digits(errors: Errors, field: str, value, *, min_length: int, max_length: int) -> str | None:
    if not errors.check(field, isinstance(value, str) and value != "", "is required"):
        return None
    ok = value.isascii() and value.isdigit() and min_length <= len(value) <= max_length
    if errors.check(field, ok, f"must be {min_length} to {max_length} digits"):
        return value
    return None


def codecs(errors: Errors, field: str, value) -> str | None:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(c, str) for c in items):
        errors.check(field, False, "must be a list of codec names")
        return None
    names = [c.strip().lower() for c in items if c.strip()]
    if not errors.check(field, bool(names), "must name at least one codec"):
        return None
    unknown = [c for c in names if c not in KNOWN_CODECS]
    if not errors.check(field, not unknown, f"unknown codec: {', '.join(unknown)}"):
        return None
    if not errors.check(field, len(set(names)) == len(names), "lists a codec twice"):
        return None
    joined = ",".join(names)
    if errors.check(field, len(joined) <= 200, "too many codecs"):
        return joined
    return None


def _ip(value: str):
    """An IP address or network as Python reads it, but never with an IPv6 zone id (`fe80::1%eth0`): the zone
    is free text that would reach Asterisk unchecked, and means nothing off this host."""
    if "%" in value:
        raise ValueError("zone id")
    return value


def host(errors: Errors, field: str, value, *, max_length: int = 253) -> str | None:
    value = text(errors, field, value, max_length=max_length)
    if value is None:
        return None
    try:
        address = ipaddress.ip_address(_ip(value))
    except ValueError:
        address = None
    if address is not None:
        usable = not (address.is_unspecified or address.is_multicast)
        errors.check(field, usable, "must be an address a SIP server can have (not 0.0.0.0, :: or multicast)")
        return str(address) if usable else None
    # A name whose last label is all digits is a mistyped IPv4 address (300.1.1.1, 1.2.3), not a hostname.
    ok = HOSTNAME.fullmatch(value) is not None and not value.rsplit(".", 1)[-1].isdigit()
    if errors.check(field, ok, "must be a hostname or an IP address"):
        return value.lower()
    return None


# The widest range a trunk may claim: identify-by-IP makes every request from the range this trunk's, phones
# included (they could no longer register), so 0.0.0.0/0 or a /4 is a mistake, not a provider.
MIN_PREFIX = {4: 8, 6: 32}


def ip_networks(errors: Errors, field: str, value) -> str:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        errors.check(field, False, "must be a list of IP addresses or CIDR ranges")
        return ""
    networks = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        problem = asterisk_safe(item)
        if not errors.check(field, problem is None, f"{item!r} {problem}"):
            return ""
        try:
            network = ipaddress.ip_network(_ip(item), strict=False)
        except ValueError:
            errors.check(field, False, f"{item!r} is not an IP address or CIDR range")
            return ""
        widest = MIN_PREFIX[network.version]
        if not errors.check(field, network.prefixlen >= widest, f"{item!r} is too wide: at most /{widest} (it would capture every phone's requests)"):
            return ""
        if not errors.check(field, str(network) not in networks, f"{item!r} is listed twice"):
            return ""
        networks.append(str(network))
    return ",".join(networks)


def email(errors: Errors, field: str, value) -> str | None:
    value = text(errors, field, value, required=False, max_length=254)
    if value is not None and errors.check(field, EMAIL.fullmatch(value) is not None, "is not a valid e-mail address"):
        return value
    return None


def context(errors: Errors, field: str, value) -> str | None:
    if errors.check(field, isinstance(value, str) and CONTEXT.fullmatch(value) is not None, "must be 1-40 letters, digits, '-' or '_'"):
        return value
    return None


# SIP passwords: generated ones use letters and digits only, which survive every config format and phone
# keypad; given ones must be long and mixed enough to resist online guessing.
PASSWORD_ALPHABET = string.ascii_letters + string.digits
GENERATED_PASSWORD_LENGTH = 24
MIN_PASSWORD_LENGTH = 16


def generate_password(length: int = GENERATED_PASSWORD_LENGTH) -> str:
    while True:
        candidate = "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))
        if any(c.islower() for c in candidate) and any(c.isupper() for c in candidate) and any(c.isdigit() for c in candidate):
            return candidate


# Voicemail PINs are typed on a phone's keypad: digits only, long enough that guessing by calling in is slow
# (voicemail.conf's minpassword keeps a PIN changed from the phone at 6 or more).
GENERATED_PIN_LENGTH = 8


def generate_pin(length: int = GENERATED_PIN_LENGTH) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(length))


def sip_password(errors: Errors, field: str, value, *, avoid: tuple[str, ...] = ()) -> str | None:
    if not errors.check(field, isinstance(value, str), "must be a string"):
        return None
    if not errors.check(field, MIN_PASSWORD_LENGTH <= len(value) <= 80, f"must be {MIN_PASSWORD_LENGTH} to 80 characters"):
        return None
    problem = asterisk_safe(value)
    if not errors.check(field, problem is None, problem or ""):
        return None
    if not errors.check(field, not any(c.isspace() for c in value) and value.isascii(), "must be printable ASCII without spaces"):
        return None
    classes = sum(
        (any(c.islower() for c in value), any(c.isupper() for c in value), any(c.isdigit() for c in value), any(not c.isalnum() for c in value))
    )
    if not errors.check(field, classes >= 3, "is too weak: mix at least three of lower case, upper case, digits and symbols"):
        return None
    lowered = value.lower()
    if not errors.check(field, len(set(value)) >= 8 and not any(a and a.lower() in lowered for a in avoid), "is too weak: too repetitive or contains the extension's number or name"):
        return None
    return value
