"""Redis ACL rules as the cluster keeps them (a named `redis_acl` such as `+@read ~*`), checked before
they are stored, and composed into one user's `ACL SETUSER` arguments. Pure.

A rule names what a user may run and touch: commands (`+get`, `-flushall`, `+config|get`), command
categories (`+@read`, `-@dangerous`), key patterns (`~cache:*`, `%R~*`, `%W~tmp:*`, `allkeys`,
`resetkeys`) and Pub/Sub channel patterns (`&news.*`, `allchannels`, `resetchannels`). Who the user
is (`on`/`off`, passwords, `reset`, `nopass`) is the cluster's business, so those tokens are refused
in a rule, as are selectors (a user's several roles become selectors, see `compose`).
"""

from __future__ import annotations

import re

# `ACL CAT` of Redis 7.0 and 7.2
CATEGORIES = frozenset({
    "all", "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap",
    "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking", "dangerous",
    "connection", "transaction", "scripting",
})
FLAG_TOKENS = frozenset({"allkeys", "resetkeys", "allchannels", "resetchannels", "allcommands", "nocommands"})
IDENTITY_TOKENS = frozenset({"on", "off", "nopass", "resetpass", "reset", "clearselectors",
                             "skip-sanitize-payload", "sanitize-payload"})
MAX_RULE_LENGTH = 4096
_COMMAND = re.compile(r"[a-z][a-z0-9_.-]{0,63}(\|[a-z][a-z0-9_.-]{0,63})?")
_KEY_PATTERN = re.compile(r"(~|%R~|%W~|%RW~)(\S+)")


def rule_problem(rule: str) -> str | None:
    """Why `rule` cannot be a cluster's Redis ACL, or None when it can."""
    if not rule.strip():
        return "must hold at least one rule, for example '+@read ~*'"
    if len(rule) > MAX_RULE_LENGTH:
        return f"must be at most {MAX_RULE_LENGTH} characters"
    if any((ord(c) < 0x21 and c != " ") or ord(c) == 0x7F for c in rule):
        return "must be printable rules separated by spaces (no tabs, newlines or control characters)"
    for token in rule.split():
        problem = _token_problem(token)
        if problem:
            return f"'{token}': {problem}"
    return None


def _token_problem(token: str) -> str | None:
    lowered = token.lower()
    if lowered in FLAG_TOKENS:
        return None
    if lowered in IDENTITY_TOKENS or token[0] in "><#!":
        return ("who a user is (on/off, passwords, reset) is set by the cluster from its users: a rule "
                "names only commands, categories, keys and channels")
    if token[0] == "(":
        return "selectors are not accepted in a rule (a user's several roles become selectors)"
    if token[0] in "+-":
        name = token[1:]
        if name.startswith("@"):
            if name[1:].lower() not in CATEGORIES:
                return f"unknown command category (one of {', '.join(sorted(CATEGORIES))})"
            return None
        if not _COMMAND.fullmatch(name.lower()):
            return "a command is a name such as 'get' or 'config|get'"
        return None
    if token[0] == "&":
        return None if len(token) > 1 else "a channel pattern follows '&', for example '&news.*'"
    if token[0] in "~%":
        match = _KEY_PATTERN.fullmatch(token)
        return None if match else "a key pattern is '~pattern', '%R~pattern', '%W~pattern' or '%RW~pattern'"
    return ("not a rule: commands (+get, -@dangerous), keys (~pattern), channels (&pattern) or "
            "allkeys/allchannels/allcommands/nocommands/resetkeys/resetchannels")


def compose(rules: list[str]) -> list[str]:
    """One user's permission arguments from the rules of its roles on one database: the first rule
    is the root permissions, each further one a selector, so the user may do what any one of its
    roles allows, never a mix of one role's commands with another's keys (what joining the rules
    would give). Identical rules count once."""
    unique = list(dict.fromkeys(" ".join(rule.split()) for rule in rules))
    if not unique:
        return []
    return [*unique[0].split(), *(f"({rule})" for rule in unique[1:])]
