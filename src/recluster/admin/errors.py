"""The admin CLI's one error: what could not be done and why, said to the user; exit status 1.
(Bad arguments are click's usage errors: they name the argument and the rule, exit status 2.)"""

from __future__ import annotations


class AdminError(Exception):
    """A command could not do its work (the cluster, the apiserver or the REST API refused or did not
    answer in time). The message is for the user: it names what failed."""
