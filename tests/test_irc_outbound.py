"""The IRC door's answers with no sockets: 005 ISUPPORT, msgid and
server-time formats, CHATHISTORY arguments, and the core's frames ->
IRC lines (message, dm, joined, left, renamed, topic, room/NAMES, history
in a batch, errors) (server/doors/irc/isupport.py, names.py,
chathistory.py, outbound.py, errors.py)."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from server import protocol as p
from server.doors.irc import caps as c
from server.doors.irc.chathistory import HistoryFail, HistoryQuery, parse_chathistory
from server.doors.irc.isupport import Features, isupport_lines, isupport_tokens, myinfo
from server.doors.irc.names import format_time, msgid, parse_msgid, parse_time
from server.doors.irc.outbound import encode
from server.doors.irc.view import View
from server.doors.irc.wire import serialise

S = "irc.test"
TS = 1764601200.25          # 2025-12-01T15:00:00.250Z


def _view(*caps, nick="alice"):
    return View(Features(server_name=S), caps=set(caps), nick=nick, epoch="ep")


def _lines(frame, view):
    return [serialise(m).decode() for m in encode(frame, view).lines]


def _joined_view(*caps, users=("alice", "bob")):
    v = _view(*caps)
    encode(p.room_frame("rust", "", users, 0, 0, False), v)
    return v


# -- 005 --------------------------------------------------------------------

def test_isupport_says_what_the_door_does():
    tokens = isupport_tokens(Features(roles=True))
    for t in ("CHANTYPES=#", "PREFIX=(ov)@+", "UTF8ONLY", "CHATHISTORY=200", "TARGMAX=NAMES:1,LIST:1,WHOIS:1,"
              "PRIVMSG:4,NOTICE:4", "NICKLEN=32", "TOPICLEN=300", "CHANNELLEN=33"):
        assert t in tokens
    assert "PREFIX=" in isupport_tokens(Features(roles=False))      # no roles yet: no prefixes


@pytest.mark.parametrize("network", ["Natter", "N" * 240])
def test_005_lines_hold_13_tokens_at_most_each_within_512(network):
    f = Features(server_name=S, network=network, roles=True)
    lines = isupport_lines(f, "alice")
    assert [t for m in lines for t in m.params[1:-1]] == isupport_tokens(f)
    for m in lines:
        assert len(serialise(m)) <= 512 and len(m.params) - 2 <= 13
        assert m.params[-1] == "are supported by this server"


def test_004_and_a_bad_server_name():
    assert serialise(myinfo(Features(server_name=S), "a")) == b":irc.test 004 a irc.test natter-0.1.0 i k k\r\n"
    with pytest.raises(ValueError, match="server name"):
        Features(server_name="my server")


# -- msgid and time ---------------------------------------------------------

def test_msgid_and_time_formats():
    assert msgid("ep", 42) == "ep.42" and msgid("ep", 42, 3) == "ep.42.3"
    assert parse_msgid("ep.42.3", "ep") == 42 and parse_msgid("other.42", "ep") is None
    assert parse_msgid("ep.4x", "ep") is None and parse_msgid("ep.٤٢", "ep") is None
    assert format_time(TS) == "2025-12-01T15:00:00.250Z"
    assert format_time(0.9996) == "1970-01-01T00:00:01.000Z"


@given(st.floats(0, 4e9, allow_nan=False))
def test_time_round_trips_to_the_millisecond(ts):
    assert abs(parse_time(format_time(ts)) - ts) <= 0.0005 + 1e-6


@pytest.mark.parametrize("bad", ["2026-02-31T00:00:00Z", "2026-12-01T25:00:00.000Z", "2026-12-01 15:00:00Z",
                                 "1764601200", "2026-12-01T15:00:00.000"])
def test_parse_time_refuses_what_is_not_a_real_utc_time(bad):
    with pytest.raises(ValueError):
        parse_time(bad)


# -- CHATHISTORY -----------------------------------------------------------

def test_chathistory_before_after_latest():
    assert parse_chathistory(("BEFORE", "#Rust", "msgid=ep.9.2", "20"), "ep", 200) == \
        HistoryQuery("BEFORE", "#Rust", "Rust", None, msg_id=9, limit=20)
    q = parse_chathistory(("after", "bob", "timestamp=2025-12-01T15:00:00.250Z", "5000"), "ep", 200)
    assert (q.subcommand, q.nick, q.ts, q.limit) == ("AFTER", "bob", TS, 200)
    assert parse_chathistory(("LATEST", "#rust", "*", "50"), "ep", 200).msg_id is None


@pytest.mark.parametrize("params, code", [
    ((), "NEED_MORE_PARAMS"),
    (("AROUND", "#a", "*", "5"), "UNKNOWN_COMMAND"),
    (("TARGETS", "timestamp=x", "timestamp=y", "5"), "UNKNOWN_COMMAND"),
    (("BEFORE", "#a", "*", "5"), "INVALID_PARAMS"),
    (("BEFORE", "#a", "msgid=old.5", "5"), "INVALID_PARAMS"),
    (("BEFORE", "#a", "timestamp=yesterday", "5"), "INVALID_PARAMS"),
    (("LATEST", "#a", "*", "0"), "INVALID_PARAMS"),
    (("LATEST", "#a", "*", "5 6"), "INVALID_PARAMS"),
    (("LATEST", "*", "*", "5"), "INVALID_TARGET"),
    (("LATEST", "#a b", "*", "5"), "INVALID_TARGET"),
    (("LATEST", "bob[x]", "*", "5"), "INVALID_TARGET"),
    (("BEFORE", "#a", "*"), "NEED_MORE_PARAMS"),
])
def test_chathistory_refusals_are_fail_lines_with_a_sentence(params, code):
    with pytest.raises(HistoryFail) as e:
        parse_chathistory(params, "ep", 200)
    line = serialise(e.value.message(S)).decode()
    assert line.startswith(f":{S} FAIL CHATHISTORY {code} ") and len(e.value.text) > 10


# -- frames -> lines ----------------------------------------------------------

def test_room_frame_gives_join_topic_names_and_a_replay_request_without_chathistory():
    v = _view()
    out = encode(p.room_frame("rust", "Rust & friends", ["bob", "alice", "Carol"], 7, 0, False), v)
    assert [serialise(m).decode() for m in out.lines] == [
        ":alice!u@natter JOIN #rust\r\n",
        ":irc.test 332 alice #rust :Rust & friends\r\n",
        ":irc.test 353 alice = #rust :alice bob Carol\r\n",
        ":irc.test 366 alice #rust :End of NAMES list\r\n",
    ]
    # up to the newest message as of the join (7): later ones come live, not twice
    assert out.events == [p.HistoryRequest(room="rust", before=8, limit=50, ref="JOINREPLAY #rust")]
    assert encode(p.room_frame("empty", "", ["alice"], 0, 0, False), v).events == []   # nothing to replay
    assert encode(p.room_frame("rust", "", ["alice"], 7, 0, False), v).lines == []   # joined again
    assert encode(p.room_frame("go", "", ["alice"], 0, 0, False), _view(c.CHATHISTORY)).events == []


def test_names_are_split_over_353_lines_within_512():
    nicks = [f"user{i:02d}-" + "x" * 24 for i in range(60)]
    lines = _lines(p.room_frame("big", "", nicks, 0, 0, False), _view())
    names = [x for x in lines if " 353 " in x]
    assert len(names) > 1 and all(len(x.encode()) <= 512 for x in names)
    assert sorted(w for x in names for w in x.split(" :", 1)[1].split()) == sorted(nicks)


def test_message_with_tags_by_capability_and_echo():
    frame = p.message_frame(12, TS, "bob", "hi all", room="rust")
    assert _lines(frame, _joined_view()) == [":bob!u@natter PRIVMSG #rust :hi all\r\n"]
    assert _lines(frame, _joined_view(c.SERVER_TIME)) == \
        ["@time=2025-12-01T15:00:00.250Z :bob!u@natter PRIVMSG #rust :hi all\r\n"]
    assert _lines(frame, _joined_view(c.MESSAGE_TAGS)) == \
        ["@time=2025-12-01T15:00:00.250Z;msgid=ep.12 :bob!u@natter PRIVMSG #rust :hi all\r\n"]
    own = p.message_frame(13, TS, "alice", "/me waves", room="rust")
    assert _lines(own, _joined_view()) == []                       # no echo-message: no copy
    assert _lines(own, _joined_view(c.ECHO_MESSAGE)) == [":alice!u@natter PRIVMSG #rust :\x01ACTION waves\x01\r\n"]
    assert _lines(p.message_frame(14, TS, "bob", "x", room="elsewhere"), _joined_view()) == []


def test_dm_both_ways():
    v = _joined_view(c.ECHO_MESSAGE)
    assert _lines(p.dm_frame(3, TS, "bob", "alice", "psst"), v) == [":bob!u@natter PRIVMSG alice :psst\r\n"]
    assert _lines(p.dm_frame(4, TS, "alice", "bob", "yes?"), v) == [":alice!u@natter PRIVMSG bob :yes?\r\n"]
    assert _lines(p.dm_frame(4, TS, "alice", "bob", "yes?"), _joined_view()) == []


def test_joined_left_renamed_topic():
    v = _joined_view(c.SERVER_TIME)
    assert _lines(p.joined_frame("carol", "rust"), v) == [":carol!u@natter JOIN #rust\r\n"]
    assert _lines(p.joined_frame("carol", "rust"), v) == []                    # already shown
    assert _lines(p.left_frame("carol", "part", "rust"), v) == [":carol!u@natter PART #rust\r\n"]
    assert _lines({"type": "renamed", "old": "bob", "new": "robert"}, v) == [":bob!u@natter NICK robert\r\n"]
    assert v.room("rust").has("robert") and not v.room("rust").has("bob")
    assert _lines(p.left_frame("robert", "connection closed", "rust"), v) == \
        [":robert!u@natter QUIT :Connection closed\r\n"]
    assert _lines(p.topic_frame("rust", "new topic", "carol", 20, TS), v) == \
        ["@time=2025-12-01T15:00:00.250Z :carol!u@natter TOPIC #rust :new topic\r\n"]
    assert _lines(p.left_frame("alice", "part", "rust"), v) == [":alice!u@natter PART #rust\r\n"]
    assert v.room("rust") is None


def test_history_comes_in_a_chathistory_batch_with_tags():
    v = _joined_view(c.BATCH, c.MESSAGE_TAGS, c.CHATHISTORY)
    v.history["n7"] = ("#rust", 0)
    frame = p.history_frame([p.message_frame(5, TS, "bob", "one", room="rust"),
                             p.message_frame(6, TS + 1, "alice", "two", room="rust")], False, room="rust",
                            ref="CHATHISTORY n7")
    assert _lines(frame, v) == [
        ":irc.test BATCH +n7 chathistory #rust\r\n",
        "@batch=n7;time=2025-12-01T15:00:00.250Z;msgid=ep.5 :bob!u@natter PRIVMSG #rust :one\r\n",
        "@batch=n7;time=2025-12-01T15:00:01.250Z;msgid=ep.6 :alice!u@natter PRIVMSG #rust :two\r\n",
        ":irc.test BATCH -n7\r\n",
    ]
    assert "n7" not in v.history
    assert _lines(frame, v) == []                              # an answer nobody waits for


def test_join_replay_for_a_client_without_chathistory_has_time_tags():
    v = _joined_view(c.SERVER_TIME)
    frame = p.history_frame([p.message_frame(5, TS, "bob", "earlier", room="rust")], False, room="rust",
                            ref="JOINREPLAY #rust")
    assert _lines(frame, v) == ["@time=2025-12-01T15:00:00.250Z :bob!u@natter PRIVMSG #rust :earlier\r\n"]


@pytest.mark.parametrize("code, ref, start", [
    (p.NICK_TAKEN, "NICK bob", ":irc.test 433 alice bob :"),
    (p.BAD_KEY, "JOIN #rust", ":irc.test 475 alice #rust :"),
    (p.BAD_ROOM, "JOIN #a", ":irc.test 479 alice #a :"),
    (p.NOT_IN_ROOM, "PRIVMSG #go", ":irc.test 404 alice #go :"),
    (p.NOT_IN_ROOM, "PART #go", ":irc.test 442 alice #go :"),
    (p.NO_SUCH_USER, "PRIVMSG zed", ":irc.test 401 alice zed :"),
    (p.AUTH_FAILED, "PASS", ":irc.test 464 alice :"),
    (p.RATE_LIMITED, "PRIVMSG #rust", ":irc.test FAIL PRIVMSG RATE_LIMITED :"),
    (p.NOT_IN_ROOM, "CHATHISTORY n3", ":irc.test FAIL CHATHISTORY NOT_IN_ROOM :"),
])
def test_core_errors_become_the_numeric_irc_clients_know(code, ref, start):
    lines = _lines(p.error_frame(code, "The core's sentence.", ref), _view())
    assert lines == [start + "The core's sentence.\r\n"]


def test_a_fatal_error_is_error_and_closes():
    out = encode(p.error_frame(p.TOO_SLOW, "You read too slowly."), _view())
    assert [serialise(m) for m in out.lines] == [b"ERROR :You read too slowly.\r\n"] and out.close
