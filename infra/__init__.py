"""The services tapewatch needs, run on this machine without containers (``tapewatch infra up|down|status|logs``):
Kafka (:mod:`tapewatch.infra.kafka`), PostgreSQL (:mod:`tapewatch.infra.postgres`) and Elasticsearch
(:mod:`tapewatch.infra.elasticsearch`), managed by :mod:`tapewatch.infra.manager` with the helpers of
:mod:`tapewatch.infra.common`; or checks of external ones;
:mod:`tapewatch.infra.data_jars` resolves the data-only Maven artifacts (real tapes). The package re-exports nothing:
import the module you need.
"""

__all__: list[str] = []
