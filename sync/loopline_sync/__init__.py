"""The Loopline offline-sync protocol (version 1): messages, cursors, conflict rules, client engine."""

SCHEMA_VERSION = 1
# Pushes from the previous schema version are upcast by the server; older pulls get 426.
OLDEST_PUSH_SCHEMA_VERSION = 0
MAX_MUTATIONS_PER_PUSH = 500
MAX_PUSH_BYTES = 1024 * 1024
# How deep a mutation's args may nest (an object or list inside another counts one level).
# Clients refuse deeper args at enqueue; the server rejects them per mutation. Any guard in
# front of /sync/push must let this depth plus the envelope's three levels through, or a
# queued mutation would be refused as a whole request on every resend.
MAX_ARGS_DEPTH = 32
MAX_PULL_LIMIT = 500
