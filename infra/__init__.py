"""The services tapewatch needs, run on this machine without containers (``tapewatch infra up|down|status|logs``):
Kafka (:mod:`infra.kafka`), PostgreSQL (:mod:`infra.postgres`) and Elasticsearch (:mod:`infra.elasticsearch`),
managed by :mod:`infra.manager` with the helpers of :mod:`infra.common`; or checks of external ones;
:mod:`infra.data_jars` resolves the data-only Maven artifacts (real tapes). The package re-exports nothing: import
the module you need.
"""

__all__: list[str] = []
