"""Every component of ``detectors/`` is of one kind (:mod:`tapewatch.detectors.contracts`) and takes its input by that
kind's verb: a stage ``on_<event>``, an estimator ``observe``, a model ``score``. Every one that keeps state gives it
with ``to_state`` and is restored by the classmethod ``from_state``; a model is an artifact instead. The kinds'
protocols are held statically too: mypy checks each tuple below against its protocol."""

from __future__ import annotations

import importlib
import inspect
import re
from types import ClassMethodDescriptorType
from typing import Any, Protocol

import pytest

from tapewatch.detectors.aggressor import AggressorInference
from tapewatch.detectors.alerting import AlertPolicy
from tapewatch.detectors.bar_chunks import BarChunks
from tapewatch.detectors.bars import BarBuilder, MultiBarBuilder
from tapewatch.detectors.calibration import Calibration
from tapewatch.detectors.contracts import (
    EVENTS,
    BarStage,
    BookStage,
    ChunkStage,
    Estimator,
    ExecutionStage,
    HitStage,
    OrderStage,
    QuoteStage,
    Stateful,
)
from tapewatch.detectors.features import FeatureState
from tapewatch.detectors.feed_learning import PrintsLearner
from tapewatch.detectors.flow.baseline import Baseline
from tapewatch.detectors.flow.state import FlowState
from tapewatch.detectors.hit_model import HitModel
from tapewatch.detectors.kmeans import KMeansModel
from tapewatch.detectors.layers import LayerTracker
from tapewatch.detectors.news.context import NewsContext
from tapewatch.detectors.news.indicator import NewsIndicator
from tapewatch.detectors.news.sentiment import Classifier, SentimentModel
from tapewatch.detectors.orders.book import OrderBook
from tapewatch.detectors.orders.firm_desk import FirmDesk
from tapewatch.detectors.orders.firm_detector import FirmDetector
from tapewatch.detectors.orders.firm_messages import FirmMessages
from tapewatch.detectors.orders.firm_ramp import FirmRamp
from tapewatch.detectors.orders.firm_ring import FirmRing
from tapewatch.detectors.orders.firm_spoofing import FirmSpoofing
from tapewatch.detectors.orders.firm_wash import FirmWash
from tapewatch.detectors.orders.level2 import Level2Feed
from tapewatch.detectors.orders.placements import PublicPlacements
from tapewatch.detectors.orders.public_spoofing import PublicSpoofing
from tapewatch.detectors.orders.public_tape import PublicTape
from tapewatch.detectors.orders.public_wash import PublicWash
from tapewatch.detectors.orders.symbol_orders import PublicWatch
from tapewatch.detectors.orders.usual_size import UsualSize
from tapewatch.detectors.patterns import FlowPatterns, PatternDetector, SymbolDetector
from tapewatch.detectors.patterns.base import Drift, DriftScale, Run
from tapewatch.detectors.patterns.context import TapeContext
from tapewatch.detectors.patterns.materiality import Materiality
from tapewatch.detectors.seasonal import TimeOfDayProfile
from tapewatch.detectors.session_records import SessionRecords
from tapewatch.detectors.trade_sizes import SizeTally
from tapewatch.detectors.venue_wash import VenueWash
from tests.architecture import ROOT, modules

