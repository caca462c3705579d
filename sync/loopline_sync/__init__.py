"""The Loopline offline-sync protocol (version 1): messages, cursors, conflict rules, client engine."""

SCHEMA_VERSION = 1
# Pushes from the previous schema version are upcast by the server; older pulls get 426.
OLDEST_PUSH_SCHEMA_VERSION = 0
MAX_MUTATIONS_PER_PUSH = 500
MAX_PUSH_BYTES = 1024 * 1024
MAX_PULL_LIMIT = 500
