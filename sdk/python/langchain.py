"""LangChain: a tool whose every call is checked by TrustFence first (``langchain-core``).

    from trustfence.sdk.langchain import checked_tool
    merge = checked_tool(merge_pr, tf, "github.pr.merge", resource={"provider": "github"})

The wrapped tool has the original's name, description and arguments. A denied call raises ``ToolException``
with the reason before the original function runs; with ``on_denied="return"`` the tool returns the reason
as its output instead (LangChain's ``handle_tool_error``), so an agent can read it and change course.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from langchain_core.tools import BaseTool, StructuredTool, ToolException

from trustfence.sdk.client import Client
from trustfence.sdk.tools import ActionDenied, Check, Parameters

__all__ = ["checked_tool"]


def checked_tool(tool: BaseTool, client: Client, action_type: str, *, parameters: Parameters | None = None,
                 resource: Mapping[str, str] | None = None, on_denied: Literal["raise", "return"] = "raise",
                 approval_timeout: float = 300.0) -> BaseTool:
    """``tool``, checked: the action is asked for with the call's arguments before ``tool`` runs."""
    ask = Check(client, action_type, parameters=parameters, resource=resource, approval_timeout=approval_timeout)

    def run(**kwargs: Any) -> Any:
        try:
            ask(kwargs)
        except ActionDenied as e:
            raise ToolException(str(e)) from None
        return tool.invoke(kwargs)

    return StructuredTool.from_function(func=run, name=tool.name, description=tool.description,
                                        args_schema=tool.args_schema, handle_tool_error=on_denied == "return")
