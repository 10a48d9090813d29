"""``make chaos``: a Jepsen-style run. A load generator writes through the APIs at a steady rate
while a fault injector kill -9s service processes, restarts PostgreSQL (immediate) and Redis
(SIGKILL, append-only file); afterwards a checker compares, by id, everything accepted and
published with every store. All on a private PostgreSQL cluster and Redis server."""
