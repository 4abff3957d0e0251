"""Prometheus metrics, in a registry of their own (one per pipeline, so tests and several
pipelines in one process never share counters)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from worker import __version__


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.info = Gauge("raqib_build_info", "raqib's version", ["version"], registry=r)
        self.info.labels(__version__).set(1)
        self.articles = Counter("raqib_articles_ingested_total", "New articles stored",
                                ["source"], registry=r)
        self.duplicates = Counter("raqib_duplicates_total",
                                  "Articles dropped as exact duplicates", ["source"], registry=r)
        self.stories = Counter("raqib_stories_total", "Stories started", registry=r)
        self.alerts = Counter("raqib_alerts_raised_total", "Alerts raised",
                              ["rule", "severity"], registry=r)
        self.silenced = Counter("raqib_alerts_silenced_total",
                                "Alerts raised while a silence matched (stored, not sent)",
                                ["rule"], registry=r)
        self.deliveries = Counter("raqib_deliveries_total", "Delivery attempts by outcome "
                                  "(sent, failed, dead)", ["channel", "outcome"], registry=r)
        self.polls = Counter("raqib_source_polls_total", "Source polls by outcome "
                             "(ok, not_modified, error)", ["source", "outcome"], registry=r)
        self.poll_seconds = Histogram("raqib_poll_duration_seconds", "Time to poll a source",
                                      buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
                                      registry=r)
        self.last_success = Gauge("raqib_source_last_success_timestamp_seconds",
                                  "When each source was last polled successfully", ["source"],
                                  registry=r)
        self.lag = Gauge("raqib_scheduler_lag_seconds",
                         "How late the scheduler started the last job", registry=r)
        self.rules = Gauge("raqib_rules", "Rules running", registry=r)
        self.reloads = Counter("raqib_config_reloads_total", "Configuration reloads by outcome "
                               "(ok, refused)", ["outcome"], registry=r)
        self.pruned = Counter("raqib_articles_pruned_total", "Articles removed by retention",
                              registry=r)
        self.updates = Counter("raqib_articles_updated_total",
                               "New versions of known items stored", ["source"], registry=r)
        lock_buckets = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
        self.lock_wait = Histogram("raqib_ingest_lock_wait_seconds",
                                   "Time an ingest waited for its turn at the write step",
                                   buckets=lock_buckets, registry=r)
        self.lock_held = Histogram("raqib_ingest_lock_held_seconds",
                                   "Time an ingest held the write step (keys checked again, "
                                   "stories placed, rows inserted, alerts decided)",
                                   buckets=lock_buckets, registry=r)
        self.leases_held = Gauge("raqib_leases_held", "Leases this worker holds, by kind "
                                 "(sources, deliveries, named: tasks and host slots)", ["kind"],
                                 registry=r)
        self.claims = Counter("raqib_lease_claims_total", "Claims by kind (poll, delivery, "
                              "task, host_slot) and outcome (won; lost: another worker had "
                              "it)", ["kind", "outcome"], registry=r)
        self.heartbeat_age = Gauge("raqib_heartbeat_age_seconds",
                                   "Seconds since this worker's last recorded heartbeat",
                                   registry=r)

    def observe_lock(self, waited: float, held: float) -> None:
        self.lock_wait.observe(waited)
        self.lock_held.observe(held)

    def exposition(self) -> bytes:
        return bytes(generate_latest(self.registry))
