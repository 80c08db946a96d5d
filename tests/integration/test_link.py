"""The framed link over real TCP sockets on loopback."""

import asyncio
import socket

from evd import framing
from evd.link import Connector, LinkError, open_link, serve

from transport_harness import wait_until


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 60))


async def stop(task, *servers):
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    for server in servers:
        server.close()
        await server.wait_closed()


async def echo_server(received):
    """A server that records messages and answers PING with PONG#<same fields>."""

    async def handler(link, opcode, fields):
        received.append((opcode, fields))
        if opcode == "PING":
            await link.send("PONG", *fields)

    async def on_link(link):
        await link.closed.wait()

    server = await serve("127.0.0.1", 0, handler, on_link, name="test")
    return server, server.sockets[0].getsockname()[1]


def test_request_reply_both_ways_with_acks():
    async def scenario():
        received = []
        server, port = await echo_server(received)
        replies = []

        async def on_link(link):
            replies.append(await link.request("PING", "a#b", "ünï", None, reply="PONG", timeout=5))
            await link.send("NOTE", "x")
            await wait_until(lambda: ("NOTE", ["x"]) in received)
            link.close()

        connector = Connector("127.0.0.1", port, lambda *a: None, on_link, name="server")
        task = asyncio.ensure_future(connector.run())
        await wait_until(lambda: len(replies) == 1 and ("NOTE", ["x"]) in received)
        await stop(task, server)
        return replies, received

    replies, received = run(scenario())
    assert replies == [["a#b", "ünï", ""]]
    assert received[0] == ("PING", ["a#b", "ünï", ""])


def raw_exchange(port, payload, read_for=1.0):
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(payload)
        sock.settimeout(read_for)
        data = b""
        try:
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            pass
        return data


def test_bad_frames_are_nacked_and_good_ones_acked_on_the_same_connection():
    async def scenario():
        received = []
        server, port = await echo_server(received)
        good = framing.encode_frame("NOTE#1")
        bad_lrc = bytearray(framing.encode_frame("NOTE#2"))
        bad_lrc[-1] ^= 0xFF
        answer = await asyncio.to_thread(raw_exchange, port, bytes(bad_lrc) + good + framing.encode_frame("NOTE#%zz"))
        server.close()
        return answer, received

    answer, received = run(scenario())
    assert answer == bytes((framing.NACK, framing.ACK, framing.NACK))
    assert received == [("NOTE", ["1"])]


def test_a_garbage_flood_is_hung_up_on_and_the_server_goes_on():
    async def scenario():
        received = []
        server, port = await echo_server(received)
        answer = await asyncio.to_thread(raw_exchange, port, b"\x00garbage" * 2000, 3.0)
        after = await asyncio.to_thread(raw_exchange, port, framing.encode_frame("NOTE#ok"))
        server.close()
        return answer, after, received

    answer, after, received = run(scenario())
    assert answer == b""  # nothing acknowledged; the connection was closed
    assert after == bytes((framing.ACK,))
    assert received == [("NOTE", ["ok"])]


def test_send_without_ack_retransmits_then_fails():
    async def scenario():
        frames = []

        async def silent(reader, writer):
            # A peer that reads frames and never answers.
            decoder = framing.Decoder()
            while chunk := await reader.read(4096):
                frames.extend(decoder.feed(chunk))
            writer.close()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        link = await open_link("127.0.0.1", port, lambda *a: None, ack_timeout=0.2, retries=2)
        try:
            await link.send("HB")
        except LinkError as e:
            error = str(e)
        await wait_until(lambda: len(frames) == 3, message="every attempt arrived")
        server.close()
        return frames, error, link.closed.is_set()

    frames, error, closed = run(scenario())
    assert frames == [framing.Frame("HB")] * 3
    assert "did not acknowledge HB" in error and closed


def test_connector_reconnects_when_the_server_comes_back():
    async def scenario():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        connections = []

        async def on_link(link):
            connections.append(link.peer)
            await link.send("HELLO")
            await link.closed.wait()

        connector = Connector("127.0.0.1", port, lambda *a: None, on_link, name="late server")
        task = asyncio.ensure_future(connector.run())
        await asyncio.sleep(0.5)  # nobody listens yet: the connector must keep trying
        received = []
        server, _ = await echo_server_on(port, received)
        await wait_until(lambda: ("HELLO", []) in received, message="first connection")
        server.close()
        for link in list(_links):
            link.close()
        await wait_until(lambda: connector.link is None, message="link dropped")
        server, _ = await echo_server_on(port, received)
        await wait_until(lambda: len(connections) == 2 and received.count(("HELLO", [])) == 2, message="reconnected")
        await stop(task, server)

    run(scenario())


_links = []


async def echo_server_on(port, received):
    async def handler(link, opcode, fields):
        received.append((opcode, fields))

    async def on_link(link):
        _links.append(link)
        await link.closed.wait()

    server = await serve("127.0.0.1", port, handler, on_link)
    return server, port


def test_messages_wait_behind_a_handler_that_is_still_sending():
    async def scenario():
        seen = []

        def handler(link, opcode, fields):
            # Synchronous for most messages; SLOW answers first, and what follows must wait for it.
            if opcode != "SLOW":
                seen.append(opcode)
                return None

            async def answer():
                await link.send("REPLY")
                seen.append("SLOW")

            return answer()

        closed = []

        def on_link(link):  # a plain callback: no task per connection
            link.when_closed(lambda link: closed.append(link.peer))

        server = await serve("127.0.0.1", 0, handler, on_link)
        port = server.sockets[0].getsockname()[1]
        client = await open_link("127.0.0.1", port, lambda link, opcode, fields: None)
        for opcode in ("A", "SLOW", "B", "C"):
            await client.send(opcode)
        await wait_until(lambda: len(seen) == 4, message="every message handled")
        client.close()
        await wait_until(lambda: closed, message="the server saw the connection close")
        server.close()
        return seen

    assert run(scenario()) == ["A", "SLOW", "B", "C"]


def test_unread_counts_what_the_peer_sent_and_we_have_not_read():
    async def scenario():
        links = []
        server = await serve("127.0.0.1", 0, lambda *a: None, lambda link: links.append(link))
        port = server.sockets[0].getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as sock:
            await wait_until(lambda: links, message="the connection")
            (link,) = links
            link.transport.pause_reading()  # a busy loop, as far as this connection can tell
            sock.sendall(framing.encode_frame("HB#OK#"))
            await wait_until(lambda: link.unread() == len(framing.encode_frame("HB#OK#")), message="bytes waiting")
            link.transport.resume_reading()
            await wait_until(lambda: link.unread() == 0, message="read at last")
        server.close()

    run(scenario())


def test_a_request_gives_up_within_its_timeout_retransmissions_included():
    async def scenario():
        async def silent(reader, writer):
            while await reader.read(4096):  # a peer that never answers, not even with an ACK
                pass
            writer.close()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        link = await open_link("127.0.0.1", port, lambda *a: None, ack_timeout=1.0, retries=3)
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            await link.request("HEALTH", reply="HEALTHR", timeout=0.3)
        except LinkError as e:
            error = str(e)
        took = loop.time() - started
        closed = link.closed.is_set()
        link.close()
        server.close()
        return error, took, closed

    error, took, closed = run(scenario())
    assert "did not acknowledge HEALTH within 0.3s" in error
    assert took < 3.0  # not four ACK timeouts (4 s)
    assert not closed  # a slow peer is not hung up on: the caller decides
