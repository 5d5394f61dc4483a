"""Credentials out of server URLs, wherever a URL leaves the process.

A NATS URL may carry a password (`nats://alice:S3cret@host:4222`) or a token
(`nats://S3cret@host:4222`) in its user-info. Every URL we log, print or serve goes through
`redact_url` (one URL or a comma-separated list) or, for text that may hold URLs somewhere
(error messages of other libraries, a whole rendered log line), `redact_text`. The user
name stays, so a message still says who tried to connect:

    nats://alice:S3cret@host:4222   ->  nats://alice:***@host:4222
    nats://S3cret@host:4222         ->  nats://***@host:4222   (a lone user-info is a token)

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"

# scheme://user-info@ : the user-info runs to the last "@" before the host ends (as in
# urllib and nats-py), so a password holding "@" is masked whole.
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^\s/?#,'\"<>]*)@")


def _mask(match: re.Match[str]) -> str:
    return f"{match['scheme']}{_masked(match['userinfo'])}@"


def redact_text(text: str) -> str:
    """`text` with the password or token of every `scheme://user-info@` in it masked."""
    if "@" not in text:
        return text
    return _URL_USERINFO.sub(_mask, text)


def redact_url(url: str) -> str:
    """One server URL, or a comma-separated list, with passwords and tokens masked; a URL
    written without a scheme (`alice:pw@host`) is masked too."""
    return ",".join(_redact_one(u) for u in url.split(","))


def redact_servers(servers: Iterable[str]) -> list[str]:
    """Each entry of a server list (entries may be comma-separated lists) redacted."""
    return [redact_url(s) for s in servers]


def _redact_one(url: str) -> str:
    # In a server URL "@" only ends the user-info: everything before the last one is
    # secret but the user name, whatever characters it holds.
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    userinfo, at, host = rest.rpartition("@")
    if not at:
        return url
    return f"{scheme}{sep}{_masked(userinfo)}@{host}"


def _masked(userinfo: str) -> str:
    user, colon, _secret = userinfo.partition(":")
    return f"{user}:{MASK}" if colon else MASK
