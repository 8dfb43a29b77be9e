"""IRC's MODE and KICK on the moderation of issue 11, over real sockets:
an IRC client with an identity (PASS nick:secret) that creates a room owns
it (@ in NAMES), ops and voices others, sets +m, kicks and bans; one
without a role is refused with 482 and the core's sentence; a banned one
gets 474; a window client's mod frames show as MODE and KICK lines; and
WeeChat is kicked by an op."""
from __future__ import annotations

import pytest

from tests.irctools import IrcClient
from tests.ircclients import Irssi, WeeChat
from tests.servertools import answer, expect, hello_v2

pytestmark = pytest.mark.timeout(60)

SECRET = "s" * 40           # an identity secret: 32 to 128 printable ASCII characters


@pytest.fixture
def srv(make_server):
    return make_server(rate_limit=0, irc_port=0)


@pytest.fixture
def irc(srv):
    made = []

    def make(nick: str, secret: str | None = None) -> IrcClient:
        c = IrcClient(srv.door_port("irc"))
        made.append(c)
        c.register(nick, password=f"{nick}:{secret}" if secret else None)
        return c
    yield make
    for c in made:
        c.close()


def test_op_voice_modes_kick_and_ban_from_irc(irc, srv):
    alice = irc("alice", SECRET)                 # an identity: it will own the room it creates
    alice.send("JOIN #ops")
    assert "@alice" in alice.names("#ops")
    bob = irc("bob", "b" * 40)
    carol = irc("carol")                         # no identity: a member, who can get no role
    for c in (bob, carol):
        c.send("JOIN #ops")
        c.expect("366")
    carol.send("MODE #ops +m")
    assert "op" in carol.expect("482").params[-1]
    carol.send("KICK #ops bob :no")
    carol.expect("482")
    alice.send("MODE #ops +o bob")
    m = bob.expect("MODE", "#ops")
    assert m.params == ("#ops", "+o", "bob") and m.source.startswith("alice!")
    bob.send("NAMES #ops")
    assert {"@alice", "@bob", "carol"} == set(bob.names("#ops"))
    alice.send("MODE #ops +v carol")
    assert "identity" in alice.expect("FAIL").params[-1]        # no identity, no role
    bob.send("MODE #ops +mU")
    assert carol.expect("MODE", "#ops", "+mU").source.startswith("bob!")   # an op now
    carol.send("PRIVMSG #ops :may I?")
    carol.expect("404")                          # moderated: a member may not speak
    carol.send("MODE #ops")
    assert carol.expect("324").params[-1] == "+mU"
    bob.send("KICK #ops carol :out")
    k = carol.expect("KICK", "#ops")
    assert k.params == ("#ops", "carol", "out") and k.source.startswith("bob!")
    assert alice.expect("KICK", "#ops").params[1] == "carol"
    carol.send("JOIN #ops")
    carol.expect("366")
    alice.send("MODE #ops +b carol")
    assert carol.expect("MODE", "#ops").params == ("#ops", "+b", "carol!*@*")
    assert carol.expect("KICK", "#ops").params[1] == "carol"
    carol.send("JOIN #ops")
    assert carol.expect("474").params[1] == "#ops"
    alice.send("MODE #ops b")
    assert alice.expect("367").params[2] == "carol!*@*"
    alice.expect("368")
    alice.send("MODE #ops -b carol")
    alice.expect("MODE", "#ops")
    carol.send("JOIN #ops")
    carol.expect("366")


def test_a_window_ops_mod_frames_show_as_mode_and_kick(irc, srv, connect):
    op = connect(srv=srv)
    hello_v2(op, "boss", identity="i" * 40)
    op.send({"type": "join", "room": "den", "ref": "j"})
    answer(op, "room", "j")
    wee = irc("dave")
    wee.send("JOIN #den")
    assert "@boss" in wee.names("#den")
    op.send({"type": "mod", "room": "den", "action": "kick", "nick": "dave", "reason": "bye", "ref": "k"})
    k = wee.expect("KICK", "#den")
    assert k.params == ("#den", "dave", "bye") and k.source.startswith("boss!")
    wee.send("PRIVMSG #den :still here?")
    wee.expect("404")                             # out of the room


def test_weechat_is_kicked_by_an_op(srv, connect, tmp_path):
    op = connect(srv=srv)
    hello_v2(op, "boss", identity="i" * 40)
    op.send({"type": "join", "room": "rust", "ref": "j"})
    answer(op, "room", "j")
    expect(op, "joined", nick="boss")
    with WeeChat(tmp_path / "weechat", "127.0.0.1", srv.door_port("irc"), "wee") as wee:
        wee.wait_log("server", "Welcome to Natter, wee")
        wee.send("/join #rust", "irc.server.test")
        wee.wait_log("#rust", "Channel #rust: 2 nicks")
        while op.recv()["type"] != "joined":
            pass
        op.send({"type": "mod", "room": "rust", "action": "kick", "nick": "wee", "reason": "enough", "ref": "k"})
        log = wee.wait_log("#rust", "enough")
        assert "boss" in log and "kicked" in log


