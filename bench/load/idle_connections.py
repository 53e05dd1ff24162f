"""Opens N keep-alive HTTP/1.1 connections to 127.0.0.1:PORT, sends one request on each, reads the answer, prints
"ready" and holds them open until stdin closes. Used by footprint.sh to measure memory per idle connection."""
import asyncio
import sys


async def open_one(port: int, conns: list) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)
    conns.append(writer)


async def main(port: int, count: int) -> None:
    conns: list = []
    for start in range(0, count, 500):
        await asyncio.gather(*(open_one(port, conns) for _ in range(start, min(count, start + 500))))
    print("ready", len(conns), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for w in conns:
        w.close()


asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
