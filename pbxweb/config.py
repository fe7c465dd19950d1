"""Settings, read from the environment in one place.

Nothing here has a secret default: SECRET_KEY is generated once into the instance folder when unset, and the
AMI credentials stay empty until the environment gives them.
"""

import os
import secrets
from pathlib import Path

DEFAULT_CODECS = "ulaw,alaw,g722,opus"

# (name, default, description) — the README's settings table is written from this list.
SETTINGS = (
    ("DATABASE_URL", None, "SQLAlchemy URL; default: SQLite file `pbx.sqlite` in the instance folder"),
    ("SECRET_KEY", None, "session signing key; default: generated once into `instance/secret_key` (0600)"),
    ("AMI_HOST", "127.0.0.1", "Asterisk Manager Interface host"),
    ("AMI_PORT", "5038", "AMI port"),
    ("AMI_USERNAME", None, "AMI user (no default)"),
    ("AMI_SECRET", None, "AMI secret (no default)"),
    ("PBX_DEFAULT_CONTEXT", "from-internal", "dialplan context of new extensions"),
    ("PBX_SIP_TRANSPORT", "transport-udp", "PJSIP transport of extension endpoints"),
    ("PBX_DEFAULT_CODECS", DEFAULT_CODECS, "codecs of new extensions, in order"),
    ("PBX_VOICEMAIL_CONTEXT", "default", "voicemail context in `mailboxes` (number@context)"),
    ("PBX_VOICEMAIL_SPOOL", "/var/spool/asterisk/voicemail", "Asterisk's voicemail spool folder, where the app lists, plays and deletes messages"),
    ("PBX_VOICEMAIL_FORMAT", "wav49|gsm|wav", "voicemail.conf `format`: wav49, gsm, wav separated by `|`; must include wav (browsers play it)"),
    ("PBX_VOICEMAIL_MAILCMD", "/usr/sbin/sendmail -t", "voicemail.conf `mailcmd`: the command that sends a message's e-mail (read on standard input)"),
    ("PBX_VOICEMAIL_FROM", "asterisk", "voicemail.conf `serveremail`: the sender of voicemail e-mails (a name gets Asterisk's host name)"),
    ("PBX_OUTBOUND_PREFIX", "0", "digit dialled before an outside number; no extension number starts with it"),
    ("PBX_GROUP_DIAL_PREFIX", "*8", "dial code of a group: this prefix and the group's id (`*83`)"),
    ("PBX_EXTENSION_RING_SECONDS", "25", "how long an extension rings before voicemail or giving up"),
    ("PBX_SIP_BIND", "0.0.0.0", "address Asterisk's SIP transports bind to (`asterisk-config`)"),
    ("PBX_SIP_PORT", "5060", "SIP port of the UDP and TCP transports (`asterisk-config`)"),
    ("PBX_LOCAL_NET", "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16", "networks that are not behind NAT (`local_net`)"),
    ("PBX_EXTERNAL_ADDRESS", None, "public address for SIP and media behind NAT; none by default"),
    ("PBX_ODBC_DSN", "asterisk", "ODBC DSN and res_odbc connection name Asterisk uses (`asterisk-config`)"),
    ("PBX_ODBC_USERNAME", None, "database user for Asterisk; default: the user of DATABASE_URL"),
    ("PBX_ODBC_PASSWORD", None, "its password; default: the password of DATABASE_URL (no default otherwise)"),
    ("PBX_AMI_LISTENER", "on", "`off` to not run the AMI listener in the web process (run `pbx ami-listen` apart)"),
    ("PBX_SORCERY_CACHE", "off", "`on` if sorcery.conf caches PJSIP objects in memory: saves then expire them over AMI"),
    ("PBX_TIMEZONE", None, "the site's time zone (IANA name, `Europe/Amsterdam`) for call times; default: the server's"),
    ("PBX_BEHIND_PROXY", "off", "`on` when exactly one reverse proxy (the shipped nginx site) is in front: trust its X-Forwarded-Proto/Host/For"),
    ("PBX_WAIT_WARN_SECONDS", "60", "a caller waiting longer turns amber on the dashboard, twice as long red"),
    ("PBX_MISSED_CALL_DAYS", "7", "the dashboard lists callers nobody reached in the last this many days"),
    ("PBX_SESSION_IDLE_HOURS", "12", "a signed-in browser that makes no request for this many hours is signed out"),
    ("PBX_SERVICE_LEVEL_SECONDS", "20", "a group call answered within this is within service level (the queue's `servicelevel`, the group report's SL/SL2)"),
    ("PBX_SECURE_COOKIES", "on", "`off` only to serve over plain HTTP (the development server): the session cookie is `Secure` otherwise"),
    ("PBX_SIP_PUBLIC_HOST", None, "the address phones register to, on their setup card; default: PBX_EXTERNAL_ADDRESS, else PBX_SIP_BIND, else the host name the browser used"),
    ("PBX_SMTP_HOST", None, "mail server for phone setup cards; none: cards are not e-mailed"),
    ("PBX_SMTP_PORT", "587", "its port"),
    ("PBX_SMTP_USERNAME", None, "its login, if it wants one"),
    ("PBX_SMTP_PASSWORD", None, "its password (no default)"),
    ("PBX_SMTP_FROM", None, "the sender of those mails; default: `mini-pbx@` and the host name"),
    ("PBX_SMTP_STARTTLS", "on", "`off` only for a mail server on this machine that offers no STARTTLS"),
)


