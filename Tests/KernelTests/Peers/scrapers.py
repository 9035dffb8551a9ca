#!/usr/bin/env python3
"""Clients of `sockaff serve` for ServeTests, each bounded in count and time.

  scrapers.py hold PORT COUNT      open COUNT idle TCP connections to PORT and
                                   hold them (sending nothing) until stdin closes;
                                   prints {"held": N} once they are open
  scrapers.py scrape URL THREADS N THREADS threads, each scraping URL N times at
                                   once; prints {"ok": answers with status 200}
"""
import concurrent.futures
import json
import socket
import sys
import urllib.request


def hold(port, count):
    held = []
    for _ in range(count):
        try:
            held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            break
    print(json.dumps({"held": len(held)}), flush=True)
    sys.stdin.read()


def scrape(url, threads, count):
    def one(_):
        with urllib.request.urlopen(url, timeout=30) as response:
            response.read()
            return response.status == 200

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        ok = sum(pool.map(one, range(threads * count)))
    print(json.dumps({"ok": ok}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "hold":
        hold(int(sys.argv[2]), int(sys.argv[3]))
    else:
        scrape(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
