import os
import tempfile

import pytest

from tests.emulated import served_table

# The tests (and every `rig` they start) see neither this machine's results database nor
# its lab config: an empty lab config of their own, and no $TRACTION_RIG_DB.
os.environ.pop("TRACTION_RIG_DB", None)
_EMPTY_LAB = tempfile.NamedTemporaryFile("w", prefix="traction-rig-test-lab-", suffix=".yaml", delete=False)
_EMPTY_LAB.write("# no database, no keys: tests pass their own\n")
_EMPTY_LAB.close()
os.environ["TRACTION_RIG_LAB"] = _EMPTY_LAB.name


@pytest.fixture
def lumbar():
    with served_table("lumbar", seed=1, safety_limit_n=890.0) as served:
        yield served


@pytest.fixture
def cervical():
    with served_table("cervical", seed=2, safety_limit_n=222.0) as served:
        yield served


@pytest.fixture
def child_run(tmp_path):
    """Start a child `rig run` (or pytest) for this test: `child_run(argv, **options)`
    (tests/child_run.py); every child is ended at the test's end, however it ended."""
    from tests.child_run import Children

    children = Children(tmp_path)
    yield children
    children.close()


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server for this test session (tests/postgres_server.py)."""
    import os

    from tests.postgres_server import REQUIRE_ENV, PostgresServer

    try:
        server = PostgresServer().start()
    except (FileNotFoundError, RuntimeError) as exc:
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"PostgreSQL is required here (${REQUIRE_ENV}) but could not start: {exc}")
        pytest.skip(f"no PostgreSQL server: {exc}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """One empty results database per test: an SQLite file, or a database of its own on the
    session's PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.sqlite'}"
    server = request.getfixturevalue("postgres_server")
    import re

    name = re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:50]
    return server.create_database(name)


#: the fixture of the shared nominal run (tests/main_run.py)
NOMINAL_RUN = "nominal_lumbar_run"


def _reads_nominal_run(item) -> bool:
    return NOMINAL_RUN in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config, items):
    """The tests that read the shared nominal run go last (in their order): it started with
    the session and ran beside the others, so by then it has ended."""
    items.sort(key=_reads_nominal_run)


@pytest.fixture(scope="session", autouse=True)
def nominal_run_started(request, tmp_path_factory):
    """Starts the shared nominal run with the session when a selected test reads it (none
    else: nothing is started for a session that does not need it); ended with the session."""
    if not any(_reads_nominal_run(item) for item in request.session.items):
        yield None
        return
    from tests.main_run import NominalRunStarted

    started = NominalRunStarted(tmp_path_factory.mktemp("nominal-lumbar"))
    try:
        yield started
    finally:
        started.close()


@pytest.fixture
def after_nominal_run(nominal_run_started):
    """For a test that starts `rig run`s of its own: waits until the shared nominal run
    (started with the session) has ended, so their tables never share the machine with it."""
    if nominal_run_started is not None:
        nominal_run_started.wait_ended()


@pytest.fixture(scope="session")
def nominal_lumbar_run(nominal_run_started, tmp_path_factory):
    """One `rig run` of every suite against the nominal emulated lumbar table (report and
    results database included), shared by the tests that read a complete nominal run
    (tests/main_run.py says why): a tests/main_run.NominalRun. Read it, never change it;
    a test that needs to alter the run works on a copy."""
    if nominal_run_started is not None:
        return nominal_run_started.result()
    from tests.main_run import NominalRunStarted  # asked for by name only (getfixturevalue)

    started = NominalRunStarted(tmp_path_factory.mktemp("nominal-lumbar"))
    try:
        return started.result()
    finally:
        started.close()


@pytest.fixture
def fixed_modbus():
    """A plain pymodbus TCP server (127.0.0.1, an ephemeral port) per SimDevice given:
    `serve(device)` returns its port; every server is shut down after the test."""
    from pymodbus.server import ModbusTcpServer

    from tests.emulated import LoopThread

    loop = LoopThread()
    servers = []

    def serve(device) -> int:
        async def go():
            server = ModbusTcpServer([device], address=("127.0.0.1", 0))
            await server.serve_forever(background=True)
            servers.append(server)
            return server.transport.sockets[0].getsockname()[1]

        return loop.run(go())

    yield serve
    for server in servers:
        loop.run(server.shutdown())
    loop.stop()
