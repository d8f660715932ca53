"""Sandboxes: a network namespace, a veth pair, host-namespace nftables rules and a cgroup per agent run
(``manager``); the agent's own PID and mount namespaces, Landlock rules and uid (``view``, ``landlock``,
``privs``, ``uids``), built by its init (``trustfence.agent.spawn``).

Nothing is imported here: ``tf run`` imports the modules the agent's start needs, and no more.
"""
