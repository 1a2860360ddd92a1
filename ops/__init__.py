"""Running the whole product on one machine: the supervisor behind ``tapewatch run`` (:mod:`tapewatch.ops.run`) and the
report ``make demo`` prints and writes (:mod:`tapewatch.ops.demo`)."""

__all__: list[str] = []
