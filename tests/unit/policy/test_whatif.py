"""What-if over recorded requests, and least-privilege suggestions: plain values in, plain values out."""

from __future__ import annotations

from trustfence.policy import Catalogue, Facts, Permission, Policy, compile_policy
from trustfence.policy.conditions import Rule
from trustfence.policy.whatif import simulate, suggest

GITHUB = Catalogue(frozenset({"github.pr.list", "github.pr.read", "github.pr.merge", "github.pr.comment.list",
                              "github.issue.create", "github.issue.read"}))
MCP = Catalogue(frozenset({"mcp.initialize"}), frozenset({"mcp.tools."}))


def facts(action: str, minute: int = 600, connector: str = "github") -> Facts:
    return Facts("Bot", connector, action, "", "GET", "api.github.com", "/x", {}, frozenset(), "", minute)


def test_simulate_counts_each_move_with_examples_and_leaves_the_rest_unchanged() -> None:
    now = compile_policy((Permission("Bot", "github", "github.pr.*", "allow"),))
    then = compile_policy((Permission("Bot", "github", "github.pr.*", "allow"),
                           Permission("Bot", "github", "github.pr.merge", "require_approval")),
                          (Policy(id="night", actions=("github.pr.read",), decision="deny", reason="not at night",
                                  when=Rule("time_of_day", "gte", "22:00")),))
    r = simulate(now, then, [(facts("github.pr.list"), 7, {"action": "github.pr.list"}),
                             (facts("github.pr.merge"), 2, {"action": "github.pr.merge"}),
                             (facts("github.pr.read", minute=23 * 60), 3, {"action": "github.pr.read"}),
                             (facts("github.pr.read", minute=9 * 60), 4, {"action": "github.pr.read"}),
                             (facts("github.issue.create"), 1, {"action": "github.issue.create"})])
    assert (r.requests, r.unchanged) == (17, 12)
    assert [(c.before, c.after, c.count) for c in r.changes] == [("allow", "deny", 3),
                                                                ("allow", "require_approval", 2)]
    [example] = r.changes[0].examples
    assert example["count"] == 3 and "night" in example["then"] and example["now"]


def test_suggest_is_exact_unless_a_whole_prefix_was_seen_and_never_star() -> None:
    seen = {"github": {"github.pr.list", "github.pr.read", "github.pr.merge", "github.pr.comment.list",
                       "github.issue.read", "github.nope.x"},
            "mcp": {"mcp.tools.search", "mcp.tools.fetch"}, "gone": {"gone.thing.get"}}
    perms = suggest("Bot", seen, {"github": GITHUB, "mcp": MCP})
    assert [(p.connector, p.action, p.decision) for p in perms] == [
        ("github", "github.issue.read", "allow"),  # issue.create was not seen: no github.issue.*
        ("github", "github.pr.*", "allow"),  # every github.pr action, github.pr.comment.list included, was seen
        ("mcp", "mcp.tools.fetch", "allow"),  # tools are open-ended: never grouped
        ("mcp", "mcp.tools.search", "allow")]
    assert all(p.gateway == "Bot" and p.action != "*" for p in perms)
    partial = suggest("Bot", {"github": {"github.pr.list", "github.pr.read"}}, {"github": GITHUB})
    assert [p.action for p in partial] == ["github.pr.list", "github.pr.read"]
