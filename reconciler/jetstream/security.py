"""What a connection's TLS and credentials files must be, checked before nats-py reads them."""

from __future__ import annotations

import ssl
from collections.abc import Sequence

from reconciler.errors import ConnectFailed, SettingsError
from reconciler.jetstream.transport import connect_reason
from reconciler.model import ConnectOptions


def tls_context(opts: ConnectOptions, servers: Sequence[str]) -> ssl.SSLContext | None:
    """The TLS context the options ask for (CA, client certificate), or None for plain TCP."""
    wanted = opts.tls_ca or opts.tls_cert or opts.tls_key
    if not wanted and not any(s.startswith("tls://") for s in servers):
        return None
    if opts.tls_key and not opts.tls_cert:
        raise ConnectFailed("cannot connect: a TLS key needs its certificate (tls_cert)")
    try:
        context = ssl.create_default_context(cafile=opts.tls_ca)
        if opts.tls_cert:
            context.load_cert_chain(opts.tls_cert, opts.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConnectFailed(f"cannot load TLS files: {connect_reason(exc, 0)}") from None
    return context


_JWT_MARK = "-----BEGIN NATS USER JWT-----"
_SEED_MARK = "-----BEGIN USER NKEY SEED-----"
_CREDS_SHAPE = (
    "a creds file (as `nsc generate creds` writes it) holds the user JWT on the line after "
    f"'{_JWT_MARK}' (eyJ...) and the user seed on the line after '{_SEED_MARK}' (SU...)"
)


def creds_problem(text: str) -> str | None:
    """What keeps `text` from being a NATS credentials file nats-py can use; None if nothing."""
    lines = [line.strip() for line in text.splitlines()]

    def after(mark: str) -> str | None:
        for i, line in enumerate(lines):
            if mark.strip("-") in line:
                return lines[i + 1] if i + 1 < len(lines) else ""
        return None

    jwt = after(_JWT_MARK)
    if jwt is None:
        return f"it has no '{_JWT_MARK}' line"
    if not jwt.startswith("eyJ") or jwt.count(".") != 2:
        return f"the line after '{_JWT_MARK}' is not a JWT"
    seed = after(_SEED_MARK)
    if seed is None:
        return f"it has no '{_SEED_MARK}' line"
    if not seed.startswith("SU"):
        return f"the line after '{_SEED_MARK}' is not a user seed"
    return None


def check_creds(path: str) -> None:
    """Refuse a file that is not a credentials file before nats-py trips over it (it would
    fail with a TypeError, or read past the end of the file forever)."""
    try:
        with open(path, "rb") as f:
            text = f.read(1 << 16).decode("utf-8", errors="replace")
    except OSError as exc:
        raise SettingsError(
            f"cannot read the creds file {path}: {(exc.strerror or str(exc)).lower()}"
        ) from None
    problem = creds_problem(text)
    if problem is not None:
        raise SettingsError(
            f"the creds file {path} is not a NATS credentials file: {problem}; {_CREDS_SHAPE}"
        )

