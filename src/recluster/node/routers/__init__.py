"""REST routers, one concern each. Handlers parse and delegate; they hold no cluster logic."""
