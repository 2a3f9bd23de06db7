"""The services rigger: one Service set per database, and the master label on node pods."""
