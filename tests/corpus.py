"""A seeded generator of stream manifests for the validate-versus-server corpus.

`case(seed)` gives one small world of streams: sometimes an origin stream first, then the
stream under test, which may mirror or source the origin (or itself). Every field of the
stream configuration gets a mix of valid and invalid values, chosen to reach every rule the
server applies when it creates a stream (`checkStreamCfg`, the create handler, the subject
transform parser), and the combinations between fields.

Values are the wire values (nanoseconds, bytes); `render` writes them as a manifest file, with
durations in units (`format_duration`), so that what `validate` reads is what `apply` sends.

Left out on purpose, because the answer depends on the live server rather than on the
manifests (the test's docstring says why for each): `sealed: true` (a stream can be sealed by
an update only), `num_replicas` above 1 (a single server), limits beyond the server's storage,
placement in a cluster, names that cannot form an API subject (`.`, whitespace, a lone `*` or
`>`), and subjects of streams that no manifest declares.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

from reconciler.fields import DURATIONS
from reconciler.units import format_duration

MS = 1_000_000
S = 1_000 * MS

Config = dict[str, Any]

# --- value pools: (weight of valid) mixed with invalid and borderline values -------------------

_SUBJECT_TAILS = ("a", "b", "*", ">", "a.b", "a.*", "*.b", "a.>", "*.>", "x.y.z")
_SPECIAL_SUBJECTS = (
    ">", "$JS.API.x", "$JS.EVENT.x", "$JS.EVENT.>", "$JS.>", "$JSC.x", "$NRG.x", "$SYS.x",
    "$SYS.ACCOUNT.x", "$SYS.>", "a..b", "a.>.b", ".a", "a.", "a b", "*", "*.*", "a\tb",
)
_FUNCTIONS = (
    "{{wildcard(1)}}", "{{wildcard(2)}}", "{{wildcard(5)}}", "{{wildcard(0)}}",
    "{{wildcard()}}", "{{wildcard(1,2)}}", "{{wildcard(x)}}", "{{Wildcard(1)}}",
    "{{partition(3)}}", "{{partition(3,1)}}", "{{partition(3,1,2)}}", "{{partition(3,4)}}",
    "{{partition(x,1)}}", "{{partition()}}", "{{partition(4294967296)}}",
    "{{split(1,-)}}", "{{split(1)}}", "{{split(1,-,x)}}", "{{split(2,_)}}",
    "{{splitFromLeft(1,2)}}", "{{SplitFromRight(1,2)}}", "{{splitfromleft(3,2)}}",
    "{{sliceFromLeft(1,2)}}", "{{sliceFromRight(1,x)}}", "{{sliceFromLeft(1)}}",
    "{{left(1,2)}}", "{{right(1,2)}}", "{{left(1)}}", "{{right(2,2)}}",
    "{{random(5)}}", "{{random()}}", "{{random(1,2)}}", "{{Random(9)}}",
    "{{foo(1)}}", "{{}}", "{{ wildcard(1) }}", "$1", "$2", "$0", "$x", "$-1", "$", "{{x",
)
_TRANSFORM_SOURCES = ("", "t.a", "t.*", "t.*.*", "t.>", "t.*.>", ">", "t..a", "t.>.a", "*")


def _pick(rng: random.Random, *options: Any) -> Any:
    return rng.choice(options)


def _maybe(rng: random.Random, p: float) -> bool:
    return rng.random() < p


def _subject(rng: random.Random, prefix: str) -> str:
    if _maybe(rng, 0.06):
        return str(rng.choice(_SPECIAL_SUBJECTS))
    return f"{prefix}.{rng.choice(_SUBJECT_TAILS)}"


def _subjects(rng: random.Random, prefix: str) -> list[str]:
    out = [_subject(rng, prefix) for _ in range(rng.choice((1, 1, 1, 1, 2, 3)))]
    if _maybe(rng, 0.05):
        out.append(out[0])  # a duplicate
    return out


def _transform_dest(rng: random.Random) -> str:
    tokens = ["d"]
    for _ in range(rng.choice((0, 1, 1, 2))):
        tokens.append(rng.choice(_FUNCTIONS) if _maybe(rng, 0.7) else rng.choice(("x", "*")))
    if _maybe(rng, 0.25):
        tokens.append(">")
    if _maybe(rng, 0.04):
        tokens.append(rng.choice(("", "a b", ">")))
    if _maybe(rng, 0.03):
        return rng.choice(("", ">", "*"))
    return ".".join(tokens)


def _transform(rng: random.Random) -> Config:
    return {"src": rng.choice(_TRANSFORM_SOURCES), "dest": _transform_dest(rng)}


def _text(rng: random.Random) -> str:
    return str(
        _pick(
            rng, "plain", "plain", "é" * 3, "x\ud800", "\udfff", "a\x00b", "tab\there",
            "😀", "a" * 40,
        )
    )


def _source(rng: random.Random, origin: str, self_name: str, *, mirror: bool) -> Config:
    source: Config = {"name": origin}
    roll = rng.random()
    if roll < 0.06:
        source["name"] = self_name
    elif roll < 0.1:  # (an empty mirror name would make the plan drop the mirror)
        source["name"] = _pick(rng, "other", "bad name", "bad*", *(() if mirror else ("",)))
    if _maybe(rng, 0.25):
        source["filter_subject"] = _pick(
            rng, f"{origin}.a", f"{origin}.*", f"{origin}.>", ">", "q", "a..b", "a.>.b", ""
        )
    if _maybe(rng, 0.3):
        source["subject_transforms"] = [_transform(rng) for _ in range(rng.choice((1, 1, 2, 3)))]
    if _maybe(rng, 0.1):
        source["opt_start_seq"] = _pick(rng, 0, 5)
    if _maybe(rng, 0.06):
        source["opt_start_time"] = "2024-01-31T12:00:00Z"
    if _maybe(rng, 0.12):
        external: Config = {"api": _pick(rng, "$JS.hub.API", "$JS.API", "$JS.>", "hub.*", "h..a")}
        if _maybe(rng, 0.6):
            external["deliver"] = _pick(rng, "deliver.hub", "d.*", "", "a..b", "x")
        source["external"] = external
    if _maybe(rng, 0.06):
        source["consumer"] = {
            "name": _pick(rng, "dur", "dur", "bad.name"),
            "deliver_subject": _pick(rng, "dlv.x", "dlv.*", "dlv..x"),
        }
    return source


def _flags(rng: random.Random, config: Config) -> None:
    for flag, p in (
        ("no_ack", 0.08), ("deny_delete", 0.1), ("deny_purge", 0.08),
        ("allow_rollup_hdrs", 0.15), ("allow_direct", 0.25), ("mirror_direct", 0.06),
        ("allow_atomic", 0.08), ("allow_batched", 0.08), ("allow_msg_ttl", 0.12),
        ("allow_msg_counter", 0.06), ("allow_msg_schedules", 0.06),
        ("discard_new_per_subject", 0.08),
    ):  # fmt: skip
        if _maybe(rng, p):
            config[flag] = _maybe(rng, 0.8)


def _limits(rng: random.Random, config: Config) -> None:
    if _maybe(rng, 0.3):
        config["retention"] = _pick(rng, "limits", "interest", "workqueue")
    if _maybe(rng, 0.3):
        config["storage"] = _pick(rng, "file", "memory")
    for key in ("max_msgs", "max_msgs_per_subject", "max_consumers"):
        if _maybe(rng, 0.15):
            config[key] = _pick(rng, -1, 0, 1, 10, 1000)
    if _maybe(rng, 0.15):
        config["max_bytes"] = _pick(rng, -1, 0, 1024, 1 << 20)
    if _maybe(rng, 0.15):
        config["max_msg_size"] = _pick(rng, -1, 0, 100, 1024, 2**31 - 1)
    if _maybe(rng, 0.2):
        config["max_age"] = _pick(rng, 0, 50 * MS, 100 * MS, S, 3600 * S)
    if _maybe(rng, 0.2):
        config["duplicate_window"] = _pick(rng, 0, 50 * MS, 100 * MS, S, 120 * S, 3600 * S)
    if _maybe(rng, 0.12):
        config["subject_delete_marker_ttl"] = _pick(rng, 0, 500 * MS, S, 60 * S)
    if _maybe(rng, 0.15):
        config["discard"] = _pick(rng, "old", "new")
    if _maybe(rng, 0.08):
        config["num_replicas"] = _pick(rng, 0, 1)
    if _maybe(rng, 0.08):
        config["compression"] = _pick(rng, "none", "s2")
    if _maybe(rng, 0.06):
        config["first_seq"] = _pick(rng, 0, 5)
    if _maybe(rng, 0.08):
        config["persist_mode"] = _pick(rng, "default", "async")
    if _maybe(rng, 0.08):
        limits: Config = {}
        if _maybe(rng, 0.7):
            limits["inactive_threshold"] = _pick(rng, 0, S, 60 * S)
        if _maybe(rng, 0.7):
            limits["max_ack_pending"] = _pick(rng, -1, 0, 10)
        config["consumer_limits"] = limits


def _name(rng: random.Random, plain: str) -> str:
    if not _maybe(rng, 0.1):
        return plain
    return str(
        _pick(
            rng, f"{plain}/x", f"{plain}\\x", f"{plain}*x", f"{plain}>x", f"{plain}\x00x",
            f"{plain}\x01x", f"{plain}\ud800", f"{plain}é", "é" * 130, "n" * 255, "n" * 256,
        )
    )


def _stream(rng: random.Random, index: int, origin: str | None) -> Config:
    plain = f"c{index}"
    config: Config = {"name": _name(rng, plain)}
    if _maybe(rng, 0.1):
        config["description"] = _pick(
            rng, _text(rng), "d" * 4096, "d" * 4097, "é" * 2100
        )
    mode = rng.random()
    if origin is not None and mode < 0.45:
        config["mirror"] = _source(rng, origin, config["name"], mirror=True)
        if _maybe(rng, 0.1):
            config["subjects"] = _subjects(rng, plain)
        if _maybe(rng, 0.05):
            config["sources"] = [_source(rng, origin, config["name"], mirror=False)]
    elif origin is not None:
        config["sources"] = [
            _source(rng, origin, config["name"], mirror=False)
            for _ in range(rng.choice((1, 1, 2)))
        ]
        if _maybe(rng, 0.5):
            config["subjects"] = _subjects(rng, plain)
    elif _maybe(rng, 0.8):
        config["subjects"] = _subjects(rng, plain)
    _limits(rng, config)
    _flags(rng, config)
    if _maybe(rng, 0.15):
        config["subject_transform"] = _transform(rng)
        if _maybe(rng, 0.3) and config.get("subjects"):
            config["subject_transform"]["src"] = config["subjects"][0]
    if _maybe(rng, 0.2):
        republish: Config = {"dest": _transform_dest(rng).replace("d", "rp", 1)}
        if _maybe(rng, 0.9):
            republish["src"] = _pick(
                rng, f"{plain}.a", f"{plain}.*", f"{plain}.>", ">", "t.*", "", plain
            )
        if _maybe(rng, 0.1):
            republish["dest"] = _pick(rng, ">", f"{plain}.>", f"{plain}.a")
        if _maybe(rng, 0.2):
            republish["headers_only"] = _maybe(rng, 0.5)
        config["republish"] = republish
    if _maybe(rng, 0.1):
        metadata: Config = {"owner": _text(rng)}
        if _maybe(rng, 0.3):
            metadata[_pick(rng, "_nats.x", "k\ud800", "big")] = _pick(rng, "v", "v" * 140_000)
        config["metadata"] = metadata
    if _maybe(rng, 0.05):
        config["placement"] = _pick(rng, {"preferred": "s1"}, {})
    return config


def _origin(rng: random.Random, index: int, case_stream: str) -> Config:
    name = f"o{index}"
    origin: Config = {"name": name, "subjects": [f"{name}.>"]}
    if _maybe(rng, 0.1):
        origin["subjects"] = [_pick(rng, ">", "*.x", f"{name}.*")]
        if origin["subjects"][0] == ">":
            origin["no_ack"] = True
    if _maybe(rng, 0.4):
        origin["allow_direct"] = _maybe(rng, 0.6)
    if _maybe(rng, 0.3):
        origin["max_msg_size"] = _pick(rng, -1, 100, 1024, 4096)
    if _maybe(rng, 0.06):  # the origin sources the stream under test: a cycle
        origin["sources"] = [{"name": case_stream}]
        if _maybe(rng, 0.5):
            origin["sources"][0]["filter_subject"] = _pick(rng, "zz", ">")
    return origin


def case(seed: int) -> list[Config]:
    """The streams of one case, in the order they are created: origin first."""
    rng = random.Random(seed)
    if _maybe(rng, 0.45):
        origin_name = f"o{seed}"
        stream = _stream(rng, seed, origin_name)
        if _maybe(rng, 0.85):
            return [_origin(rng, seed, stream["name"]), stream]
        return [stream]  # the origin is not declared: the checks that need it cannot run
    return [_stream(rng, seed, None)]


# --- as a manifest file ------------------------------------------------------------------------

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _manifest_value(path: str, value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _manifest_value(f"{path}.{k}" if path else k, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_manifest_value(path, v) for v in value]
    if path in DURATIONS:
        return format_duration(value)
    return value


def render(streams: list[Config]) -> str:
    """The streams as one manifest file: one YAML document each (JSON is YAML), with lone
    surrogates written as `\\uXXXX` escapes, the only way a UTF-8 file can carry one."""
    docs = []
    for config in streams:
        text = json.dumps(_manifest_value("", config), ensure_ascii=False)
        docs.append(_LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text))
    return "\n---\n".join(docs) + "\n"
