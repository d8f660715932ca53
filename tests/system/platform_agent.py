"""A tiny agent of a platform's shape, for ``tf run``: it sends the requests given as JSON in argv[1], each
``[method, url, header, value]`` where ``value`` names the variables it reads (``"Bearer {OPENAI_API_KEY}"``),
as that platform's SDKs would. A variable the sandbox did not set makes it fail. Debian's python3 runs it."""

import json
import os
import sys

import requests

for method, url, header, value in json.loads(sys.argv[1]):
    r = requests.request(method, url, headers={header: value.format(**os.environ)}, json={"agent": "test"},
                         timeout=20)
    print(method, url, r.status_code, r.headers.get("X-TrustFence-Decision"), flush=True)
