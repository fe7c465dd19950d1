"""Renders the Asterisk configuration set in asterisk/ from the app's settings (`pbx asterisk-config`).

The same settings drive the app and these files, so Asterisk reads the tables the app writes, with the
credentials the environment holds. A file is never rendered with a secret missing: the command names the
setting instead.
"""

import ipaddress
import os
import re
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "asterisk"
# File → whether it holds a secret (written mode 0640, readable by the asterisk group only).
FILES = {
    "odbcinst.ini": False,
    "odbc.ini": True,
    "res_odbc.conf": True,
    "extconfig.conf": False,
    "sorcery.conf": False,
    "pjsip.conf": False,
    "extensions.conf": False,
    "func_odbc.conf": False,
    "manager.conf": True,
    "cdr.conf": False,
    "cdr_manager.conf": False,
    "cdr_adaptive_odbc.conf": False,
    "queues.conf": False,
    "logger.conf": False,
    "voicemail.conf": False,
}
# Characters that end or comment out a value in Asterisk's and unixODBC's config files.
UNSAFE_IN_CONFIG = re.compile(r"[;\r\n\x00]")


SECTION = re.compile(r"^\[([^\]]+)\]", re.MULTILINE)


@cache
def pjsip_sections() -> frozenset[str]:
    """The sections the shipped pjsip.conf defines (`global`, `anonymous`, the transports): an object in the
    database with one of these ids would shadow or be shadowed by it."""
    return frozenset(SECTION.findall((TEMPLATE_DIR / "pjsip.conf").read_text()))


class ConfigError(Exception):
    pass


def _require(config, errors: list[str], name: str) -> str:
    value = config.get(name)
    if value in (None, ""):
        errors.append(f"{name} is not set")
        return ""
    return str(value)


def _safe(errors: list[str], name: str, value: str) -> str:
    if UNSAFE_IN_CONFIG.search(value):
        errors.append(f"{name} contains ';' or a line break, which Asterisk's config files cannot hold")
    return value


def template_values(config) -> dict:
    errors: list[str] = []
    url = sa.engine.make_url(config["SQLALCHEMY_DATABASE_URI"])
    if not url.drivername.startswith("postgresql"):
        raise ConfigError("DATABASE_URL must be a postgresql:// URL: Asterisk reads the same PostgreSQL database")
    username = config.get("PBX_ODBC_USERNAME") or url.username
    password = config.get("PBX_ODBC_PASSWORD") or url.password
    if not username:
        errors.append("PBX_ODBC_USERNAME is not set (and DATABASE_URL names no user)")
    if not password:
        errors.append("PBX_ODBC_PASSWORD is not set (and DATABASE_URL holds no password)")
    odbc = {
        "dsn": _require(config, errors, "PBX_ODBC_DSN"),
        "host": url.host or "127.0.0.1",
        "port": url.port or 5432,
        "database": url.database,
        "username": _safe(errors, "PBX_ODBC_USERNAME", username or ""),
        "password": _safe(errors, "PBX_ODBC_PASSWORD", password or ""),
    }
    ami = {
        "port": config["AMI_PORT"],
        "username": _safe(errors, "AMI_USERNAME", _require(config, errors, "AMI_USERNAME")),
        "secret": _safe(errors, "AMI_SECRET", _require(config, errors, "AMI_SECRET")),
    }
    outbound_prefix = config["PBX_OUTBOUND_PREFIX"]
    if not re.fullmatch(r"\d", outbound_prefix):
        errors.append("PBX_OUTBOUND_PREFIX must be one digit")
    group_prefix = config["PBX_GROUP_DIAL_PREFIX"]
    if not re.fullmatch(r"[0-9*#]{1,4}", group_prefix):
        errors.append("PBX_GROUP_DIAL_PREFIX must be 1 to 4 of 0-9, * and #")
    local_nets = []
    for net in config["PBX_LOCAL_NET"].split(","):
        try:
            local_nets.append(str(ipaddress.ip_network(net.strip(), strict=False)))
        except ValueError:
            errors.append(f"PBX_LOCAL_NET: {net.strip()!r} is not a network")
    external = config.get("PBX_EXTERNAL_ADDRESS") or ""
    _safe(errors, "PBX_EXTERNAL_ADDRESS", external)
    try:
        ipaddress.ip_address(config["PBX_SIP_BIND"])
    except ValueError:
        errors.append("PBX_SIP_BIND must be an IP address")
    voicemail = {
        "format": config["PBX_VOICEMAIL_FORMAT"],
        "serveremail": _safe(errors, "PBX_VOICEMAIL_FROM", config["PBX_VOICEMAIL_FROM"]),
        "mailcmd": _safe(errors, "PBX_VOICEMAIL_MAILCMD", config["PBX_VOICEMAIL_MAILCMD"]),
    }
    if not re.fullmatch(r"(wav49|gsm|wav)(\|(wav49|gsm|wav))*", voicemail["format"]) or "wav" not in voicemail["format"].split("|"):
        errors.append("PBX_VOICEMAIL_FORMAT must be formats among wav49, gsm and wav separated by |, with wav "
                      "(the one a browser plays)")
    if errors:
        raise ConfigError("; ".join(errors))
    return {
        "odbc": odbc,
        "ami": ami,
        "sip_bind": config["PBX_SIP_BIND"],
        "sip_port": config["PBX_SIP_PORT"],
        "local_nets": local_nets,
        "external_address": external,
        "codecs": config["PBX_DEFAULT_CODECS"],
        "default_context": config["PBX_DEFAULT_CONTEXT"],
        "voicemail_context": config["PBX_VOICEMAIL_CONTEXT"],
        "ring_seconds": config["PBX_EXTENSION_RING_SECONDS"],
        "outbound_prefix": outbound_prefix,
        # Extension patterns start with any digit but the outside-line prefix.
        "first_digit": "[" + "".join(d for d in "0123456789" if d != outbound_prefix) + "]",
        "group_prefix": group_prefix,
        "sorcery_cache": config["PBX_SORCERY_CACHE"],
        "voicemail": voicemail,
    }


def render(config) -> dict[str, str]:
    values = template_values(config)
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR), undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False
    )
    return {name: env.get_template(name).render(values) for name in FILES}


def write(rendered: dict[str, str], out_dir: Path, force: bool) -> list[tuple[Path, int]]:
    out_dir.mkdir(parents=True, exist_ok=True)
    existing = [name for name in rendered if (out_dir / name).exists()]
    if existing and not force:
        raise ConfigError(f"{', '.join(existing)} exist in {out_dir}: use --force to overwrite")
    written = []
    for name, text in rendered.items():
        path = out_dir / name
        mode = 0o640 if FILES[name] else 0o644
        # Created with its final mode, so a secret is never readable by others, not even for a moment.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(path, mode)
        written.append((path, mode))
    return written