# -- the kinds ----------------------------------------------------------------------------------------------------
#: the stages, by the event they take
QUOTE_STAGES: tuple[type[QuoteStage], ...] = (BarBuilder, MultiBarBuilder, FlowState, VenueWash)
BOOK_STAGES: tuple[type[BookStage], ...] = (FlowState, LayerTracker)
ORDER_STAGES: tuple[type[OrderStage], ...] = (
    OrderBook,
    Level2Feed,
    PublicPlacements,
    FirmDesk,
    PublicSpoofing,
    PublicWash,
    PublicWatch,
    PublicTape,
)
EXECUTION_STAGES: tuple[type[ExecutionStage], ...] = (
    FirmSpoofing,
    FirmWash,
    FirmRing,
    FirmMessages,
    FirmRamp,
    FirmDetector,
    FirmDesk,
)
BAR_STAGES: tuple[type[BarStage], ...] = (BarChunks, FeatureState, SymbolDetector)
CHUNK_STAGES: tuple[type[ChunkStage], ...] = (TapeContext, FlowPatterns, Materiality, SymbolDetector)
HIT_STAGES: tuple[type[HitStage], ...] = (AlertPolicy,)
#: the pattern detectors: the chunk stages of one alert rule each
DETECTORS: tuple[type[PatternDetector], ...] = tuple(type(detector) for detector in FlowPatterns().detectors)
ESTIMATORS: tuple[type[Estimator], ...] = (
    AggressorInference,
    PrintsLearner,
    TimeOfDayProfile,
    SessionRecords,
    NewsIndicator,
    NewsContext,
    Run,
    Drift,
    DriftScale,
    Baseline,
    UsualSize,
    SizeTally,
)
#: the models, and the part of one that scores inside its artifact
MODELS: tuple[type[Any], ...] = (KMeansModel, HitModel, SentimentModel, Classifier)
#: a venue's calibration: an artifact like a model, read once to seed the estimators and set the policy's cut-offs
ARTIFACTS: tuple[type[Any], ...] = (KMeansModel, HitModel, SentimentModel, Calibration)

BY_EVENT: dict[str, tuple[type[Any], ...]] = {
    "quote": QUOTE_STAGES,
    "book": BOOK_STAGES,
    "order": ORDER_STAGES,
    "execution": EXECUTION_STAGES,
    "bar": BAR_STAGES,
    "chunk": (*CHUNK_STAGES, *DETECTORS),
    "hit": HIT_STAGES,
    "hits": (Materiality,),
}
PROTOCOLS: dict[str, type[Any]] = {
    "quote": QuoteStage,
    "book": BookStage,
    "order": OrderStage,
    "execution": ExecutionStage,
    "bar": BarStage,
    "chunk": ChunkStage,
    "hit": HitStage,
}
STAGES: tuple[type[Any], ...] = tuple(dict.fromkeys(cls for stages in BY_EVENT.values() for cls in stages))
#: the components whose state another keeps: none of their own to give
KEPT_BY: dict[type[Any], type[Any]] = {
    MultiBarBuilder: BarBuilder,  # one builder per symbol, each with its state
    Baseline: FlowState,  # in the flow state's, written by detectors/flow/persistence.py
}
#: the estimators whose state no other component keeps
OWN_STATE_ESTIMATORS: tuple[type[Any], ...] = tuple(estimator for estimator in ESTIMATORS if estimator not in KEPT_BY)
#: the components that keep a state of their own
STATEFUL: tuple[type[Stateful], ...] = (
    BarChunks,
    BarBuilder,
    FeatureState,
    FlowState,
    LayerTracker,
    OrderBook,
    Level2Feed,
    FirmSpoofing,
    FirmWash,
    FirmRing,
    FirmMessages,
    FirmRamp,
    FirmDetector,
    FirmDesk,
    PublicPlacements,
    PublicTape,
    VenueWash,
    PublicSpoofing,
    PublicWash,
    PublicWatch,
    TapeContext,
    FlowPatterns,
    Materiality,
    SymbolDetector,
    AlertPolicy,
    *DETECTORS,
    *OWN_STATE_ESTIMATORS,
)
INPUT_VERB = re.compile(r"^(on_[a-z_]+|observe|score(_[a-z]+)?)$")
#: a container's operations: no component takes its input by them
CONTAINER_VERB = re.compile(r"^(add|append|extend|push|put|update|feed|process)(_[a-z]+)?$")


def _public_methods(cls: type[Any]) -> set[str]:
    return {name for name, _ in inspect.getmembers(cls, callable) if not name.startswith("_")}


