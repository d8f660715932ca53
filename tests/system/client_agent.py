"""One real Python client making one HTTPS call, as an agent would, with nothing configured for TrustFence.

``python client_agent.py CLIENT URL`` (run by a virtualenv's interpreter inside ``tf run``) makes a GET to URL
with CLIENT and prints ``ok STATUS`` or the error. Several clients deliberately ignore what ``tf run`` puts in the
environment: ``requests-no-env`` (``trust_env = False``: no proxy, no REQUESTS_CA_BUNDLE: certifi's bundle in the
venv) and ``urllib3-certifi`` (``ca_certs=certifi.where()``, and urllib3 never reads proxy variables).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


def _stripe(url: str) -> int:
    import stripe  # verifies against the bundle inside its own package

    stripe.api_key = os.environ["STRIPE_API_KEY"]
    stripe.Customer.retrieve(url.rsplit("/", 1)[1])
    return 200


def _openai(url: str) -> int:
    from openai import OpenAI

    OpenAI().models.retrieve(url.rsplit("/", 1)[1])
    return 200


def _requests(url: str) -> int:
    import requests

    return int(requests.get(url, timeout=20).status_code)


def _requests_no_env(url: str) -> int:
    import requests

    s = requests.Session()
    s.trust_env = False
    return int(s.get(url, timeout=20).status_code)


def _urllib3_certifi(url: str) -> int:
    import certifi
    import urllib3

    return int(urllib3.PoolManager(ca_certs=certifi.where()).request("GET", url, timeout=20).status)


def _httpx(url: str) -> int:
    import httpx

    return int(httpx.get(url, timeout=20).status_code)


def _aiohttp(url: str) -> int:
    import asyncio

    import aiohttp  # trust_env is off by default: no proxy variables, the transparent path

    async def get() -> int:
        async with aiohttp.ClientSession() as s, s.get(url) as r:
            return int(r.status)

    return asyncio.run(get())


CLIENTS: dict[str, Callable[[str], int]] = {
    "stripe": _stripe, "openai": _openai, "requests": _requests, "requests-no-env": _requests_no_env,
    "urllib3-certifi": _urllib3_certifi, "httpx": _httpx, "aiohttp": _aiohttp,
}

if __name__ == "__main__":
    try:
        print(f"ok {CLIENTS[sys.argv[1]](sys.argv[2])}")
    except Exception as e:  # noqa: BLE001 - the suite reads what failed
        print(f"failed {type(e).__name__}: {e}")
        sys.exit(1)
