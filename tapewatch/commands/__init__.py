"""The ``tapewatch`` sub-commands, one module per group; :mod:`tapewatch.cli` wires them into one app.

* :mod:`~tapewatch.commands.produce` — ``produce …``, ``fetch …``;
* :mod:`~tapewatch.commands.stream` — ``stream …``;
* :mod:`~tapewatch.commands.sink` — ``sink …``, ``alerts …``, ``kibana …``;
* :mod:`~tapewatch.commands.detect` — ``train kmeans``, ``detect …``, ``eval …``;
* :mod:`~tapewatch.commands.dqn` — ``train dqn``, ``backtest dqn``.
"""

__all__: list[str] = []
