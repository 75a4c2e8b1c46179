"""agent/src/restdemo_agent/readiness.py: /ready, from the node's own view of the swarm."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest

from restdemo_agent.readiness import readiness, serve
from tests.support.net import free_port

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "swarm,role,expected",
    [
        ({"LocalNodeState": "active", "ControlAvailable": True}, "manager", (True, "active")),
        ({"LocalNodeState": "active", "ControlAvailable": False}, "manager", (False, "not a reachable manager")),
        ({"LocalNodeState": "active", "ControlAvailable": False}, "worker", (True, "active")),
        (
            {"LocalNodeState": "active", "ControlAvailable": True, "Error": "The swarm does not have a leader."},
            "manager",
            (False, "swarm error: The swarm does not have a leader."),
        ),
        ({"LocalNodeState": "pending"}, "worker", (False, "swarm state pending")),
        ({"LocalNodeState": "inactive"}, "manager", (False, "swarm state inactive")),
        ({}, "worker", (False, "swarm state unknown")),
    ],
)
def test_readiness_from_docker_info(swarm, role, expected):
    assert readiness(swarm, role) == expected


def test_ready_endpoint_answers_200_or_503_over_http():
    state = {"ready": (False, "swarm state pending")}
    port = free_port()
    server = serve(port, lambda: state["ready"])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5)
        assert refused.value.code == 503
        assert json.load(refused.value) == {"ready": False, "reason": "swarm state pending"}
        state["ready"] = (True, "active")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as answer:
            assert (answer.status, json.load(answer)) == (200, {"ready": True, "reason": "active"})
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=5)
        assert missing.value.code == 404
    finally:
        server.shutdown()


def test_recover_counts_a_manager_alive_only_when_its_agent_answers():
    """`recover`'s survivors: any HTTP answer on the readiness port (a survivor without a quorum says
    503); a port where the kernel accepts connections but nobody answers (a hung or stopped agent
    and engine), or nothing listens, is not alive. A TCP connect alone would count the hung one."""
    import socket

    from restdemo_agent.recovery import agent_answers

    without_quorum = serve(free_port(), lambda: (False, "swarm error: no leader"))
    threading.Thread(target=without_quorum.serve_forever, daemon=True).start()
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(8)  # the handshake completes in the kernel's backlog; nothing ever reads
    try:
        assert agent_answers("127.0.0.1", without_quorum.server_address[1])
        assert not agent_answers("127.0.0.1", hung.getsockname()[1], timeout=1.0)
        socket.create_connection(hung.getsockname(), timeout=1).close()  # ... yet TCP connects
        assert not agent_answers("127.0.0.1", free_port(), timeout=1.0)
    finally:
        without_quorum.shutdown()
        hung.close()


def test_idle_connections_neither_pile_up_threads_nor_starve_the_check():
    """Connections that send nothing (from anything the security group still admits) are bounded:
    at most MAX_CONNECTIONS at once, each closed after REQUEST_SECONDS; the next /ready answers
    within that bound, and the server never holds more threads."""
    import socket
    import time

    from restdemo_agent.readiness import MAX_CONNECTIONS, REQUEST_SECONDS

    server = serve(free_port(), lambda: (True, "active"))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    before = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3 * MAX_CONNECTIONS)]
    try:
        time.sleep(0.5)
        assert threading.active_count() - before <= MAX_CONNECTIONS
        started = time.monotonic()
        answered = None
        while answered is None and time.monotonic() - started < 4 * REQUEST_SECONDS:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as answer:
                    answered = answer.status
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        assert answered == 200
        assert time.monotonic() - started <= 2 * REQUEST_SECONDS + 1
    finally:
        for connection in idle:
            connection.close()
        server.shutdown()


def test_a_trickling_sender_is_cut_at_the_deadline_and_one_address_takes_few_slots():
    """A sender that keeps a connection busy a byte at a time (a read timeout never fires) is cut
    at REQUEST_SECONDS in all; one address holds at most MAX_PER_ADDRESS connections, so a check from
    another address (the load balancer's) is answered while it trickles on every slot it can get."""
    import socket
    import time

    from restdemo_agent.readiness import MAX_CONNECTIONS, MAX_PER_ADDRESS, REQUEST_SECONDS

    server = serve(free_port(), lambda: (True, "active"))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    stop = threading.Event()
    cut_after = []

    def trickle():
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            opened = time.monotonic()
            try:
                while not stop.is_set():
                    connection.sendall(b"G")
                    time.sleep(0.3)
            except OSError:  # the server shut the connection
                cut_after.append(time.monotonic() - opened)

    senders = [threading.Thread(target=trickle, daemon=True) for _ in range(MAX_CONNECTIONS)]
    for sender in senders:
        sender.start()
    try:
        time.sleep(0.5)
        checker = socket.create_connection(("127.0.0.1", port), timeout=1, source_address=("127.0.0.2", 0))
        checker.sendall(b"GET /ready HTTP/1.0\r\n\r\n")
        assert checker.recv(64).startswith(b"HTTP/1.0 200")
        checker.close()
        time.sleep(3 * REQUEST_SECONDS)
        # Every trickler was cut (the refused ones at once, the admitted ones at the deadline).
        assert len(cut_after) == MAX_CONNECTIONS
        assert sum(after > REQUEST_SECONDS / 2 for after in cut_after) <= MAX_PER_ADDRESS
        assert max(cut_after) < 2 * REQUEST_SECONDS
    finally:
        stop.set()
        server.shutdown()


def test_an_answer_that_waits_on_a_slow_engine_is_not_cut():
    """The deadline is for sending the request: `docker info` on a manager whose leader is gone may
    take longer, and the load balancer's check (and `recover`'s) must still get the answer."""
    import time

    from restdemo_agent.readiness import REQUEST_SECONDS

    def slow_probe():
        time.sleep(REQUEST_SECONDS + 0.5)
        return False, "swarm error: rpc error: code = Unknown desc = The swarm does not have a leader."

    server = serve(free_port(), slow_probe)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/ready"
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(url, timeout=3 * REQUEST_SECONDS)
        assert answer.value.code == 503
    finally:
        server.shutdown()