def _components() -> dict[str, type[Any]]:
    """Every public class of ``detectors/`` that takes an input by a verb, keeps state or scores."""
    found: dict[str, type[Any]] = {}
    for name, _ in modules():
        if not name.startswith("tapewatch.detectors"):
            continue
        for _, cls in inspect.getmembers(importlib.import_module(name), inspect.isclass):
            if cls.__module__ != name or cls.__name__.startswith("_") or Protocol in cls.__mro__:
                continue
            methods = _public_methods(cls)
            if "to_state" in methods or any(INPUT_VERB.match(method) for method in methods):
                found[f"{name}.{cls.__qualname__}"] = cls
    return found


def _is_classmethod(cls: type[Any], name: str) -> bool:
    """A class method, written in Python or compiled by mypyc (:mod:`tapewatch.compiled`)."""
    return any(isinstance(vars(klass).get(name), classmethod | ClassMethodDescriptorType) for klass in cls.__mro__)


def test_every_component_is_of_a_kind() -> None:
    kinds = {*STAGES, *ESTIMATORS, *MODELS, *ARTIFACTS}
    unclassified = sorted(name for name, cls in _components().items() if cls not in kinds)
    assert not unclassified, f"of no kind (tapewatch.detectors.contracts): {unclassified}"
    assert not {*STAGES} & {*ESTIMATORS} and not {*STAGES, *ESTIMATORS} & {*MODELS, *ARTIFACTS}


def test_no_component_takes_its_input_by_a_containers_verb() -> None:
    taken = {name: sorted(filter(CONTAINER_VERB.match, _public_methods(cls))) for name, cls in _components().items()}
    assert not {name: verbs for name, verbs in taken.items() if verbs}


@pytest.mark.parametrize("cls", STAGES, ids=lambda cls: cls.__name__)
def test_a_stage_takes_each_event_by_on_event(cls: type[Any]) -> None:
    verbs = {f"on_{event}" for event in EVENTS}
    takes = {method for method in _public_methods(cls) if INPUT_VERB.match(method)}
    assert takes and takes <= verbs | {f"{verb}_values" for verb in verbs}, takes
    for event, stages in BY_EVENT.items():  # each event's list is complete
        assert (f"on_{event}" in takes) == (cls in stages), (cls, event)
    for event, protocol in PROTOCOLS.items():
        assert issubclass(cls, protocol) == (cls in BY_EVENT[event]), (cls, protocol)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda cls: cls.__name__)
def test_an_estimator_observes(cls: type[Any]) -> None:
    assert issubclass(cls, Estimator)
    assert {method for method in _public_methods(cls) if INPUT_VERB.match(method)} == {"observe"}


@pytest.mark.parametrize("cls", MODELS, ids=lambda cls: cls.__name__)
def test_a_model_scores(cls: type[Any]) -> None:
    takes = {method for method in _public_methods(cls) if INPUT_VERB.match(method)}
    assert takes and all(method == "score" or method.startswith("score_") for method in takes), takes


@pytest.mark.parametrize("cls", ARTIFACTS, ids=lambda cls: cls.__name__)
def test_an_artifact_saves_and_loads_and_keeps_no_state(cls: type[Any]) -> None:
    assert callable(getattr(cls, "save", None)), cls
    assert _is_classmethod(cls, "load") and _is_classmethod(cls, "from_artifact"), cls
    assert not issubclass(cls, Stateful)


@pytest.mark.parametrize("cls", [*STAGES, *ESTIMATORS], ids=lambda cls: cls.__name__)
def test_a_stateful_component_gives_its_state_and_is_restored_from_it(cls: type[Any]) -> None:
    if cls in KEPT_BY:
        assert not issubclass(cls, Stateful) and issubclass(KEPT_BY[cls], Stateful)
        return
    assert cls in STATEFUL and issubclass(cls, Stateful) and _is_classmethod(cls, "from_state"), cls


def test_the_page_names_every_component_under_its_kind() -> None:
    page = (ROOT / "docs" / "detectors" / "index.md").read_text(encoding="utf-8")
    section = page.split("## Components and their verbs", 1)[1].split("\n## ", 1)[0]
    for cls in {*STAGES, *ESTIMATORS, *MODELS, *ARTIFACTS} - {*DETECTORS}:
        assert f"`{cls.__name__}`" in section, cls
