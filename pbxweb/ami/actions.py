"""Actions sent on behalf of people (pick up, redirect): each on its own short AMI connection with events
off, apart from the listener's, so any web worker can send one and a slow answer blocks nobody else."""

from .client import AmiClient, AmiError
from .protocol import Message


def connect(config, timeout: float = 5.0) -> AmiClient:
    """An open, logged-in connection without events (close it, or use it in a `with`)."""
    if not config.get("AMI_USERNAME") or not config.get("AMI_SECRET"):
        raise AmiError("AMI_USERNAME and AMI_SECRET are not set")
    client = AmiClient(config["AMI_HOST"], config["AMI_PORT"], config["AMI_USERNAME"], config["AMI_SECRET"],
                       events=False, timeout=timeout)
    client.open()
    return client


def send(config, name: str, fields: dict) -> Message:
    with connect(config) as client:
        return client.action(name, fields)
