"""Market-by-order feeds and a firm's drop copy, read into ``md.orders`` and ``orders.firm``.

* :mod:`tapewatch.producers.orders.databento` — Databento's MBO schema, from its CSV or DBN files;
* :mod:`tapewatch.producers.orders.lobster` — LOBSTER message files (Nasdaq TotalView-ITCH, one symbol and day each);
* :mod:`tapewatch.producers.orders.fix_drop_copy` — a FIX 4.4 drop copy's execution reports;
* :mod:`tapewatch.producers.orders.unreadable` — what a line that is not a record becomes: its bytes and the reason,
  for the dead-letter topic;
* :mod:`tapewatch.producers.orders.replay` — the files onto their topics (``tapewatch produce orders``).

The package re-exports nothing: import the module you need.
"""

__all__: list[str] = []
