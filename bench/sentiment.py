"""News sentiment scoring speed on one core: items per second of :meth:`SentimentModel.score`.

Run: ``tapewatch bench sentiment [--seconds 5]``. Scores every headline of the labelled set
(``training/data/news_sentiment/headlines.csv``, Chinese and English, title and summary) over and over, with the
plain lexicon model and with a classifier trained on the set's training split (not published), after loading
each once (jieba's dictionary, timed apart). One thread, nothing else running in the process. Prints numbers; not a
test.
"""

from __future__ import annotations

import argparse
import time

from tapewatch.bench.timing import items_per_second
from tapewatch.detectors.news.lexicon import builtin_lexicon
from tapewatch.detectors.news.sentiment import SentimentModel
from tapewatch.training import news_sentiment as ns


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    items = ns.load_headlines()
    started = time.perf_counter()
    plain = SentimentModel.plain()
    loaded = time.perf_counter() - started
    print(f"loading the plain lexicon model (jieba's dictionary, the lexicon's words): {loaded:.2f} s")
    trained = ns.fit([h for h in items if ns.split_of(h.title) == "train"], builtin_lexicon())
    chars = sum(len(h.title) + len(h.summary) for h in items)
    print(f"{len(items)} items, {chars / len(items):.1f} characters each on average")
    print(f"{'model':<16} {'language':<8} {'items/s':>10} {'µs/item':>9}")
    for name, model in (("plain lexicon", plain), ("trained", trained)):
        for language in ("zh-TW", "en", "all"):
            chosen = [h for h in items if language in ("all", h.language)]

            def score_all(model: SentimentModel = model, chosen: list[ns.Headline] = chosen) -> None:
                for h in chosen:
                    model.score(h.title, h.summary, h.language)

            rate, _ = items_per_second(score_all, len(chosen), args.seconds)
            print(f"{name:<16} {language:<8} {rate:>10,.0f} {1e6 / rate:>9.1f}")


if __name__ == "__main__":
    main()
