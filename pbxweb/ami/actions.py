"""Actions sent on behalf of people (pick up, redirect): each on its own short AMI connection with events
off, apart from the listener's, so any web worker can send one and a slow answer blocks nobody else."""

from .client import AmiClient, AmiError
from .protocol import Message


def configured(config) -> bool:
    return bool(config.get("AMI_USERNAME") and config.get("AMI_SECRET"))


def client_for(config, **options) -> AmiClient:
    """A client for the AMI the settings name (not connected yet); `options` go to AmiClient."""
    if not configured(config):
        raise AmiError("AMI_USERNAME and AMI_SECRET are not set")
    return AmiClient(config["AMI_HOST"], config["AMI_PORT"], config["AMI_USERNAME"], config["AMI_SECRET"], **options)


def connect(config, timeout: float = 5.0) -> AmiClient:
    """An open, logged-in connection without events (close it, or use it in a `with`)."""
    client = client_for(config, events=False, timeout=timeout)
    client.open()
    return client


def send(config, name: str, fields: dict) -> Message:
    with connect(config) as client:
        return client.action(name, fields)
