"""Docker Compose support: discovery of a single-node stack (`hapair init`), the compose
service runtime, generated per-host compose files, round-trip edits of the user's own files,
our invariant checks, and which changes recreate a container. See docs/compose.md.

Pure modules: model, normalize, discovery, offline (reads local files only), classify,
findings, draft, generate, invariants, edits, recreate. I/O: collect (discovery commands over
a Transport) and runtime (ComposeRuntime).
"""
