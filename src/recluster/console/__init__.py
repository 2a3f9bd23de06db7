"""The web console: served by every node daemon on its console port (8443), HTTPS with the node's
certificate, talking to the node's own REST API in-process with the logged-in user's credentials."""
