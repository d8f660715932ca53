"""CrewAI: a tool whose every call is checked by TrustFence first (``crewai``).

    from trustfence.sdk.crewai import checked_tool
    merge = checked_tool(MergeTool(), tf, "github.pr.merge")

The wrapped tool has the original's name, description and argument schema. A denied call returns the reason
as the tool's output (CrewAI hands a tool's output to the agent) before the original runs; with
``on_denied="raise"`` it raises ``ActionDenied`` instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from crewai.tools import BaseTool

from trustfence.sdk.client import Client
from trustfence.sdk.tools import ActionDenied, Check, Parameters

__all__ = ["checked_tool"]


def checked_tool(tool: BaseTool, client: Client, action_type: str, *, parameters: Parameters | None = None,
                 resource: Mapping[str, str] | None = None, on_denied: Literal["raise", "return"] = "return",
                 approval_timeout: float = 300.0) -> BaseTool:
    """``tool``, checked: the action is asked for with the call's arguments before ``tool`` runs."""
    ask = Check(client, action_type, parameters=parameters, resource=resource, approval_timeout=approval_timeout)

    class Checked(BaseTool):  # type: ignore[misc]
        def _run(self, **kwargs: Any) -> Any:
            try:
                ask(kwargs)
            except ActionDenied as e:
                if on_denied == "raise":
                    raise
                return str(e)
            return tool.run(**kwargs)

    return Checked(name=tool.name, description=tool.description, args_schema=tool.args_schema)
