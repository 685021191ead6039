"""ntfy and JSON notifications sent with the standard library, as Apprise sends them.

Most households page their phones through ntfy (``ntfy://``, ``ntfys://``) or a JSON
webhook (``json://``, ``jsons://``: Home Assistant, Node-RED, a phone gateway). For those
the notifier need not load Apprise, ``requests`` and ``http.client`` (with ``ssl`` and
``email``, ~16 MB of the notifier process's private memory): :func:`send` builds the
same HTTP request Apprise 1.x/2.x's ``custom_json`` and ``ntfy`` plugins build (method,
path, body byte for byte, the headers that carry meaning: ntfy's X-Priority, X-Click,
X-Tags, X-Icon (the message type), X-Delay, X-Email, the Authorization;
``tests/test_caregiver_notify_http.py`` compares the two against a local server) and
writes it on a socket itself: one request per connection, ``ssl`` imported only for an
https server.

The stdlib path takes only URLs it understands completely. Anything else — another
scheme, a URL parameter not listed here, a user without a password, a proxy in the
environment, a message too long for ntfy's JSON form, a server answering with a
redirect — raises :class:`ForApprise`, and :func:`caregiver.notify.send_notification`
hands the message to Apprise as before: the contact is paged either way.

The server's name is looked up within the same timeout (:func:`_addresses`): the system's
lookup (``getaddrinfo``) takes none, and a failing resolver held each message tens of
seconds. A failure (a name not found in time, refused, timed out, an answer that is not
2xx) raises :class:`NotDelivered`
with the reason (never the URL, which may hold a password or a secret topic); the
notifier retries it as it retries Apprise's failures (:mod:`caregiver.notify`).
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
from base64 import b64encode
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlencode

from caregiver.outbox import Urgency
from caregiver.priority import prioritised

__all__ = ["ForApprise", "NotDelivered", "Post", "handles", "requests_for", "send", "warm_up"]

TIMEOUT_S = 4.0
"""Apprise's connect and read timeouts (``cto``, ``rto``), each."""
USER_AGENT = "Apprise"
"""What Apprise says it is: receivers see the same request from either path."""
ICON = (
    "https://github.com/caronc/apprise/raw/master/apprise/assets/themes/default/"
    "apprise-{type}-256x256.png"
)
"""ntfy's X-Icon for a message type: Apprise's own images, as its ntfy plugin sends them."""
NTFY_JSON_LIMIT = 8000
"""A longer ntfy JSON body is sent by Apprise as an attachment: left to Apprise."""

_TYPE = {
    Urgency.CRITICAL: "failure",
    Urgency.HIGH: "warning",
    Urgency.NORMAL: "info",
    Urgency.TEST: "info",
}
"""The value of Apprise's ``NotifyType`` for each urgency (:mod:`caregiver.priority`)."""

_NTFY_PRIORITY = (
    ("l", "low"),
    ("mo", "low"),
    ("n", "default"),
    ("h", "high"),
    ("e", "max"),
    ("mi", "min"),
    ("ma", "max"),
    ("d", "default"),
    ("1", "min"),
    ("2", "low"),
    ("3", "default"),
    ("4", "high"),
    ("5", "max"),
)
"""Apprise's ntfy priority words: the first prefix the given value starts with wins."""
_JSON_METHODS = {"POST", "PUT", "PATCH"}
_NTFY_KEYS = {"priority", "click", "tags", "xtags", "image", "delay", "email", "token"}
_TOPIC = re.compile(r"^[a-z0-9_-]{1,64}$", re.IGNORECASE)
_LABEL = re.compile(r"^([a-z0-9][a-z0-9-]{1,62}|[a-z])(?<!-)$", re.IGNORECASE)
_IPV4 = re.compile(r"^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$")
_PATH = re.compile(r"^[A-Za-z0-9/._~-]*$")
_TRUE = ("en", "al", "t", "y", "ye", "on", "1", "tr")
_FALSE = ("de", "di", "ne", "f", "n", "no", "of", "0", "fa")
_PROXIES = ("http_proxy", "https_proxy", "all_proxy")


