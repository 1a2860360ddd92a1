"""Paper trading, pure computation: signals → limit orders on the venue's grid → fills against the tape →
positions, cash and P&L under risk limits. No Kafka, no database, no CLI (``streams/trade.py`` is the worker).

* :mod:`tapewatch.execution.grid` — each venue's tick size and lot (the TWSE ladder, Binance
  ``PRICE_FILTER``/``LOT_SIZE``)
* :mod:`tapewatch.execution.accounts` — what an account trades on and its limits (settings)
* :mod:`tapewatch.execution.decisions` — a signal record (the DQN's action, a forecast) as the position it asks an
  account for
* :mod:`tapewatch.execution.queue_model` — a resting order's place in the queue and its fills from later prints
* :mod:`tapewatch.execution.exchange` — the exchange seam (:class:`~tapewatch.execution.exchange.Exchange`) and the
  paper exchange
* :mod:`tapewatch.execution.portfolio` — cash, positions, fees and taxes, P&L, the daily-loss kill switch
* :mod:`tapewatch.execution.executor` — decisions → target positions → orders, cancels, time-to-live, flat at the close
* :mod:`tapewatch.execution.merge` — the inputs in one event-time order, whatever order Kafka delivered them in
"""

__all__: list[str] = []