def _secret_key(instance_path: Path) -> str:
    key_file = instance_path / "secret_key"
    if not key_file.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return key_file.read_text().strip()


def _hours(name: str, value: str) -> float:
    try:
        hours = float(value)
    except ValueError:
        hours = 0
    if not 0 < hours < 24 * 366:
        raise ValueError(f"{name} must be a number of hours above 0 (like 12 or 0.5), not {value!r}")
    return hours


def _flag(value: str) -> bool:
    return value.lower() in ("on", "yes", "true", "1")


def from_environment(instance_path: str, environ=os.environ) -> dict:
    instance = Path(instance_path)
    values = {name: environ.get(name) or default for name, default, _ in SETTINGS}
    database_url = values.pop("DATABASE_URL") or f"sqlite:///{instance / 'pbx.sqlite'}"
    # postgres:// is what many hosting tools print; SQLAlchemy only knows postgresql://.
    if database_url.startswith("postgres://"):
        database_url = "postgresql://" + database_url[len("postgres://") :]
    config = {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": values.pop("SECRET_KEY") or _secret_key(instance),
        "AMI_PORT": int(values.pop("AMI_PORT")),
        "PBX_SIP_PORT": int(values.pop("PBX_SIP_PORT")),
        "PBX_EXTENSION_RING_SECONDS": int(values.pop("PBX_EXTENSION_RING_SECONDS")),
        "PBX_SORCERY_CACHE": _flag(values.pop("PBX_SORCERY_CACHE")),
        "PBX_AMI_LISTENER": _flag(values.pop("PBX_AMI_LISTENER")),
        "SESSION_COOKIE_SECURE": _flag(values.pop("PBX_SECURE_COOKIES")),
        "PBX_BEHIND_PROXY": _flag(values.pop("PBX_BEHIND_PROXY")),
        "PBX_WAIT_WARN_SECONDS": int(values.pop("PBX_WAIT_WARN_SECONDS")),
        "PBX_MISSED_CALL_DAYS": int(values.pop("PBX_MISSED_CALL_DAYS")),
        "PBX_SMTP_PORT": int(values.pop("PBX_SMTP_PORT")),
        "PBX_SMTP_STARTTLS": _flag(values.pop("PBX_SMTP_STARTTLS")),
        "PBX_SESSION_IDLE_HOURS": _hours("PBX_SESSION_IDLE_HOURS", values.pop("PBX_SESSION_IDLE_HOURS")),
        "PBX_SERVICE_LEVEL_SECONDS": int(values.pop("PBX_SERVICE_LEVEL_SECONDS")),
        **values,
    }
    return config