Address = tuple[
    socket.AddressFamily,
    socket.SocketKind,
    int,
    str,
    tuple[str, int] | tuple[str, int, int, int] | tuple[int, bytes],
]
"""One of ``getaddrinfo``'s answers."""
Resolver = Callable[[str, int], list[Address]]


def _system_lookup(host: str, port: int) -> list[Address]:
    found: list[Address] = [*socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)]
    return found


resolve: Resolver = _system_lookup
"""The name lookup (the system's ``getaddrinfo``, which has no timeout of its own); tests
replace it with a resolver of their own (no DNS)."""


class LookupTimeout(TimeoutError):
    """The server's name was not looked up within :data:`TIMEOUT_S`."""


class _Lookup:
    """One name lookup in flight on a thread of its own (it cannot be stopped: it ends when
    the system's resolver gives up)."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.addresses: list[Address] = []
        self.error: OSError | None = None


_lookups: dict[tuple[str, int], _Lookup] = {}
"""Lookups in flight: another message to the same server waits for the one already asked
rather than starting a thread of its own, so a resolver that hangs costs one thread per
server name, not one per message."""
_lookups_lock = threading.Lock()


class ForApprise(Exception):
    """Not a URL (or message) this module sends as Apprise would: let Apprise send it."""


class NotDelivered(Exception):
    """The service did not take the message; the reason names no URL."""


@dataclass(frozen=True)
class Post:
    """One HTTP request, as it goes on the wire."""

    secure: bool
    host: str
    port: int
    method: str
    target: str
    """The request target: path and query."""
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True)
class _Url:
    scheme: str
    user: str | None
    password: str | None
    host: str
    port: int | None
    path: str
    query: dict[str, str]


def handles(url: str) -> bool:
    """Whether :func:`send` sends to ``url`` itself (Apprise is not needed for it)."""
    return _posts_to(url) is not None


def warm_up(urls: Iterable[str]) -> list[str]:
    """Import now what sending to ``urls`` will need (``ssl`` for an https server), not at
    the first alarm; the URLs left to Apprise."""
    left = []
    for url in urls:
        posts = _posts_to(url)
        if posts is None:
            left.append(url)
        elif any(post.secure for post in posts):
            import ssl  # noqa: F401
    return left


def _posts_to(url: str) -> list[Post] | None:
    try:
        return requests_for(prioritised(url, Urgency.CRITICAL), "t", "b", "failure")
    except ForApprise:
        return None


def send(url: str, title: str, body: str, urgency: Urgency = Urgency.NORMAL) -> bool:
    """Send one message as Apprise would; True, or :class:`NotDelivered` with the reason.

    Raises :class:`ForApprise` before anything is sent when the URL or the message is not
    one this module takes, or when the first request is answered with a redirect (Apprise
    follows it)."""
    if _proxied():
        raise ForApprise("a proxy is set in the environment")
    posts = requests_for(prioritised(url, urgency), title, body, _TYPE[urgency])
    failures: list[str] = []
    for number, post in enumerate(posts):
        try:
            status, reason = _exchange(post)
        except OSError as exc:
            failures.append(_why(exc, post))
            continue
        if 300 <= status < 400 and number == 0:
            raise ForApprise("the server redirects")
        if not 200 <= status < 300:
            failures.append(f"{post.host} answered {status} {reason}".rstrip())
    if failures:
        raise NotDelivered("; ".join(failures))
    return True


def requests_for(url: str, title: str, body: str, notify_type: str) -> list[Post]:
    """The requests Apprise makes for this message to ``url`` (its priority already set),
    in the order it makes them; :class:`ForApprise` when it is not sure to be the same."""
    title, body = title.strip(), body.rstrip()
    if not body:
        raise ForApprise("an empty body (Apprise refuses it its own way)")
    parsed = _parse(url)
    if parsed.scheme in ("json", "jsons"):
        return [_json_post(parsed, title, body, notify_type)]
    if parsed.scheme in ("ntfy", "ntfys"):
        return _ntfy_posts(parsed, title, body, notify_type)
    raise ForApprise(f"{parsed.scheme}://")


# ------------------------------------------------------------------ the URL


def _parse(url: str) -> _Url:
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("json", "jsons", "ntfy", "ntfys"):
        raise ForApprise(f"{scheme}://")
    rest, _, query = rest.partition("?")
    if "#" in rest or "#" in query:
        raise ForApprise("a fragment")
    netloc, slash, path = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    user = password = None
    if at:
        raw_user, colon, raw_password = userinfo.partition(":")
        user = unquote(raw_user) or None
        password = unquote(raw_password) if colon else None
        if user is None or (colon and not password):
            raise ForApprise("credentials Apprise reads its own way")
    host, colon, port_text = hostport.partition(":")
    port = None
    if colon:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ForApprise("a port Apprise reads its own way")
        port = int(port_text)
    if not host:
        raise ForApprise("no host")
    path = slash + path
    if not _PATH.fullmatch(path):
        raise ForApprise("a path with characters Apprise quotes its own way")
    return _Url(scheme, user, password, host, port, path, _query(query))


def _query(query: str) -> dict[str, str]:
    """Apprise's reading of a query (``parse_qsd``): ``&`` or ``;`` between pairs, no
    ``+`` for space in values, values stripped; plain keys lower-cased, ``+``/``-``/``:``
    keys kept as written. A key given twice is left to Apprise."""
    found: dict[str, str] = {}
    for pair in (p for part in query.split("&") for p in part.split(";")):
        if not pair:
            continue
        raw_key, _, raw_value = pair.partition("=")
        key = unquote(raw_key[:1] + raw_key[1:].replace("+", " "))
        if key[:1] in ("+", "-", ":"):
            key = key[:1] + key[1:].strip()
            if not key[1:] or key[1:] != key[1:].strip() or " " in key:
                raise ForApprise("a custom key Apprise reads its own way")
        else:
            key = key.strip().lower()
        if key in found or not key:
            raise ForApprise("a repeated or empty URL parameter")
        value = unquote(raw_value).strip()
        # the json:// plugin unquotes its custom keys' values once more
        found[key] = unquote(value) if key[0] in ("+", "-", ":") else value
    return found


def _hostname(host: str) -> bool:
    """Apprise's hostname test, less its underscores (a host with one is left to it)."""
    return bool(_IPV4.fullmatch(host) or all(_LABEL.fullmatch(x) for x in host.split(".")))


