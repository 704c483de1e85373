"""Test rigs: the loopback staging host, the rehearsals and the servers the checks run against."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
