"""`tapewatch run`: the whole pipeline on this machine, supervised, with a live terminal dashboard.

Each stage is its own OS process (the same commands an operator would run by hand: `tapewatch produce …`,
`tapewatch stream worker`, `tapewatch sink postgres`, `tapewatch sink elasticsearch`, `tapewatch trade paper`),
restarted with back-off if it dies. The dashboard reads Kafka metadata (high watermarks per topic, the stream
group's committed offsets) and tails the bars, alerts, actions, forecasts, paper orders and portfolios and the
truth from their ends — watching costs the pipeline nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import OFFSET_END, Consumer, KafkaException, TopicPartition
from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from tapewatch.kafka import consumer_config
from tapewatch.records import Action, Alert, Bar, Episode, Forecast, Order, Portfolio, RecordError
from tapewatch.settings import Settings
from tapewatch.topics import ACTIONS, ALERTS, ALL_TOPICS, BARS, FORECASTS, ORDERS, PORTFOLIO, QUOTES, TRUTH, Topic

TAPEWATCH = str(Path(sys.executable).with_name("tapewatch"))


@dataclass
class Child:
    name: str
    argv: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    finished: bool = False  # exited 0 on its own (a finite source): not restarted

    @property
    def state(self) -> str:
        if self.finished:
            return "finished"
        if self.proc is None:
            return "waiting"
        return "running" if self.proc.poll() is None else f"exited {self.proc.returncode}"


class Supervisor:
    """Starts the stage processes, restarts crashed ones with back-off, stops them all on exit."""

    def __init__(self, settings: Settings, env: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.logs = settings.local.var_dir / "run"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.children: list[Child] = []
        self.env = {**os.environ, **(env or {})}

    def add(self, name: str, *args: str) -> Child:
        child = Child(name, [TAPEWATCH, *args], self.logs / f"{name}.log")
        self.children.append(child)
        self._start(child)
        return child

    def _start(self, child: Child) -> None:
        out = child.log.open("ab" if child.restarts else "wb")  # one log per run; restarts append
        child.proc = subprocess.Popen(
            child.argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            start_new_session=True,
        )
        out.close()

    def check(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.finished or child.proc is None or child.proc.poll() is None:
                continue
            if child.proc.returncode == 0:
                child.finished = True
                continue
            if child.next_start == 0.0:
                child.next_start = now + min(30.0, 2.0**child.restarts)
            elif now >= child.next_start:
                child.restarts += 1
                child.next_start = 0.0
                self._start(child)

    def stop_one(self, child: Child, timeout_s: float = 30.0) -> None:
        """Stop one stage for good (SIGTERM, then SIGKILL after ``timeout_s``)."""
        child.finished = True
        if child.proc is not None and child.proc.poll() is None:
            child.proc.send_signal(signal.SIGTERM)
            try:
                child.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()

    def stop(self, timeout_s: float = 30.0) -> None:
        running = [c for c in self.children if c.proc is not None and c.proc.poll() is None]
        for child in running:
            assert child.proc is not None
            child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for child in running:
            assert child.proc is not None
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()


@dataclass
class TopicRate:
    total: int = 0
    rate: float = 0.0


@dataclass
class PipelineView:
    """What the dashboard shows, refreshed from Kafka metadata."""

    topics: dict[str, TopicRate] = field(default_factory=dict)
    lag: int | None = None
    newest_bars: deque[Bar] = field(default_factory=lambda: deque(maxlen=6))
    bars_seen: int = 0
    newest_alerts: deque[Alert] = field(default_factory=lambda: deque(maxlen=8))
    newest_actions: deque[Action] = field(default_factory=lambda: deque(maxlen=6))
    newest_forecasts: deque[Forecast] = field(default_factory=lambda: deque(maxlen=6))
    #: everything seen since the start, for the summary and the report
    alerts: dict[str, Alert] = field(default_factory=dict)  # by alert_id: the latest emission
    episodes: list[Episode] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    actions_seen: int = 0
    forecasts_seen: int = 0
    #: the paper trader: each account's newest snapshot, and its order events by kind
    accounts: dict[str, Portfolio] = field(default_factory=dict)
    order_events: Counter[str] = field(default_factory=Counter)


class Watcher:
    def __init__(self, settings: Settings, group: str) -> None:
        self.settings = settings
        self.consumer = Consumer(consumer_config(settings, **{"group.id": group, "enable.auto.commit": False}))
        self.tail = Consumer(
            consumer_config(settings, **{"group.id": f"{group}-dashboard", "enable.auto.commit": False})
        )
        self.partitions = settings.kafka.topic_partitions
        self.view = PipelineView()
        self._last: tuple[float, dict[str, int]] | None = None
        # from the end: what this run adds (the topics of a demo are fresh, so that is everything)
        self.tail.assign(
            [
                TopicPartition(settings.topic(topic.name), p, OFFSET_END)
                for topic in (BARS, ALERTS, ACTIONS, FORECASTS, TRUTH, ORDERS, PORTFOLIO)
                for p in range(self.partitions)
            ]
        )
        self._decoders = {
            settings.topic(BARS.name): self._on_bar,
            settings.topic(ALERTS.name): self._on_alert,
            settings.topic(ACTIONS.name): self._on_action,
            settings.topic(FORECASTS.name): self._on_forecast,
            settings.topic(TRUTH.name): self._on_episode,
            settings.topic(ORDERS.name): self._on_order,
            settings.topic(PORTFOLIO.name): self._on_portfolio,
        }

    def _on_bar(self, raw: bytes) -> None:
        bar = Bar.from_json(raw)
        self.view.newest_bars.appendleft(bar)
        self.view.bars.append(bar)
        self.view.bars_seen += 1

    def _on_alert(self, raw: bytes) -> None:
        alert = Alert.from_json(raw)
        self.view.newest_alerts.appendleft(alert)
        self.view.alerts[alert.alert_id] = alert

    def _on_action(self, raw: bytes) -> None:
        self.view.newest_actions.appendleft(Action.from_json(raw))
        self.view.actions_seen += 1

    def _on_forecast(self, raw: bytes) -> None:
        self.view.newest_forecasts.appendleft(Forecast.from_json(raw))
        self.view.forecasts_seen += 1

    def _on_order(self, raw: bytes) -> None:
        self.view.order_events[Order.from_json(raw).event.value] += 1

    def _on_portfolio(self, raw: bytes) -> None:
        snapshot = Portfolio.from_json(raw)
        newest = self.view.accounts.get(snapshot.account)
        if newest is None or snapshot.seq > newest.seq:
            self.view.accounts[snapshot.account] = snapshot

    def _on_episode(self, raw: bytes) -> None:
        self.view.episodes.append(Episode.from_json(raw))

    def _high(self, topic: Topic) -> int:
        name = self.settings.topic(topic.name)
        total = 0
        for p in range(self.partitions):
            _, high = self.consumer.get_watermark_offsets(TopicPartition(name, p), timeout=2.0, cached=False)
            total += max(high, 0)
        return total

    def refresh(self) -> PipelineView:
        now = time.monotonic()
        totals = {t.name: self._high(t) for t in ALL_TOPICS}
        for name, total in totals.items():
            rate = 0.0
            if self._last is not None:
                then, before = self._last
                rate = (total - before[name]) / max(now - then, 1e-6)
            self.view.topics[name] = TopicRate(total, rate)
        self._last = (now, totals)
        quotes = self.settings.topic(QUOTES.name)
        try:
            committed = self.consumer.committed(
                [TopicPartition(quotes, p) for p in range(self.partitions)], timeout=2.0
            )
            done = sum(max(tp.offset, 0) for tp in committed)
            self.view.lag = max(0, totals[QUOTES.name] - done)
        except KafkaException:
            self.view.lag = None
        while True:
            messages = self.tail.consume(num_messages=5000, timeout=0.05)
            for msg in messages:
                decode = self._decoders.get(msg.topic() or "")
                if msg.error() is None and msg.value() and decode is not None:
                    with contextlib.suppress(RecordError):  # the sinks dead-letter bad records
                        decode(msg.value() or b"")
            if len(messages) < 5000:
                return self.view

    def close(self) -> None:
        self.consumer.close()
        self.tail.close()


def render(view: PipelineView, supervisor: Supervisor, elapsed: float, duration: float | None) -> Group:
    remaining = f" · stops in {max(0.0, duration - elapsed):,.0f} s" if duration else " · Ctrl-C to stop"
    lag = "-" if view.lag is None else f"{view.lag:,}"
    header = Panel(
        f"running {elapsed:,.0f} s{remaining} · stream consumer lag on md.quotes: {lag} records", title="tapewatch"
    )
    return Group(
        header,
        _flow_table(view),
        _process_table(supervisor),
        _alerts_table(view),
        _actions_table(view),
        _forecasts_table(view),
        _paper_table(view),
        _bars_table(view),
    )


def _flow_table(view: PipelineView) -> Table:
    flow = Table("topic", "records", "per second", title="data flow", expand=True)
    for topic in ALL_TOPICS:
        rate = view.topics.get(topic.name, TopicRate())
        style = "yellow" if topic.is_dead_letter and rate.total else ""
        flow.add_row(topic.name, f"{rate.total:,}", f"{rate.rate:,.0f}", style=style)
    return flow


def _process_table(supervisor: Supervisor) -> Table:
    procs = Table("process", "state", "restarts", "log", title="processes", expand=True)
    for child in supervisor.children:
        procs.add_row(child.name, child.state, str(child.restarts), str(child.log))
    return procs


def _bars_table(view: PipelineView) -> Table:
    bars = Table(
        "symbol", "start (UTC)", "open", "high", "low", "close", "volume", "trades", title="newest bars", expand=True
    )
    for bar in view.newest_bars:
        bars.add_row(
            bar.symbol,
            time.strftime("%H:%M", time.gmtime(bar.start / 1000)),
            f"{bar.open:g}",
            f"{bar.high:g}",
            f"{bar.low:g}",
            f"{bar.close:g}",
            f"{bar.volume:,.0f}",
            str(bar.trades),
        )
    return bars


def _alerts_table(view: PipelineView) -> Table:
    alerts = Table(
        "time (UTC)",
        "symbol",
        "kind",
        "severity",
        "score",
        "evidence",
        title=f"newest alerts ({len(view.alerts)})",
        expand=True,
    )
    for alert in view.newest_alerts:
        alerts.add_row(
            time.strftime("%H:%M:%S", time.gmtime(alert.ts / 1000)),
            alert.symbol,
            alert.kind.value,
            alert.severity.value,
            f"{alert.score:.2f}",
            evidence_text(alert),
            style="red" if alert.severity.value in ("high", "critical") else "",
        )
    return alerts


def _actions_table(view: PipelineView) -> Table:
    actions = Table(
        "time (UTC)",
        "symbol",
        "action",
        "Q HOLD / BUY / SELL",
        "position",
        title=f"newest actions ({view.actions_seen:,})",
        expand=True,
    )
    for action in view.newest_actions:
        q = action.q_values
        actions.add_row(
            time.strftime("%H:%M", time.gmtime(action.ts / 1000)),
            action.symbol,
            action.action,
            " / ".join(f"{q[a]:+.3f}" for a in ("HOLD", "BUY", "SELL")) if q else "warming up",
            str(action.position),
        )
    return actions


def _forecasts_table(view: PipelineView) -> Table:
    forecasts = Table(
        "time (UTC)",
        "symbol",
        "model",
        "horizon",
        "forecast",
        "confidence",
        title=f"newest forecasts ({view.forecasts_seen:,}; none until a symbol has a model's window of bars)",
        expand=True,
    )
    for forecast in view.newest_forecasts:
        if forecast.target == "return":
            text = f"return {100 * forecast.prediction:+.3f} %"
        else:
            text = " / ".join(f"{name} {p:.2f}" for name, p in forecast.probabilities.items())
        forecasts.add_row(
            time.strftime("%H:%M", time.gmtime(forecast.ts / 1000)),
            forecast.symbol,
            forecast.model,
            f"{forecast.horizon} bars",
            text,
            f"{forecast.confidence:.2f}",
        )
    return forecasts


def _paper_table(view: PipelineView) -> Table:
    events = view.order_events
    paper = Table(
        "account", "equity", "day P&L", "realised", "fees + taxes", "positions", "state",
        title=f"paper accounts (orders placed {events['placed']:,}, filled {events['filled']:,}, "
        f"partly {events['partially_filled']:,}, cancelled {events['cancelled']:,}, rejected {events['rejected']:,})",
        expand=True,
    )  # fmt: skip
    for name, snapshot in sorted(view.accounts.items()):
        paper.add_row(
            name,
            f"{snapshot.equity:,.0f}",
            f"{snapshot.day_pnl:+,.0f}",
            f"{snapshot.realized_pnl:+,.0f}",
            f"{snapshot.fees + snapshot.taxes:,.0f}",
            ", ".join(f"{s} {q:,.0f}" for s, q in snapshot.positions.items()) or "flat",
            "[red]halted[/]" if snapshot.halted else "trading",
        )
    return paper


def evidence_text(alert: Alert, limit: int = 3) -> str:
    """The first few evidence fields, compactly (the full evidence is in PostgreSQL and Elasticsearch)."""
    parts = []
    for name, value in list(alert.evidence.items())[:limit]:
        parts.append(f"{name}={value:.3g}" if isinstance(value, float) else f"{name}={value}")
    return ", ".join(parts)


@dataclass(frozen=True)
class StageReport:
    name: str
    restarts: int
    state: str
    log: Path


@dataclass(frozen=True)
class RunResult:
    view: PipelineView
    stages: list[StageReport]


def paper_skew_ms(speed: float) -> int:
    """The paper trader's bound on a silent partition for a source played ``speed`` × real time: a minute of
    real time, as live (0: as fast as possible, a day). A DQN decision reaches it seconds after its bar closed,
    and at 120× a few seconds are minutes of event time; the stream worker's start-up longer still.

    >>> paper_skew_ms(1.0), paper_skew_ms(120.0), paper_skew_ms(0.0)
    (60000, 7200000, 86400000)
    """
    return 86_400_000 if speed <= 0 else int(60_000 * max(1.0, speed))


def _start_stages(
    supervisor: Supervisor,
    source_args: list[str],
    speed: float,
    console: bool,
    news_args: list[str] | None,
    grid_args: Sequence[str],
) -> list[Child]:
    """Every stage of the pipeline started under ``supervisor``; the sources among them (stopped first)."""
    supervisor.add("stream-worker", "stream", "worker")
    supervisor.add("sink-postgres", "sink", "postgres")
    supervisor.add("sink-elasticsearch", "sink", "elasticsearch")
    supervisor.add("paper-trader", "trade", "paper", "--max-skew-ms", str(paper_skew_ms(speed)), *grid_args)
    if console:
        supervisor.add("console", "console", "serve")
    sources = [supervisor.add("source", "produce", *source_args, "--no-progress")]
    if news_args is not None:
        sources.append(supervisor.add("news-source", "produce", *news_args, "--no-progress"))
    return sources


def run_pipeline(
    settings: Settings,
    source_args: list[str],
    duration: float | None,
    live: bool = True,
    drain_s: float = 20.0,
    console: bool = True,
    speed: float = 1.0,
    news_args: list[str] | None = None,
    grid_args: Sequence[str] = (),
) -> RunResult:
    """Run source → stream worker → sinks until ``duration`` or Ctrl-C; then stop the source, let the rest
    drain (until the topics stop growing, at most ``drain_s``), stop everything and return the summary's data.
    ``news_args``: a news source beside the market source (``tapewatch produce`` arguments), stopped with it;
    ``grid_args``: where the paper trader gets the source's venue grids (``tapewatch trade paper`` options)."""
    from tapewatch.streams.app import app_id

    supervisor = Supervisor(settings, env={"TAPEWATCH_TOPIC_PREFIX": settings.kafka.topic_prefix})
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    previous = signal.signal(signal.SIGTERM, on_signal)
    sources = _start_stages(supervisor, source_args, speed, console, news_args, grid_args)
    watcher = Watcher(settings, app_id(settings))
    started = time.monotonic()
    view = watcher.view
    try:
        with Live(
            render(view, supervisor, 0.0, duration), refresh_per_second=2, transient=False, auto_refresh=False
        ) as screen:
            while not stop and (duration is None or time.monotonic() - started < duration):
                supervisor.check()
                view = watcher.refresh()
                if live:
                    screen.update(render(view, supervisor, time.monotonic() - started, duration), refresh=True)
                time.sleep(1.0)
            for source in sources:
                supervisor.stop_one(source)
            quiet_since, last_totals, deadline = time.monotonic(), None, time.monotonic() + drain_s
            while not stop and time.monotonic() < deadline:
                view = watcher.refresh()
                totals = {name: rate.total for name, rate in view.topics.items()}
                if totals != last_totals:
                    quiet_since, last_totals = time.monotonic(), totals
                elif time.monotonic() - quiet_since >= 3.0 and view.lag == 0:
                    break
                if live:
                    screen.update(render(view, supervisor, time.monotonic() - started, duration), refresh=True)
                time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        supervisor.stop()
        view = watcher.refresh()
        watcher.close()
    stages = [StageReport(c.name, c.restarts, c.state, c.log) for c in supervisor.children]
    return RunResult(view, stages)