# ------------------------------------------------------------------ json://


def _json_post(url: _Url, title: str, body: str, notify_type: str) -> Post:
    if not _hostname(url.host):
        raise ForApprise("a host Apprise reads its own way")
    method = "POST"
    headers: dict[str, tuple[str, str]] = {}
    params: dict[str, str] = {}
    extras: dict[str, str] = {}
    for key, value in url.query.items():
        if key == "method":
            method = value.upper()
            if method not in _JSON_METHODS:
                raise ForApprise("a method left to Apprise")
        elif key[0] == "+":
            headers[key[1:].lower()] = (key[1:], value)
        elif key[0] == "-":
            params[key[1:]] = value
        elif key[0] == ":":
            extras[key[1:]] = value
        else:
            raise ForApprise(f"the json:// parameter {key!r}")
    payload: dict[str, object] = {
        "version": "1.0",
        "title": title,
        "message": body,
        "attachments": [],
        "type": notify_type,
    }
    for key, value in extras.items():  # Apprise's rule: rename, drop (empty) or add
        if key in payload:
            if value:
                payload[value] = payload[key]
            del payload[key]
        else:
            payload[key] = value
    if url.user is not None and url.password is None:
        raise ForApprise("a user without a password")  # requests would send "user:None"
    merged = {"user-agent": ("User-Agent", USER_AGENT)}
    merged["content-type"] = ("Content-Type", "application/json")
    merged.update(headers)
    if url.user is not None and url.password is not None:  # set last, as requests does
        merged["authorization"] = ("Authorization", _basic(url.user, url.password))
    target = (url.path or "/") + (f"?{urlencode(params)}" if params else "")
    secure = url.scheme == "jsons"
    return Post(
        secure=secure,
        host=url.host,
        port=url.port or (443 if secure else 80),
        method=method,
        target=target,
        headers=tuple(merged.values()),
        body=json.dumps(payload).encode(),
    )


