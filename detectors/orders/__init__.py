"""Order-level surveillance: a symbol's book built from its market-by-order events, and what each resting order did
(placed, modified, filled, cancelled) from the moment it rested to the moment it left.

* :mod:`tapewatch.detectors.orders.book` — the book from orders: price-time queues, the venue's sequence checked by
  its stated policy, and each order's lifecycle until it leaves the book;
* :mod:`tapewatch.detectors.orders.level2` — the level-2 books and trades derived from it, which every detector of
  the trade-and-book path takes unchanged;
* :mod:`tapewatch.detectors.orders.usual_size` — what size a symbol's orders usually are;
* :mod:`tapewatch.detectors.orders.firm_spoofing`, :mod:`tapewatch.detectors.orders.firm_wash`,
  :mod:`tapewatch.detectors.orders.firm_messages`, :mod:`tapewatch.detectors.orders.firm_ramp` — spoofing cycles, wash
  prints, quote-stuffing bursts, and pumps or closes driven, by account from a firm's drop copy;
  :mod:`tapewatch.detectors.orders.owners` says whose an account's trading is;
* :mod:`tapewatch.detectors.orders.placements`, :mod:`tapewatch.detectors.orders.public_tape` — what the public feed
  tells the firm's detectors: each new order's share of the book, and the symbol's trades as of a time.

The package re-exports nothing: import the module you need.
"""

__all__: list[str] = []
