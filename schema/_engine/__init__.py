"""The GraphQL engine: every use of strawberry's and graphql-core's non-public API.

Nothing outside this package imports a strawberry or graphql-core module that
is not part of their documented API (``tests/schema/test_engine_fence.py``
checks it). ``GRAPHQL_ENGINE=plain`` (``schema.limits.Limits.graphql_engine``) turns
the tuned parts off and the schema runs on strawberry's own public behaviour;
UPGRADING.md lists every internal symbol used here, which parts stay on in
both modes and why, and how to check a new strawberry version.
"""
