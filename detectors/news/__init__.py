"""News for surveillance: what the symbol's news says and when, beside the alerts.

* :mod:`~detectors.news.indicator` — a symbol's news indicator: sentiment decayed in time, in [−100 %, +100 %], and
  its news count over the last hour;
* :mod:`~detectors.news.context` — the news around an alert's onset, and a run-up's score lowered when there is some.
"""
