"""reconciler.jetstream against a real nats-server; its pure helpers as tables."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nats
import pytest
from structlog.testing import capture_logs

from reconciler.errors import (
    ApiError,
    ConnectFailed,
    ConnectionLost,
    JetStreamError,
    RequestTimeout,
)
from reconciler.jetstream import (
    JetStream,
    connect_failure,
    display_url,
    parse_advisory,
    parse_time_ns,
    split_servers,
    stored_message,
    stream_state,
)
from reconciler.lease.fence import Fenced
from reconciler.model import Advisory, ConnectOptions, LiveStream, StoredMessage, StreamState
from reconciler.testing import NatsServer, TestClient, connect, free_port

# --- pure helpers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0001-01-01T00:00:00Z", 0),
        ("", 0),
        (None, 0),
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T00:00:01.000000001Z", 1_000_000_001),
        ("2026-11-27T12:59:23.798850015Z", 1_795_784_363_798_850_015),
        ("2026-11-27T12:59:23.7Z", 1_795_784_363_700_000_000),
        ("2026-11-27T12:59:23Z", 1_795_784_363_000_000_000),
        ("2026-11-27T14:59:23.798850015+02:00", 1_795_784_363_798_850_015),
        ("2026-11-27T07:59:23.000000001-05:00", 1_795_784_363_000_000_001),
    ],
)
def test_parse_time_ns_is_exact(text: str | None, ns: int) -> None:
    assert parse_time_ns(text) == ns


@pytest.mark.parametrize(
    "text", ["2026-11-27T12:59:23", "2026-11-27T12:59:23.1234567890Z", "2026-11-27T12:59:23.x1Z"]
)
def test_parse_time_ns_rejects_what_is_not_rfc3339(text: str) -> None:
    with pytest.raises(ValueError, match="not an RFC 3339 time"):
        parse_time_ns(text)


def test_stream_state_from_the_api() -> None:
    state = {
        "messages": 6, "bytes": 296, "first_seq": 3, "first_ts": "1970-01-01T00:00:02.5Z",
        "last_seq": 8, "last_ts": "1970-01-01T00:00:03Z", "num_subjects": 3,
        "num_deleted": 1, "consumer_count": 2,
    }  # fmt: skip
    assert stream_state(state) == StreamState(
        messages=6, bytes=296, first_seq=3, last_seq=8, first_ts_ns=2_500_000_000,
        consumer_count=2, num_subjects=3, num_deleted=1,
    )  # fmt: skip
    empty = {"messages": 0, "bytes": 0, "first_seq": 0, "first_ts": "0001-01-01T00:00:00Z"}
    assert stream_state(empty) == StreamState()
    assert stream_state(None) == StreamState()


def test_stored_message_measures_decoded_payload_and_headers() -> None:
    got = stored_message(
        {"subject": "ev.1", "seq": 2, "hdrs": "TkFUUy8xLjANCmE6IGINCg0K", "data": "eA==",
         "time": "1970-01-01T00:00:00.000000002Z"}
    )  # fmt: skip
    assert got == StoredMessage(seq=2, subject="ev.1", time_ns=2, payload_len=1, headers_len=18)
    empty = stored_message({"subject": "ev.0", "seq": 1, "time": "1970-01-01T00:00:01Z"})
    assert (empty.payload_len, empty.headers_len) == (0, 0)


def _api_audit(
    subject: str, client: dict[str, Any], response: str = '{"type":"x"}'
) -> dict[str, Any]:
    # the shape nats-server 2.15.1 sends on $JS.EVENT.ADVISORY.API
    return {
        "type": "io.nats.jetstream.advisory.v1.api_audit",
        "id": "vfYITNz2PxAUDpF5Nfditp",
        "timestamp": "1970-01-01T00:00:01.5Z",
        "server": "NB5JSIES6CHR6333NX5GGRED5MVIVABONJJC3FEEAQOVL7DJ4SVPAOBU",
        "client": client,
        "subject": subject,
        "request": "{}",
        "response": response,
    }


_ME = {"host": "127.0.0.1", "id": 6, "acc": "$G", "name": "jetstream-reconciler", "kind": "Client"}
_SOMEONE = {"host": "127.0.0.1", "id": 7, "acc": "$G", "user": "alice", "name": "someone"}


@pytest.mark.parametrize(
    ("subject", "payload", "expected"),
    [
        (
            "$JS.EVENT.ADVISORY.STREAM.UPDATED.events",
            {"type": "io.nats.jetstream.advisory.v1.stream_action", "id": "x",
             "timestamp": "1970-01-01T00:00:01Z", "stream": "events", "action": "modify"},
            Advisory("updated", "events", None, False,
                     "$JS.EVENT.ADVISORY.STREAM.UPDATED.events", 1_000_000_000),
        ),
        (
            "$JS.EVENT.ADVISORY.STREAM.CREATED.a",
            {"stream": "a", "action": "create", "timestamp": "1970-01-01T00:00:01Z"},
            Advisory("created", "a", None, False, "$JS.EVENT.ADVISORY.STREAM.CREATED.a",
                     1_000_000_000),
        ),
        (
            "$JS.EVENT.ADVISORY.STREAM.DELETED.a",
            {"stream": "a", "action": "delete", "timestamp": "1970-01-01T00:00:01Z"},
            Advisory("deleted", "a", None, False, "$JS.EVENT.ADVISORY.STREAM.DELETED.a",
                     1_000_000_000),
        ),
        ("$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.a", {"stream": "a"}, None),
        (
            "$JS.EVENT.ADVISORY.API",
            _api_audit("$JS.API.STREAM.UPDATE.events", _SOMEONE),
            Advisory("api", "events", "someone", False, "$JS.API.STREAM.UPDATE.events",
                     1_500_000_000, client_id=7, user="alice"),
        ),
        (
            "$JS.EVENT.ADVISORY.API",
            _api_audit("$JS.API.STREAM.DELETE.events", {**_SOMEONE, "name": ""}),
            Advisory("api", "events", "alice", False, "$JS.API.STREAM.DELETE.events",
                     1_500_000_000, client_id=7, user="alice"),
        ),
        (
            "$JS.EVENT.ADVISORY.API",
            _api_audit("$JS.API.STREAM.CREATE.events", _ME),
            Advisory("api", "events", "jetstream-reconciler", True,
                     "$JS.API.STREAM.CREATE.events", 1_500_000_000, client_id=6),
        ),
        # same name, another connection: not ours
        (
            "$JS.EVENT.ADVISORY.API",
            _api_audit("$JS.API.STREAM.CREATE.events", {**_ME, "id": 9}),
            Advisory("api", "events", "jetstream-reconciler", False,
                     "$JS.API.STREAM.CREATE.events", 1_500_000_000, client_id=9),
        ),
        # reads, other APIs and failed requests change nothing
        ("$JS.EVENT.ADVISORY.API", _api_audit("$JS.API.STREAM.INFO.events", _SOMEONE), None),
        ("$JS.EVENT.ADVISORY.API", _api_audit("$JS.API.STREAM.LIST", _SOMEONE), None),
        ("$JS.EVENT.ADVISORY.API", _api_audit("$JS.API.CONSUMER.CREATE.e.c", _SOMEONE), None),
        (
            "$JS.EVENT.ADVISORY.API",
            _api_audit("$JS.API.STREAM.UPDATE.events", _SOMEONE,
                       '{"type":"x","error":{"code":500,"err_code":10052}}'),
            None,
        ),
    ],
)  # fmt: skip
def test_parse_advisory(subject: str, payload: dict[str, Any], expected: Advisory | None) -> None:
    assert parse_advisory(subject, payload, client_id=6, name="jetstream-reconciler") == expected


def test_parse_advisory_without_a_client_id_compares_names() -> None:
    client = {"name": "jetstream-reconciler"}
    got = parse_advisory(
        "$JS.EVENT.ADVISORY.API",
        _api_audit("$JS.API.STREAM.UPDATE.e", client),
        client_id=None,
        name="jetstream-reconciler",
    )
    assert got is not None and got.own


def test_connect_failure_names_the_servers_in_one_line() -> None:
    one = [("nats://127.0.0.1:4222", "connection refused")]
    assert connect_failure(one) == "cannot connect to nats://127.0.0.1:4222: connection refused"
    same = [("nats://a:4222", "connection refused"), ("nats://b:4222", "connection refused")]
    assert connect_failure(same) == (
        "cannot connect to nats://a:4222, nats://b:4222: connection refused"
    )
    differ = [("nats://a:4222", "connection refused"), ("nats://b:4222", "authorization violation")]
    assert connect_failure(differ) == (
        "cannot connect to nats://a:4222: connection refused; "
        "nats://b:4222: authorization violation"
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
        ("nats://alice:s3cret@nats.example:4333", "nats://alice:***@nats.example:4333"),
        ("localhost", "nats://localhost:4222"),
        ("tls://tok@host", "tls://***@host:4222"),
        ("nats://alice:p@ss@[::1]", "nats://alice:***@[::1]:4222"),
        ("nats://u:pw@host:99999", "nats://u:***@host:99999"),
    ],
)
def test_display_url_masks_passwords_and_tokens(url: str, shown: str) -> None:
    assert display_url(url) == shown


def test_split_servers_takes_comma_separated_lists() -> None:
    got = split_servers(("nats://a:1, nats://b:2", "nats://c:3", ""))
    assert got == ["nats://a:1", "nats://b:2", "nats://c:3"]


# --- against a real server -----------------------------------------------------------------


@contextmanager
def running(store: Path, *args: str, jetstream: bool = True) -> Iterator[NatsServer]:
    server = NatsServer(store, extra_args=args, jetstream=jetstream).start()
    try:
        yield server
    finally:
        server.stop()


async def test_list_streams_returns_every_page_with_raw_configs(js: TestClient) -> None:
    gate = asyncio.Semaphore(32)

    async def create(i: int) -> None:
        async with gate:
            await js.create_stream({"name": f"s{i:03}", "subjects": [f"s.{i}"],
                                    "storage": "memory", "max_age": 3_600_000_000_001})

    await asyncio.gather(*(create(i) for i in range(300)))
    streams = (await js.list_streams()).streams
    assert sorted(s.name for s in streams) == [f"s{i:03}" for i in range(300)]
    config = next(s.config for s in streams if s.name == "s042")
    assert config["max_age"] == 3_600_000_000_001  # int ns, not float seconds
    assert config["duplicate_window"] == 120_000_000_000
    assert config["subjects"] == ["s.42"]
    assert "_nats.req.level" in config["metadata"]
    assert all(isinstance(s, LiveStream) for s in streams)


async def test_list_streams_of_an_empty_server(js: TestClient) -> None:
    assert (await js.list_streams()).streams == ()


async def test_create_update_info_delete(js: TestClient) -> None:
    created = await js.create_stream(
        {"name": "events", "subjects": ["events.*"], "storage": "file", "description": "a"}
    )
    assert created.name == "events"
    assert created.config["description"] == "a"
    assert created.config["max_msgs"] == -1  # as the server sent it, defaults filled in
    assert created.state == StreamState()

    await js.publish("events.x", b"12345")
    updated = await js.update_stream(
        {"name": "events", "subjects": ["events.*"], "storage": "file", "max_msgs": 10}
    )
    assert updated.config["max_msgs"] == 10
    assert "description" not in updated.config  # an update replaces the whole config
    assert updated.state.messages == 1
    assert updated.state.first_ts_ns > 0

    info = await js.stream_info("events")
    assert info is not None and info.config["max_msgs"] == 10
    assert info.state.messages == 1 and info.state.last_seq == 1
    assert info.config["metadata"]["_nats.ver"]

    await js.delete_stream("events")
    assert await js.stream_info("events") is None
    with pytest.raises(ApiError) as caught:
        await js.delete_stream("events")
    assert (caught.value.code, caught.value.err_code) == (404, 10059)


async def test_create_is_pedantic(js: TestClient) -> None:
    # max_age below the default duplicate window: the server would lower the window itself
    with pytest.raises(ApiError) as caught:
        await js.create_stream({"name": "p", "storage": "memory", "max_age": 60_000_000_000,
                                "duplicate_window": 120_000_000_000})  # fmt: skip
    assert caught.value.err_code in (10052, 10157)
    assert caught.value.stream == "p"


async def test_update_of_an_immutable_field_is_an_api_error(js: TestClient) -> None:
    await js.create_stream({"name": "events", "storage": "file"})
    with pytest.raises(ApiError) as caught:
        await js.update_stream({"name": "events", "storage": "memory"})
    err = caught.value
    assert (err.code, err.err_code, err.stream) == (500, 10052, "events")
    assert err.description == "stream configuration update can not change storage type"
    assert str(err).startswith(
        "stream events: stream configuration update can not change storage type "
        "(status 500, error 10052)"
    )


async def test_overlapping_subjects_are_an_api_error(js: TestClient) -> None:
    await js.create_stream({"name": "a", "subjects": ["events.>"], "storage": "memory"})
    with pytest.raises(ApiError) as caught:
        await js.create_stream({"name": "b", "subjects": ["events.x"], "storage": "memory"})
    assert (caught.value.code, caught.value.err_code) == (400, 10065)
    assert "subjects overlap" in caught.value.description


async def test_unknown_field_is_an_api_error(js: TestClient) -> None:
    with pytest.raises(ApiError) as caught:
        await js.create_stream({"name": "a", "bogus": 1})
    assert (caught.value.code, caught.value.err_code) == (400, 10025)


async def test_stream_info_of_a_missing_stream_is_none(js: TestClient) -> None:
    assert await js.stream_info("nope") is None


async def test_a_name_with_a_dot_times_out_with_a_hint(nats_server: NatsServer) -> None:
    conn = await connect(ConnectOptions(servers=(nats_server.url,), request_timeout=0.2))
    try:
        with pytest.raises(RequestTimeout) as caught:
            await conn.stream_info("a.b")
    finally:
        await conn.close()
    assert str(caught.value) == (
        "no answer to $JS.API.STREAM.INFO.a.b within 0.2s: the stream name 'a.b' contains '.', "
        "so no API handler matches the subject; stream names cannot contain '.'"
    )


async def _seed(js: TestClient, storage: str = "file") -> None:
    await js.create_stream({"name": "events", "subjects": ["events.>"], "storage": storage})
    for subject in ["page_loaded", "mouse_clicked", "mouse_clicked", "page_loaded",
                    "mouse_clicked", "input_focused"]:  # fmt: skip
        await js.publish(f"events.{subject}")


async def test_read_messages_oldest_first_with_sizes(js: TestClient) -> None:
    await js.create_stream({"name": "events", "subjects": ["events.>"], "storage": "memory"})
    assert await js.publish("events.a", b"12345") == 1
    assert await js.publish("events.b", b"", headers={"k": "v"}) == 2
    assert await js.publish("events.a", b"x" * 100, headers={"key": "value"}) == 3
    got = await js.read_messages("events", 1, 10)
    assert [(m.seq, m.subject, m.payload_len, m.headers_len) for m in got] == [
        (1, "events.a", 5, 0),
        (2, "events.b", 0, len(b"NATS/1.0\r\nk: v\r\n\r\n")),
        (3, "events.a", 100, len(b"NATS/1.0\r\nkey: value\r\n\r\n")),
    ]
    assert got[0].time_ns <= got[1].time_ns <= got[2].time_ns
    assert [m.seq for m in await js.read_messages("events", 2, 1)] == [2]
    assert await js.read_messages("events", 4, 10) == []


async def test_read_messages_skips_deleted_ones(js: TestClient) -> None:
    await js.create_stream({"name": "events", "subjects": ["events.>"], "storage": "memory"})
    for i in range(60):
        await js.publish(f"events.{i % 7}", b"x" * i)
    # delete a run of messages in the middle, and a lone one
    nc = await nats.connect(js.url)
    try:
        for seq in [*range(5, 40), 50]:
            body = json.dumps({"seq": seq}).encode()
            reply = await nc.request("$JS.API.STREAM.MSG.DELETE.events", body)
            assert json.loads(reply.data)["success"]
    finally:
        await nc.close()
    expected = [s for s in range(1, 61) if not (5 <= s < 40 or s == 50)]
    got = await js.read_messages("events", 1, 1000)
    assert [m.seq for m in got] == expected
    assert [m.payload_len for m in got] == [s - 1 for s in expected]
    assert [m.seq for m in await js.read_messages("events", 3, 5)] == expected[2:7]


async def test_sample_messages_whole_and_within_budget(js: TestClient) -> None:
    await _seed(js)
    live = await js.stream_info("events")
    assert live is not None and live.state.bytes == 296
    whole = await js.sample_messages(live, subject_counts=True)
    assert whole.complete
    assert [m.subject for m in whole.messages] == [
        "events.page_loaded", "events.mouse_clicked", "events.mouse_clicked",
        "events.page_loaded", "events.mouse_clicked", "events.input_focused",
    ]  # fmt: skip
    # the file store's size formula on what the sample read adds up to the stream's bytes
    assert sum(22 + len(m.subject) + m.payload_len + 8 for m in whole.messages) == 296
    assert whole.subject_counts == {
        "events.page_loaded": 2, "events.mouse_clicked": 3, "events.input_focused": 1
    }  # fmt: skip
    assert whole.now_ns >= whole.messages[-1].time_ns

    exact = await js.sample_messages(live, budget=6)
    assert exact.complete and len(exact.messages) == 6 and exact.subject_counts is None
    part = await js.sample_messages(live, budget=4)
    assert not part.complete
    assert [m.seq for m in part.messages] == [1, 2, 3, 4]


async def test_sample_messages_stops_at_the_state_it_was_given(js: TestClient) -> None:
    await _seed(js, "memory")
    live = await js.stream_info("events")
    assert live is not None
    await js.publish("events.later")
    sample = await js.sample_messages(live)
    assert sample.complete and [m.seq for m in sample.messages] == [1, 2, 3, 4, 5, 6]


async def test_sample_of_an_empty_stream(js: TestClient) -> None:
    live = await js.create_stream({"name": "empty", "storage": "memory"})
    sample = await js.sample_messages(live, subject_counts=True)
    assert sample.complete and sample.messages == () and sample.subject_counts == {}


async def test_subject_counts_with_a_filter(js: TestClient) -> None:
    await _seed(js, "memory")
    assert await js.subject_counts("events", "events.page_loaded") == {"events.page_loaded": 2}
    with pytest.raises(ApiError) as caught:
        await js.subject_counts("nope")
    assert caught.value.err_code == 10059


async def test_publish_without_a_stream(js: TestClient) -> None:
    with pytest.raises(JetStreamError) as caught:
        await js.publish("nobody.listens")
    assert str(caught.value) == (
        f"no stream on {js.url} takes subject nobody.listens (no responders)"
    )


# --- connecting ----------------------------------------------------------------------------


async def test_connect_to_a_closed_port_fails_in_one_line() -> None:
    port = free_port()
    with pytest.raises(ConnectFailed) as caught:
        await connect(ConnectOptions(servers=(f"nats://127.0.0.1:{port}",)))
    assert str(caught.value) == f"cannot connect to nats://127.0.0.1:{port}: connection refused"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__ is False
    assert caught.value.__context__ is None


async def test_connect_names_every_server_of_a_list(nats_server: NatsServer) -> None:
    a, b = free_port(), free_port()
    opts = ConnectOptions(servers=(f"nats://127.0.0.1:{a},nats://127.0.0.1:{b}",))
    with pytest.raises(ConnectFailed) as caught:
        await connect(opts)
    assert str(caught.value) == (
        f"cannot connect to nats://127.0.0.1:{a}, nats://127.0.0.1:{b}: connection refused"
    )
    with pytest.raises(ConnectFailed) as caught:
        await connect(opts, reconnect=True)
    assert str(caught.value) == (
        f"cannot connect to nats://127.0.0.1:{a}, nats://127.0.0.1:{b}: connection refused"
    )
    # the first server that answers is taken
    for reconnect in (False, True):
        opts = ConnectOptions(servers=(f"nats://127.0.0.1:{a}", nats_server.url))
        conn = await connect(opts, reconnect=reconnect)
        assert conn.connected and conn.url == nats_server.url
        await conn.close()
        assert not conn.connected


async def test_user_and_password(tmp_path: Path) -> None:
    with running(tmp_path / "js", "--user", "alice", "--pass", "s3cret") as server:
        conn = await connect(ConnectOptions(servers=(server.url,), user="alice", password="s3cret"))
        try:
            await conn.create_stream({"name": "a", "storage": "memory"})
            assert [s.name for s in (await conn.list_streams()).streams] == ["a"]
        finally:
            await conn.close()
        with pytest.raises(ConnectFailed) as caught:
            await connect(ConnectOptions(servers=(server.url,), user="alice", password="wrong"))
        assert str(caught.value) == f"cannot connect to {server.url}: authorization violation"
        with pytest.raises(ConnectFailed) as caught:
            await connect(ConnectOptions(servers=(server.url,)))
        assert str(caught.value) == f"cannot connect to {server.url}: authorization violation"


async def test_token(tmp_path: Path) -> None:
    with running(tmp_path / "js", "--auth", "t0ken") as server:
        conn = await connect(ConnectOptions(servers=(server.url,), token="t0ken"))
        try:
            assert (await conn.list_streams()).streams == ()
        finally:
            await conn.close()
        with pytest.raises(ConnectFailed, match=r"authorization violation$"):
            await connect(ConnectOptions(servers=(server.url,), token="nope"))


async def test_a_password_in_the_url_is_masked_in_messages(tmp_path: Path) -> None:
    with running(tmp_path / "js", "--user", "alice", "--pass", "s3cret") as server:
        url = f"nats://alice:wrong@127.0.0.1:{server.port}"
        with pytest.raises(ConnectFailed) as caught:
            await connect(ConnectOptions(servers=(url,)))
        assert str(caught.value) == (
            f"cannot connect to nats://alice:***@127.0.0.1:{server.port}: authorization violation")


async def test_a_server_without_jetstream(tmp_path: Path) -> None:
    with running(tmp_path / "js", jetstream=False) as server:
        conn = await connect(ConnectOptions(servers=(server.url,)))
        try:
            with pytest.raises(JetStreamError) as caught:
                await conn.list_streams()
        finally:
            await conn.close()
    assert type(caught.value) is JetStreamError
    assert str(caught.value) == (
        f"JetStream is not enabled on {server.url} (no responders on $JS.API): "
        "start nats-server with -js, or enable JetStream for this account"
    )


async def test_nkey_seed(tmp_path: Path) -> None:
    import nkeys

    seed = nkeys.encode_seed(bytes(range(32)), nkeys.PREFIX_BYTE_USER)
    public = nkeys.from_seed(bytearray(seed)).public_key.decode()
    conf = tmp_path / "nkey.conf"
    conf.write_text(f'authorization {{ users = [ {{ nkey: "{public}" }} ] }}\n')
    (tmp_path / "user.nk").write_bytes(seed + b"\n")
    with running(tmp_path / "js", "-c", str(conf)) as server:
        conn = await connect(ConnectOptions(servers=(server.url,), nkey=str(tmp_path / "user.nk")))
        try:
            assert (await conn.list_streams()).streams == ()
        finally:
            await conn.close()
        with pytest.raises(ConnectFailed, match=r"authorization violation$"):
            await connect(ConnectOptions(servers=(server.url,)))


async def test_lost_connection_fails_fast_without_reconnect(nats_server: NatsServer) -> None:
    down = asyncio.Event()

    async def on_down() -> None:
        down.set()

    conn = await connect(ConnectOptions(servers=(nats_server.url,)), on_disconnected=on_down)
    try:
        nats_server.stop()
        await asyncio.wait_for(down.wait(), 5)
        assert not conn.connected
        with pytest.raises(JetStreamError) as caught:
            await conn.list_streams()
    finally:
        await conn.close()
    assert type(caught.value) is ConnectionLost and not caught.value.sent
    assert str(caught.value) == (
        f"$JS.API.STREAM.LIST: not sent: the connection to {nats_server.url} was lost")


async def test_reconnect_calls_back_and_carries_on(nats_server: NatsServer) -> None:
    down, up = asyncio.Event(), asyncio.Event()

    async def on_down() -> None:
        down.set()

    async def on_up() -> None:
        up.set()

    conn = await connect(
        ConnectOptions(servers=(nats_server.url,)),
        reconnect=True,
        on_disconnected=on_down,
        on_reconnected=on_up,
    )
    try:
        await conn.create_stream({"name": "a", "storage": "file"})
        nats_server.stop()
        await asyncio.wait_for(down.wait(), 5)
        assert not conn.connected
        nats_server.start()
        await asyncio.wait_for(up.wait(), 10)
        assert conn.connected
        assert [s.name for s in (await conn.list_streams()).streams] == ["a"]
        down.clear()
    finally:
        await conn.close()
    assert not down.is_set()  # our own close() is not a disconnection to report


# --- TLS -----------------------------------------------------------------------------------


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 it signed, made with the openssl CLI."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed")
    ca_key, ca, key, csr, cert = (directory / n for n in ("ca.key", "ca.pem", "server.key",
                                                         "server.csr", "server.pem"))  # fmt: skip
    ext = directory / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for args in (
        ["req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=test ca"],
        ["req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-out", cert, "-days", "2", "-extfile", ext],
    ):  # fmt: skip
        subprocess.run([openssl, *map(str, args)], check=True, capture_output=True)
    return ca, cert, key


async def test_tls_with_a_ca(tmp_path: Path) -> None:
    ca, cert, key = _certificates(tmp_path)
    args = ("--tls", "--tlscert", str(cert), "--tlskey", str(key))
    with running(tmp_path / "js", *args) as server:
        tls_url = f"tls://127.0.0.1:{server.port}"
        conn = await connect(ConnectOptions(servers=(tls_url,), tls_ca=str(ca)))
        try:
            assert (await conn.list_streams()).streams == ()
        finally:
            await conn.close()
        # the system's CAs do not know ours
        with pytest.raises(ConnectFailed) as caught:
            await connect(ConnectOptions(servers=(tls_url,)))
        assert str(caught.value).startswith(
            f"cannot connect to {tls_url}: TLS certificate verification failed"
        )
        assert "\n" not in str(caught.value)
    with pytest.raises(ConnectFailed, match=r"^cannot load TLS files: no such file or directory"):
        await connect(ConnectOptions(servers=(tls_url,), tls_ca=str(tmp_path / "missing.pem")))


# --- advisories ----------------------------------------------------------------------------


async def test_advisories_name_the_actor_and_tell_our_own(js: TestClient) -> None:
    received: list[Advisory] = []
    arrived = asyncio.Event()

    async def handler(advisory: Advisory) -> None:
        received.append(advisory)
        arrived.set()

    async def next_matching(kind: str, **want: Any) -> Advisory:
        # advisories on different subjects may arrive in any order
        async with asyncio.timeout(5):
            while True:
                for got in received:
                    if got.kind == kind and all(getattr(got, k) == v for k, v in want.items()):
                        received.remove(got)
                        return got
                arrived.clear()
                await arrived.wait()

    await js.create_stream({"name": "events", "subjects": ["events.*"], "storage": "memory"})
    watch = await js.watch_advisories(handler)
    other = await nats.connect(js.url, name="someone")
    try:
        body = {"name": "events", "subjects": ["events.*"], "storage": "memory",
                "description": "changed by hand"}  # fmt: skip
        reply = await other.request("$JS.API.STREAM.UPDATE.events", json.dumps(body).encode())
        assert "error" not in json.loads(reply.data)

        updated = await next_matching("updated", stream="events")
        assert (updated.actor, updated.own) == (None, False)
        assert updated.subject == "$JS.EVENT.ADVISORY.STREAM.UPDATED.events"
        api = await next_matching("api", stream="events")
        assert (api.actor, api.own, api.subject) == (
            "someone", False, "$JS.API.STREAM.UPDATE.events"
        )
        assert api.client_id == other.client_id and api.time_ns > 0

        await js.update_stream({"name": "events", "subjects": ["events.*"], "storage": "memory"})
        mine = await next_matching("api", stream="events")
        assert (mine.actor, mine.own, mine.client_id) == (js.client_name, True, js.client_id)

        await js.delete_stream("events")
        deleted = await next_matching("deleted")
        assert deleted.stream == "events"
    finally:
        await other.close()
        await watch.unsubscribe()
    # after unsubscribe, nothing more arrives
    received.clear()
    await js.create_stream({"name": "quiet", "storage": "memory"})
    await js.list_streams()  # a round trip after the advisory would have been sent
    assert received == []


async def test_a_failing_advisory_handler_does_not_end_the_watch(js: TestClient) -> None:
    calls: list[Advisory] = []
    second = asyncio.Event()

    async def handler(advisory: Advisory) -> None:
        calls.append(advisory)
        if len(calls) == 1:
            raise RuntimeError("boom")
        second.set()

    watch = await js.watch_advisories(handler)
    with capture_logs() as logs:
        try:
            await js.create_stream({"name": "a", "storage": "memory"})
            await asyncio.wait_for(second.wait(), 5)
        finally:
            await watch.unsubscribe()
    assert len(calls) >= 2
    failed = [e for e in logs if e["event"] == "advisory_handler_failed"]
    assert failed[0]["subject"].startswith("$JS.EVENT.ADVISORY.")
    assert failed[0]["log_level"] == "error" and failed[0]["exc_info"] is True


def test_the_production_client_never_publishes() -> None:
    """Reading messages back and publishing are for tests, bench and examples:
    `reconciler.testing.TestClient`. The lease's writes are `kv_put`; the only deletion is
    prune's (`delete_stream`, behind the lease's fence)."""
    for name in ("read_messages", "publish"):
        assert not hasattr(JetStream, name), name
        assert callable(getattr(TestClient, name))
    assert callable(Fenced.delete_stream)
