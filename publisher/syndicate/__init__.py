"""syndicate: feeds for readers: RSS 2.0, Atom 1.0, JSON Feed 1.1, OPML and an index page.

Package map (README "Package map"): may import compose, store, config and the base; not
collect or deliver. ``model`` and ``listings`` are pure (bytes out); ``writer`` and
``websub`` do the I/O.

- ``model``: the pure feed model: articles and channel data in, feed bytes out;
- ``listings``: the OPML file and the HTML index with autodiscovery links (pure);
- ``writer``: plans every feed, rebuilds what changed, writes atomically (disk, store);
- ``websub``: pings the hub after a change (network).
"""
