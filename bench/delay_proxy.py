"""A delay line on loopback: relays TCP connections to an upstream port, and hands each
piece of every answer to the client `delay` seconds after the upstream sent it (requests go
through at once, many connections at a time, so requests stay concurrent). It stands for
an endpoint that far away; used by bench/distance.sh.

    python3 bench/delay_proxy.py LISTEN_PORT UPSTREAM_PORT DELAY_MS
"""

import asyncio
import sys


async def pipe(reader, writer, delay):
    """Copies reader to writer, each piece `delay` seconds after it arrived, in order."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def deliver():
        while True:
            due, data = await queue.get()
            if data is None:
                break
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        writer.close()

    sender = asyncio.create_task(deliver())
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            await queue.put((loop.time() + delay, data))
    except ConnectionError:
        pass
    await queue.put((0, None))
    try:
        await sender
    except ConnectionError:
        pass


async def handle(client_reader, client_writer, upstream, delay):
    try:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", upstream)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(
        pipe(client_reader, server_writer, 0.0),
        pipe(server_reader, client_writer, delay),
        return_exceptions=True,
    )


async def main():
    listen, upstream, delay_ms = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, upstream, delay_ms / 1000.0), "127.0.0.1", listen, backlog=1024
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