# ------------------------------------------------------------------ ntfy://


def _ntfy_posts(url: _Url, title: str, body: str, notify_type: str) -> list[Post]:
    q = url.query
    unknown = set(q) - _NTFY_KEYS
    if unknown:
        raise ForApprise(f"the ntfy:// parameter {sorted(unknown)[0]!r}")
    topics = [t for t in url.path.split("/") if t]
    private = bool(topics)  # Apprise: a hostname and topics; else ntfy.sh, the host a topic
    if private and not _hostname(url.host):
        raise ForApprise("a host Apprise reads its own way")
    if not private and not re.search(r"ntfy\.sh", url.host, re.IGNORECASE):
        topics.insert(0, url.host)
    if not topics or not all(_TOPIC.fullmatch(t) for t in topics):
        raise ForApprise("a topic Apprise would leave out")
    secure = url.scheme == "ntfys" or not private
    host = url.host if private else "ntfy.sh"
    port = (url.port if private else None) or (443 if secure else 80)
    headers = [("User-Agent", USER_AGENT)]
    if private:
        token = q.get("token")
        if token:
            headers.append(("Authorization", f"Bearer {token}"))
        elif url.user is not None and url.password is None:
            if not re.match(r"tk_[^ \t]+", url.user, re.IGNORECASE):
                raise ForApprise("a user without a password")
            headers.append(("Authorization", f"Bearer {url.user}"))
        elif url.user is not None and url.password is not None:
            headers.append(("Authorization", _basic(url.user, url.password)))
    headers.append(("Content-Type", "application/json"))
    image = q.get("image", "yes").lower()
    if image[:2] not in _TRUE and image[:2] not in _FALSE:
        raise ForApprise("an image= Apprise reads its own way")
    if image[:2] in _TRUE:
        headers.append(("X-Icon", ICON.format(type=notify_type)))
    priority = q.get("priority", "").lower()
    level = next((w for k, w in _NTFY_PRIORITY if priority.startswith(k)), "default")
    if priority and level != "default":
        headers.append(("X-Priority", level))
    if q.get("delay"):
        headers.append(("X-Delay", q["delay"]))
    click = unquote(q["click"]) if q.get("click") else None
    if click is not None:
        if any(ord(c) > 127 for c in click):
            click = quote(click, safe=":/?&=[]")
        headers.append(("X-Click", quote(click, safe=":/?@&=#")))
    if q.get("email"):
        headers.append(("X-Email", q["email"]))
    tags = q.get("xtags") or q.get("tags") or ""
    words = sorted({w for w in re.split(r"[\[\]\;,\s]+", tags) if w})
    if words:
        headers.append(("X-Tags", ",".join(words)))
    posts = []
    for topic in reversed(topics):  # Apprise pops them from the end
        data: dict[str, str] = {"topic": topic}
        if title:
            data["title"] = title
        data["message"] = body
        text = json.dumps(data)
        if len(text) > NTFY_JSON_LIMIT:
            raise ForApprise("a message Apprise sends to ntfy as an attachment")
        posts.append(Post(secure, host, port, "POST", "/", tuple(headers), text.encode()))
    return posts


def _basic(user: str, password: str) -> str:
    """HTTP basic credentials as ``requests`` writes them (latin-1; else UTF-8)."""
    raw = f"{user}:{password}"
    try:
        encoded = raw.encode("latin-1")
    except UnicodeEncodeError:
        encoded = raw.encode()
    return "Basic " + b64encode(encoded).decode()


# ------------------------------------------------------------------ the wire


def _proxied() -> bool:
    """``requests`` sends through a proxy named in the environment: leave those to it."""
    return any(os.environ.get(n) or os.environ.get(n.upper()) for n in _PROXIES)


