"""Natter wire protocol: JSON Lines over TCP, with no I/O.

Both the server and the client import this package (``from server import
protocol as p``; every public name is here). It knows framing, limits and
validation; it knows nothing of sockets, threads or Tk, so every rule is
tested without a network (see ``docs/protocol.md``).

- :mod:`.framing`: bytes in through :class:`LineDecoder` and
  :func:`decode_frame`, which give dicts; frames out through :func:`encode`.
- :mod:`.errors`: the error codes and :class:`ProtocolError` (a code and a
  sentence for a person).
- :mod:`.names`: the rules for nicks, room names, text and topics.
- :mod:`.client_frames`: what a client sends: :func:`parse_client` turns a
  dict into a frozen event, and the builders make the frames.
- :mod:`.server_frames`: what a server sends: the builders, and
  :func:`parse_server` for the client.
- :mod:`.moderation`: identity and moderation (issue 11): their client
  events, builders, error codes and fingerprints.
- :mod:`.files`: files and pictures (issue 12): ``upload``, the transfer
  lines ``put`` / ``get`` and their answers, the ``file`` object.

Thread: everything here is pure and safe to call from any thread; a
:class:`LineDecoder` belongs to one reader.
"""
from .errors import (  # noqa: F401
    BAD_JSON, BAD_FRAME, TOO_LONG, UNKNOWN_TYPE, NOT_WELCOMED, NICK_TAKEN, BAD_NICK, RATE_LIMITED,
    NO_SUCH_USER, AUTH_FAILED, SERVER_FULL, BAD_TEXT, ALREADY_WELCOMED, TOO_MANY_ERRORS, TIMEOUT, TOO_SLOW,
    TOO_MANY_CONNECTIONS, SHUTDOWN, TLS_REQUIRED, BAD_ROOM, BAD_KEY, TOO_MANY_ROOMS, NOT_IN_ROOM,
    UNAVAILABLE, HISTORY_GONE, ProtocolError, error_frame,
)
from .framing import (  # noqa: F401
    PROTOCOL_VERSION, DEFAULT_PORT, MAX_LINE, MAX_SERVER_LINE, LineDecoder, decode_frame, encode,
)
from .names import (  # noqa: F401
    LOBBY, MAX_NICK, MAX_ROOM, MAX_TOPIC, check_nick, is_default_ignorable, check_room, room_key, nick_key,
    check_text, check_topic,
)
from .client_frames import (  # noqa: F401
    MAX_REF, MAX_PASSWORD, MAX_EPOCH, MAX_ROOM_KEY, HISTORY_PAGE, MAX_HISTORY_PAGE, Hello, Say, SendDirect,
    ChangeNick, Ping, Pong, Bye, Join, Part, ListRooms, SetTopic, HistoryRequest, MarkRead, CLIENT_TYPES,
    parse_client, hello_frame, say_frame, dm_request_frame, join_frame, part_frame, rooms_request_frame,
    topic_request_frame, history_request_frame, read_frame,
)
from .server_frames import (  # noqa: F401
    message_frame, dm_frame, room_frame, topic_frame, joined_frame, left_frame, rooms_frame, history_frame,
    replay_frame, caught_up_frame, REPLAY_MAX_FRAMES, REPLAY_MAX_BYTES, Message, Direct, Welcome, Joined,
    Left, Renamed, ServerError, Notice, RoomInfo, Topic, RoomSummary, RoomList, HistoryPage, Replay, CaughtUp,
    Unknown, parse_server,
)
from .moderation import (  # noqa: F401
    NICK_RESERVED, BAD_IDENTITY, FORBIDDEN, BANNED, MUTED, SLOW_MODE, EDIT_WINDOW, NO_IDENTITY, BAD_MOD,
    NO_SUCH_MESSAGE, MIN_IDENTITY, MAX_IDENTITY, MAX_REASON, MAX_DURATION, MAX_SLOW, MOD_ACTIONS, MODE_FLAGS, ROLES,
    Forget, Mod, SetMode, Release, Delete, Edit, Audit, check_identity, fingerprint, is_fingerprint, check_reason,
    forget_frame, mod_frame, mode_request_frame, release_frame, delete_frame, edit_frame, audit_request_frame,
    moderated_frame, removed_frame, mode_frame, deleted_frame, edited_frame, audit_frame, forgotten_frame,
)
from .files import (  # noqa: F401
    FILE_TOO_LARGE, QUOTA_FULL, BAD_FILE, NO_SUCH_FILE, MAX_FILE_NAME, MAX_MIME, MAX_THUMB, MAX_THUMB_B64,
    DEFAULT_MAX_FILE_SIZE, DEFAULT_MIME, TRANSFER_TYPES, Upload, Put, Get, FileInfo, UploadReady, PutOk, Blob,
    check_file_id, check_file_name, check_sha256, check_mime, check_thumb, upload_frame, put_frame, get_frame,
    upload_ready_frame, put_ok_frame, blob_frame, file_object, parse_file, human_size, file_line, shown_text,
)
