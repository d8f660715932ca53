"""A CrewAI tool wrapped by ``trustfence.sdk.crewai``, run for the advisory SDK test in a process of its own
(crewai lives in build/crewai, apart from the venv's pins). The tool appends each call that reaches its
function to a file; this prints what each call returned, one JSON line per call.

Usage: crewai_tool.py URL KEY RAN_FILE
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from crewai.tools import BaseTool

from trustfence.sdk import Client
from trustfence.sdk.crewai import checked_tool
from trustfence.sdk.tools import ActionDenied

url, key, ran = sys.argv[1], sys.argv[2], Path(sys.argv[3])


class ReadPR(BaseTool):  # type: ignore[misc]
    name: str = "read_pr"
    description: str = "Read a pull request."

    def _run(self, owner: str, repo: str, number: int) -> str:
        with ran.open("a") as f:
            f.write(f"read_pr {owner}/{repo}#{number}\n")
        return f"read {owner}/{repo}#{number}"


class DeleteRepo(BaseTool):  # type: ignore[misc]
    name: str = "delete_repo"
    description: str = "Delete a repository."

    def _run(self, owner: str, repo: str) -> str:
        with ran.open("a") as f:
            f.write(f"delete_repo {owner}/{repo}\n")
        return "deleted"


tf = Client(url, key)
reader = checked_tool(ReadPR(), tf, "github.pr.read")
deleter = checked_tool(DeleteRepo(), tf, "github.repo.delete")
strict = checked_tool(DeleteRepo(), tf, "github.repo.delete", on_denied="raise")
out = {"name": reader.name, "read": reader.run(owner="octo", repo="crew", number=4),
       "delete": deleter.run(owner="octo", repo="crew")}
try:
    strict.run(owner="octo", repo="crew")
    out["strict"] = "ran"
except ActionDenied as e:
    out["strict"] = f"raised: {e}"
print(json.dumps(out))