def _ca_bundle() -> str | None:
    """The certificates ``requests`` verifies with when the environment names them (else
    its own bundle, ``certifi``; here the system's, which is the same list on Debian)."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None


def _exchange(post: Post) -> tuple[int, str]:
    """Send ``post`` on a connection of its own; the status code and reason. ``OSError``
    (``ssl.SSLError`` and ``TimeoutError`` among them) when it could not be done."""
    host_header = (
        post.host if post.port == (443 if post.secure else 80) else (f"{post.host}:{post.port}")
    )
    head = [f"{post.method} {post.target} HTTP/1.1", f"Host: {host_header}"]
    head += [f"{name}: {value}" for name, value in post.headers]
    head += ["Accept: */*", f"Content-Length: {len(post.body)}", "Connection: close", "", ""]
    request = "\r\n".join(head).encode("latin-1", "replace") + post.body
    with _connect(post.host, post.port) as raw:
        sock = raw
        if post.secure:
            import ssl  # only for https: ~4 MB the plain-http notifier does without

            context = ssl.create_default_context(cafile=_ca_bundle())
            sock = context.wrap_socket(raw, server_hostname=post.host)
        with sock:
            sock.sendall(request)
            return _status(sock)


def _addresses(host: str, port: int) -> list[Address]:
    """``host``'s addresses, looked up within :data:`TIMEOUT_S` (else :class:`LookupTimeout`).

    ``socket.create_connection`` looks the name up with no timeout: with a resolver that
    does not answer, the system's retries held one message some 10-40 s, and the round's
    other messages behind it. The lookup runs on a daemon thread that is waited for at most
    the timeout; one left running ends when the system gives up, and meanwhile serves any
    other message to the same server."""
    key = (host, port)
    with _lookups_lock:
        lookup = _lookups.get(key)
        if lookup is None:
            lookup = _lookups[key] = _Lookup()
            threading.Thread(
                target=_look_up, args=(key, lookup), name="notify-lookup", daemon=True
            ).start()
    if not lookup.done.wait(TIMEOUT_S):
        raise LookupTimeout(f"name lookup for {host} took longer than {TIMEOUT_S:g} s")
    if lookup.error is not None:
        raise lookup.error
    return lookup.addresses


def _look_up(key: tuple[str, int], lookup: _Lookup) -> None:
    try:
        lookup.addresses = resolve(*key)
    except OSError as exc:  # socket.gaierror: not found, or the resolver failed
        lookup.error = exc
    except Exception as exc:  # UnicodeError for a name IDNA refuses: a failure all the same
        lookup.error = OSError(f"{type(exc).__name__}: {exc}")
    finally:
        with _lookups_lock:
            _lookups.pop(key, None)
        lookup.done.set()


def _connect(host: str, port: int) -> socket.socket:
    """``socket.create_connection`` with the name lookup bounded too (:func:`_addresses`):
    each address in turn, each connect within :data:`TIMEOUT_S`."""
    errors: list[OSError] = []
    for family, kind, proto, _, address in _addresses(host, port):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(TIMEOUT_S)
            sock.connect(address)
        except OSError as exc:
            sock.close()
            errors.append(exc)
            continue
        return sock
    if errors:
        raise errors[0]
    raise OSError(f"no address found for {host}")


def _status(sock: socket.socket) -> tuple[int, str]:
    """The status line of the answer (the rest is not needed: the connection closes)."""
    data = b""
    while b"\r\n" not in data and len(data) < 8192:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    line = data.partition(b"\r\n")[0].decode("latin-1")
    version, _, rest = line.partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/") or not (code.isdigit() and len(code) == 3):
        raise ConnectionError("the server's answer is not HTTP")
    return int(code), reason


def _why(exc: OSError, post: Post) -> str:
    if isinstance(exc, LookupTimeout):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return f"{post.host} did not answer within {TIMEOUT_S:.0f} s"
    if isinstance(exc, ConnectionRefusedError):
        return f"{post.host}:{post.port} refused the connection"
    return f"{post.host}: {type(exc).__name__}: {exc}"
