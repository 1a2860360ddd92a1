"""The evaluation: the detectors' alerts judged against labelled episodes and on real tapes.

* :mod:`tapewatch.evaluation.lookback` — the stream's detection over a file (``tapewatch detect file``);
* :mod:`tapewatch.evaluation.judge` — alerts scored against labelled episodes (precision, recall, delay);
* :mod:`tapewatch.evaluation.matrix` — simulate → detect → score over feed profiles × seeds;
* :mod:`tapewatch.evaluation.scorecard` — both generators, feed shapes, look-alikes and real tapes in one table;
* :mod:`tapewatch.evaluation.lookalikes`, :mod:`tapewatch.evaluation.news_effect`,
  :mod:`tapewatch.evaluation.real_tapes` — look-alike alerts, the news context's effect, real tapes;
* :mod:`tapewatch.evaluation.news_refs` — news items from a file as the alerts cite them;
* :mod:`tapewatch.evaluation.paper_report` — the paper trader's report;
* :mod:`tapewatch.evaluation.reporting` — markdown tables and charts every report shares.
"""

__all__: list[str] = []
