"""The one error type users see: a one-line message that names the problem and the fix."""
from __future__ import annotations


class SynePruneError(ValueError):
    """Bad input or an unusable artefact. The CLI prints ``error: <message>`` and exits with code 2."""
