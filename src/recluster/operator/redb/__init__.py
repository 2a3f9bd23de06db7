"""The REDB controller: pure mapping, secret and status builders, the reconciler and its loop."""
