"""``retroguard caregiver config --check`` refuses exactly what the service's start refuses.

Through the real command line (:func:`launcher.cli.main`), on real files. The start is run up
to where it would build the service (open the database, reach the broker):
:class:`caregiver.service.CaregiverService` is replaced by a stand-in that only records that it
was reached, so a config the start failed to refuse ends the test instead of serving forever.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

import caregiver.service
from caregiver.config import CaregiverConfig, load_config
from launcher.cli import main
from tools.broker import free_port


@pytest.fixture
def reached(monkeypatch: pytest.MonkeyPatch) -> list[CaregiverConfig]:
    """The configs the start built the service with: :class:`caregiver.service.
    CaregiverService` is replaced by a stand-in that records its config and serves nothing
    (the real one would open the database and reach the broker there)."""
    configs: list[CaregiverConfig] = []

    class Reached:
        def __init__(self, config: CaregiverConfig) -> None:
            configs.append(config)

        def serve_forever(self) -> None:
            return None

    monkeypatch.setattr(caregiver.service, "CaregiverService", Reached)
    return configs


def _write(path: Path, sections: dict[str, str] | str, port: int) -> None:
    """A config of ``sections`` (each its lines) over a database in ``path``'s folder and a
    broker on ``port``: a key the case sets replaces the default one. A str is the file."""
    if isinstance(sections, str):
        path.write_text(sections)
        return
    defaults = {
        "server": 'database = "state/caregiver.db"',
        "mqtt": f'host = "127.0.0.1"\nport = {port}',
    }
    text = []
    for name in dict.fromkeys([*defaults, *sections]):
        lines = sections.get(name, "").splitlines()
        keys = {line.partition("=")[0].strip() for line in lines}
        kept = [
            d
            for d in defaults.get(name, "").splitlines()
            if d.partition("=")[0].strip() not in keys
        ]
        header = f"[[{name}]]" if name == "contacts" else f"[{name}]"
        text.append("\n".join([header, *kept, *lines]))
    path.write_text("\n".join(text) + "\n")


BAD = [
    pytest.param(
        {"server": "prot = 8080"},
        "{c}: server.prot: unknown key (did you mean 'port'?)",
        id="unknown key",
    ),
    pytest.param(
        {"server": 'port = "8080"'},
        "{c}: server.port: must be a whole number, not str '8080'",
        id="type",
    ),
    pytest.param(
        {"escalation": "retry_s = 0"}, "{c}: escalation.retry_s: must be greater than 0", id="range"
    ),
    pytest.param(
        {"policy": "reset_grace_s = 1e12"},
        "{c}: policy.reset_grace_s: must be between 0 and 3600 s: a stumble the walker has not "
        "reset within an hour pages",
        id="grace longer than an hour",
    ),
    pytest.param(
        {"policy": 'fall = "log"'},
        "{c}: policy.fall: must be 'page': falls and no-recovery alerts always page",
        id="policy",
    ),
    pytest.param(
        {"contacts": 'name = "Ann"'},
        "{c}: contacts[0].urls: give at least one Apprise URL",
        id="contact without URL",
    ),
    pytest.param(
        {"mqtt": f'username = "{"c" * 65}"'},
        "{c}: mqtt.username: at most 64 characters, not 65: the devices refuse receipts "
        "signed with a longer name",
        id="account name longer than a receipt's",
    ),
    pytest.param(
        {"mqtt": f'client_id = "{"c" * 65}"'},
        "{c}: mqtt.client_id: at most 64 characters, not 65",
        id="client id longer than a receipt's",
    ),
    pytest.param(
        {"mqtt": 'username = "care+giver"'},
        "{c}: mqtt.username: 'care+giver' cannot name this service's topics: it must be one "
        "topic level: not empty, no '/', '+', '#' or surrounding spaces. It is one level of its "
        "health topic (<prefix>/caregiver/health/<name>) and of its Home Assistant discovery "
        "topic, which the broker's ACL lets only the account of that name write",
        id="account name no topic level can carry",
    ),
    pytest.param(
        {"mqtt": 'client_id = "retroguard/caregiver"'},
        "{c}: mqtt.client_id: 'retroguard/caregiver' cannot name this service's topics: it "
        "must be one topic level",
        id="client id, the name without an account, no topic level can carry",
    ),
    pytest.param(
        {"mqtt": 'password_file = "pw"'},
        "{c}: mqtt.password_file: set, but mqtt.username is empty: a password is sent only "
        "with a user name, so it would be ignored (set mqtt.username, or remove "
        "mqtt.password_file)",
        id="password without user",
    ),
    pytest.param(
        {"mqtt": 'username = "caregiver"\npassword_file = "missing"'},
        "{c}: mqtt.password_file: cannot read {d}/missing: No such file or directory",
        id="password file missing",
    ),
    pytest.param(
        {"mqtt": 'username = "caregiver"\npassword_file = "latin1"'},
        "{c}: mqtt.password_file: {d}/latin1: byte 3 is not UTF-8 (save it as UTF-8 text)",
        id="password file not UTF-8",
    ),
    pytest.param(
        {"mqtt": 'username = "caregiver"\npassword_file = "."'},
        "{c}: mqtt.password_file: cannot read {d}: Is a directory",
        id="password file a directory",
    ),
    pytest.param(
        {"mqtt": 'tls = true\nca_file = "ca.pem"'},
        "{c}: mqtt.ca_file: no such file: {d}/ca.pem",
        id="CA missing",
    ),
    pytest.param(
        {"mqtt": 'tls = true\ncert_file = "client.pem"'},
        "{c}: mqtt.cert_file: no such file: {d}/client.pem",
        id="cert missing",
    ),
    pytest.param(
        {"mqtt": 'tls = true\nca_file = "latin1"'},
        "{c}: mqtt: TLS setup failed: ",  # then OpenSSL's words, which vary by version
        id="CA not a certificate",
    ),
    pytest.param(
        {"server": 'database = "postgresql://care@db:port/rg"'},
        "{c}: server.database: not a valid postgresql:// URL",
        id="database URL unparsable",
    ),
    pytest.param(
        {"server": 'database = "mysql://care@db/rg"'},
        "{c}: server.database: mysql:// databases are not supported",
        id="mysql",
    ),
    pytest.param(
        {"server": 'database = "/etc/retroguard/caregiver.db"'},
        "{c}: server.database: /etc/retroguard/caregiver.db is in /etc, which the service "
        "can never write",
        id="database in /etc",
    ),
    pytest.param(
        {"server": 'database = "latin1"'},
        "retroguard caregiver: [server] database: {d}/latin1: not a RetroGuard database "
        "(not an SQLite database file at all)",
        id="database not SQLite",
    ),
    pytest.param("[server\n", "{c}: not valid TOML: ", id="not TOML"),
]


@pytest.mark.parametrize(("sections", "says"), BAD)
def test_the_check_refuses_what_the_start_refuses_in_the_same_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    reached: list[CaregiverConfig],
    sections: dict[str, str] | str,
    says: str,
) -> None:
    """Each bad config: ``config --check`` and the start both exit 2 with the one same line on
    stderr, and neither creates the database. Before, an unreadable password file or a
    missing TLS file passed the start's checks: ingest's start found it, after the database
    was created, with a traceback and exit status 1 (the unit restarted it every 2 s)."""
    (tmp_path / "latin1").write_bytes(b"caf\xe9\n")
    config = tmp_path / "caregiver.toml"
    _write(config, sections, free_port())
    line = says.format(c=config, d=tmp_path)
    capsys.readouterr()

    assert main(["caregiver", "config", "--check", str(config)]) == 2
    checked = capsys.readouterr()
    assert main(["caregiver", "-c", str(config)]) == 2
    started = capsys.readouterr()

    assert reached == []  # the start refused it before building the service
    (said,) = checked.err.splitlines()
    assert said.startswith(line)
    assert started.err == checked.err
    assert checked.out == started.out == ""
    assert not (tmp_path / "state").exists()


def _good(tmp_path: Path, port: int) -> Path:
    (tmp_path / "mqtt-password").write_text("s3cret\n")
    config = tmp_path / "caregiver.toml"
    _write(
        config,
        {
            "mqtt": 'username = "caregiver"\npassword_file = "mqtt-password"',
            "contacts": 'name = "Ann"\nurls = ["ntfy://ntfy.sh/ann-retroguard"]',
        },
        port,
    )
    return config


def test_a_good_config_passes_and_nothing_is_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], reached: list[CaregiverConfig]
) -> None:
    """ "FILE: OK" as the monitor's check says it, no warning, and no file made: not the
    database, not its folder (the start would make both)."""
    config = _good(tmp_path, free_port())
    before = sorted(tmp_path.rglob("*"))
    capsys.readouterr()
    assert main(["caregiver", "config", "--check", str(config)]) == 0
    out, err = capsys.readouterr()
    assert (out, err) == (f"{config}: OK\n", "")
    assert sorted(tmp_path.rglob("*")) == before
    assert not (tmp_path / "state" / "caregiver.db").exists()
    # -c names the file as for every other caregiver command, before or after the subcommand
    for argv in (
        ["-c", str(config), "config", "--check"],
        ["config", "-c", str(config), "--check"],
    ):
        assert main(["caregiver", *argv]) == 0
        assert capsys.readouterr() == (f"{config}: OK\n", "")
    # the start takes it as the check did, and goes on to the service
    assert main(["caregiver", "-c", str(config)]) == 0
    assert reached == [load_config(config)]


def test_config_without_check_says_what_to_give(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["caregiver", "config"]) == 2
    assert capsys.readouterr().err == "retroguard caregiver config: give --check [FILE]\n"


@pytest.fixture
def listening() -> Iterator[list[socket.socket]]:
    """Two listening sockets on loopback, standing for the broker and a PostgreSQL server."""
    sockets = []
    for _ in range(2):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.setblocking(False)
        sockets.append(sock)
    yield sockets
    for sock in sockets:
        sock.close()


def _knocked(sock: socket.socket) -> bool:
    try:
        peer, _ = sock.accept()
    except BlockingIOError:
        return False
    peer.close()
    return True


def test_the_check_reaches_no_broker_and_no_database_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], listening: list[socket.socket]
) -> None:
    """A broker and a PostgreSQL server that both listen: the check connects to neither (a
    connection made would wait in the socket's backlog, accepted here after the check)."""
    broker, postgres = (sock.getsockname()[1] for sock in listening)
    config = _good(tmp_path, broker)
    text = config.read_text().replace(
        'database = "state/caregiver.db"', f'database = "postgresql://care@127.0.0.1:{postgres}/rg"'
    )
    config.write_text(text)
    assert main(["caregiver", "config", "--check", str(config)]) == 0
    assert capsys.readouterr().out == f"{config}: OK\n"
    assert not _knocked(listening[0]) and not _knocked(listening[1])


def test_the_check_prints_the_warnings_the_start_logs(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    reached: list[CaregiverConfig],
) -> None:
    """No contacts (nobody is paged), a shared group on a SQLite database and an account whose
    ``.`` Home Assistant's discovery ignores (its topics and the ACL take it, as a device id's):
    the start goes on and logs each; the check passes and prints the same words."""
    config = tmp_path / "caregiver.toml"
    _write(config, {"mqtt": 'shared_group = "clinic"\nusername = "caregiver.b"'}, free_port())
    warnings = [
        f"{config}: no [[contacts]] configured: alerts are shown on the dashboard only",
        f"{config}: [mqtt] shared_group is set but the database is a SQLite file: the instances "
        "of a group need one postgresql:// database to share (docs/provider.md)",
        f"{config}: mqtt.username: Home Assistant ignores a discovery topic whose id has "
        "characters other than A-Z a-z 0-9 _ - ('caregiver-caregiver.b'): the service's Database "
        "sensor would not appear there; name it with those only, or set mqtt.discovery = false",
    ]
    capsys.readouterr()
    assert main(["caregiver", "config", "--check", str(config)]) == 0
    out, err = capsys.readouterr()
    assert out == f"{config}: OK\n"
    assert err.splitlines() == [f"warning: {w}" for w in warnings]
    assert main(["caregiver", "-c", str(config)]) == 0
    logged = [line.partition(" WARNING ")[2] for line in capsys.readouterr().err.splitlines()]
    assert logged == [f"caregiver.cli: {w}" for w in warnings]
    assert len(reached) == 1


@pytest.mark.parametrize(("port", "shown"), [("99999", "99999"), ("0", "0"), ("http", "'http'")])
def test_a_port_override_that_is_no_tcp_port_is_refused_before_anything_is_made(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    reached: list[CaregiverConfig],
    port: str,
    shown: str,
) -> None:
    """``--port`` is the command line's, not the config's, so the check cannot see it: argparse
    refuses it, naming the option. Before, ``type=int`` took 99999, and the service created
    its database and then died binding it, with a traceback (exit 1, restarted every 2 s)."""
    config = _good(tmp_path, free_port())
    capsys.readouterr()
    with pytest.raises(SystemExit) as refused:
        main(["caregiver", "-c", str(config), "--port", port])
    assert refused.value.code == 2
    assert f"argument --port: must be a TCP port (1-65535), not {shown}" in capsys.readouterr().err
    assert reached == []
    assert not (tmp_path / "state").exists()
    assert main(["caregiver", "-c", str(config), "--port", "8081"]) == 0
    assert [c.server.port for c in reached] == [8081]
