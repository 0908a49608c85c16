"""collect: articles from every ``[[sources]]`` entry (file and network I/O).

Package map (README "Package map"): ``collect -> store -> syndicate / compose -> deliver``.
This package may import compose, store, config and the base (models, clock, files,
errors); not syndicate or deliver, and nothing above (app, services, web, ops).

- ``registry``: ``[[sources]] type`` -> collector; what a collector returns (``Collected``);
- ``markdown``: a folder of ``*.md`` files with YAML front matter;
- ``feed``: remote RSS 0.9x/1.0/2.0, Atom and JSON Feed, parsed and sanitized;
- ``fetch``: HTTP with the SSRF guard, conditional GET, size and time caps.
"""