def test_irssi_is_kicked_by_an_op(srv, connect, tmp_path):
    op = connect(srv=srv)
    hello_v2(op, "boss", identity="i" * 40)
    op.send({"type": "join", "room": "rust", "ref": "j"})
    answer(op, "room", "j")
    expect(op, "joined", nick="boss")
    with Irssi(tmp_path / "irssi", "127.0.0.1", srv.door_port("irc"), "irs") as irs:
        irs.wait_screen("Welcome to Natter, irs")
        irs.type("/join #rust")
        while op.recv()["type"] != "joined":
            pass
        op.send({"type": "mod", "room": "rust", "action": "kick", "nick": "irs", "reason": "enough", "ref": "k"})
        screen = irs.wait_screen("enough")
        line = next(x for x in screen.splitlines() if "enough" in x)
        assert "boss" in line and "kicked" in line, line
        assert "irs" not in srv.hub.chat.rooms["rust"].nicks()     # out of the room


def test_an_op_sets_and_removes_the_key_and_a_member_may_not(irc, srv):
    alice = irc("alice", SECRET)                 # owns #vault: an op there
    alice.join("#vault")
    carol = irc("carol")
    carol.join("#vault")
    carol.send("MODE #vault +k mine")
    assert "op" in carol.expect("482", "carol", "#vault").params[-1]     # the core's sentence
    alice.send("MODE #vault +k sesame")
    assert carol.expect("MODE", "#vault").params == ("#vault", "+k", "*")   # the key is not shown
    carol.send("MODE #vault")
    assert carol.expect("324").params[-1] == "+k"
    dave = irc("dave")
    dave.send("JOIN #vault")
    assert dave.expect("475").params[1] == "#vault"
    dave.send("JOIN #vault wrong")
    dave.expect("475", "dave", "#vault")
    dave.join("#vault", "sesame")
    assert carol.expect("JOIN", "#vault").source.startswith("dave!")
    dave.send("PART #vault")
    dave.expect("PART", "#vault")
    alice.send("MODE #vault -k")
    assert carol.expect("MODE", "#vault").params == ("#vault", "-k")
    carol.send("MODE #vault")
    assert carol.expect("324").params[-1] == "+"
    dave.join("#vault")                          # no key any more
    # CHANMODES puts k in the modes that always take a parameter: a -k with
    # the key (as clients that read 005 send it) leaves the next letter its own.
    alice.send("MODE #vault +k sesame")
    dave.expect("MODE", "#vault", "+k")
    alice.send("MODE #vault -k+v sesame carol")
    assert dave.expect("MODE", "#vault").params == ("#vault", "-k")
    assert "identity" in alice.expect("FAIL", "MODE").params[-1]     # +v was for carol, not for "sesame"


def test_voice_lets_a_member_speak_in_a_moderated_room_and_devoice_deop_and_modes_alone(irc, srv):
    alice = irc("alice", SECRET)
    alice.join("#ops")
    bob = irc("bob", "b" * 40)
    bob.join("#ops")
    alice.send("MODE #ops +m")
    bob.expect("MODE", "#ops", "+m")
    bob.send("PRIVMSG #ops :may I?")
    bob.expect("404", "bob", "#ops")
    alice.send("MODE #ops +v bob")
    m = bob.expect("MODE", "#ops")
    assert m.params == ("#ops", "+v", "bob") and m.source.startswith("alice!")
    bob.send("NAMES #ops")
    assert "+bob" in bob.names("#ops")
    bob.send("PRIVMSG #ops :thank you")
    assert alice.expect("PRIVMSG", "#ops").params[1] == "thank you"
    alice.send("MODE #ops -v bob")
    assert bob.expect("MODE", "#ops").params == ("#ops", "-v", "bob")
    bob.send("PRIVMSG #ops :and now?")
    bob.expect("404", "bob", "#ops")             # a member again
    alice.send("MODE #ops +o bob")
    bob.expect("MODE", "#ops", "+o", "bob")
    bob.send("PRIVMSG #ops :an op speaks")
    alice.expect("PRIVMSG", "#ops")
    alice.send("MODE #ops -o bob")
    assert bob.expect("MODE", "#ops").params == ("#ops", "-o", "bob")
    bob.send("NAMES #ops")
    assert set(bob.names("#ops")) == {"@alice", "bob"}
    bob.send("MODE #ops -m")
    bob.expect("482", "bob", "#ops")             # no longer an op
    alice.send("MODE #ops +U")
    bob.expect("MODE", "#ops", "+U")
    alice.send("MODE #ops")
    assert alice.expect("324").params[-1] == "+mU"
    alice.send("MODE #ops -m")
    assert bob.expect("MODE", "#ops").params == ("#ops", "-m")
    alice.send("MODE #ops -U")
    assert bob.expect("MODE", "#ops").params == ("#ops", "-U")
    alice.send("MODE #ops")
    assert alice.expect("324").params[-1] == "+"
    bob.send("PRIVMSG #ops :free again")
    assert alice.expect("PRIVMSG", "#ops").params[1] == "free again"
