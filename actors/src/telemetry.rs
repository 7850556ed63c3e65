//! Domain events as metrics. The names live here, once (the media workers' in [`media`]); the
//! server installs the Prometheus recorder. Only counters end in `_total`.

use metrics::{counter, gauge};

pub mod media;

pub const SESSIONS_ACTIVE: &str = "tandem_sessions_active";
pub const PARTICIPANTS_ACTIVE: &str = "tandem_participants_active";
pub const ACTOR_RESTARTS: &str = "tandem_actor_restarts_total";
pub const ACTOR_GIVE_UPS: &str = "tandem_actor_give_ups_total";
pub const COMMANDS: &str = "tandem_session_commands_total";
pub const EVENTS: &str = "tandem_session_events_total";
pub const RATE_LIMITED: &str = "tandem_commands_rate_limited_total";
pub const SLOW_CONSUMERS: &str = "tandem_slow_consumer_disconnects_total";
pub const JOURNAL_FAILURES: &str = "tandem_journal_failures_total";
pub const QUEUE_WAITING: &str = "tandem_queue_waiting";
/// The recorder's (actors/src/recorder.rs records them by these names).
pub const ARFS_ACTIVE: &str = "tandem_arfs_active";
pub const ARF_BYTES: &str = "tandem_arf_bytes_total";

/// One metric as declared: its name, type and HELP text, and the label values it has from the
/// start. Every module that records metrics lists its own in a `declared()` function; the server
/// registers them all when it installs the recorder, so `/metrics` carries HELP and TYPE for each
/// and every counter of closed label sets is there at 0 before its first event (an alert on
/// `increase()` sees the first one).
#[derive(Clone, Debug)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    /// Each label with every value it can take; their combinations start at 0. Empty for a
    /// metric without labels, and for one whose labels are an open set (routes, status codes,
    /// command kinds): such series appear at their first event.
    pub labels: Vec<(&'static str, Vec<&'static str>)>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Counter,
    Gauge,
    /// Exported as a Prometheus histogram with these bucket bounds (never a summary).
    Histogram(&'static [f64]),
}

impl Metric {
    pub fn counter(name: &'static str, help: &'static str) -> Self {
        Self::new(name, Kind::Counter, help)
    }
    pub fn gauge(name: &'static str, help: &'static str) -> Self {
        Self::new(name, Kind::Gauge, help)
    }
    pub fn histogram(name: &'static str, buckets: &'static [f64], help: &'static str) -> Self {
        Self::new(name, Kind::Histogram(buckets), help)
    }
    fn new(name: &'static str, kind: Kind, help: &'static str) -> Self {
        Self {
            name,
            kind,
            help,
            labels: Vec::new(),
        }
    }
    /// A label and every value it takes.
    pub fn label(mut self, name: &'static str, values: &[&'static str]) -> Self {
        self.labels.push((name, values.to_vec()));
        self
    }
    /// Labels of an open set: the metric is described but no series starts before its event.
    pub fn open_labels(mut self) -> Self {
        self.labels.push(("", Vec::new()));
        self
    }

    /// Every combination of the label values (one empty set for a metric without labels);
    /// none when a label's values are an open set.
    pub fn label_sets(&self) -> Vec<Vec<metrics::Label>> {
        let mut sets = vec![Vec::new()];
        for (name, values) in &self.labels {
            sets = sets
                .into_iter()
                .flat_map(|set: Vec<metrics::Label>| {
                    values.iter().map(move |v| {
                        let mut s = set.clone();
                        s.push(metrics::Label::new(*name, *v));
                        s
                    })
                })
                .collect();
        }
        sets
    }

    /// Describes the metric and makes each of its known series exist: counters at 0, gauges
    /// unchanged (0 when new), histograms empty. Calling it again changes nothing.
    pub fn register(&self) {
        match self.kind {
            Kind::Counter => {
                metrics::describe_counter!(self.name, self.help);
                for labels in self.label_sets() {
                    counter!(self.name, labels).increment(0);
                }
            }
            Kind::Gauge => {
                metrics::describe_gauge!(self.name, self.help);
                for labels in self.label_sets() {
                    gauge!(self.name, labels).increment(0.0);
                }
            }
            Kind::Histogram(_) => {
                metrics::describe_histogram!(self.name, self.help);
                for labels in self.label_sets() {
                    let _ = metrics::histogram!(self.name, labels);
                }
            }
        }
    }
}

/// This module's metrics (the media workers' are in [`media::declared`]).
pub fn declared() -> Vec<Metric> {
    const ACTORS: &[&str] = &[
        "participant",
        "session",
        "queue",
        "session_registry",
        "queue_registry",
    ];
    vec![
        Metric::gauge(SESSIONS_ACTIVE, "Support sessions live now"),
        Metric::gauge(PARTICIPANTS_ACTIVE, "Participants in live sessions"),
        Metric::counter(
            ACTOR_RESTARTS,
            "Actors restarted by their supervisor after a failure",
        )
        .label("actor", ACTORS),
        Metric::counter(
            ACTOR_GIVE_UPS,
            "Actors that failed too often to be restarted",
        )
        .label("actor", ACTORS),
        Metric::counter(COMMANDS, "Participant commands by kind and outcome").open_labels(),
        Metric::counter(EVENTS, "Session events emitted, by kind").open_labels(),
        Metric::counter(
            RATE_LIMITED,
            "Commands refused because a participant sent too fast",
        ),
        Metric::counter(
            SLOW_CONSUMERS,
            "WebSockets closed because the client could not keep up",
        ),
        Metric::counter(JOURNAL_FAILURES, "Session journal writes that failed"),
        Metric::gauge(QUEUE_WAITING, "Sessions waiting in queues and agent offers"),
        Metric::gauge(ARFS_ACTIVE, "Recordings being written now"),
        Metric::counter(ARF_BYTES, "ARF bytes written to disk"),
    ]
}

/// Registers this crate's metrics (see [`Metric::register`]); the server does so too, with its
/// own, when it installs the recorder. Idempotent.
pub fn describe() {
    for m in declared().iter().chain(&media::declared()) {
        m.register();
    }
}

pub fn sessions_active(n: usize) {
    gauge!(SESSIONS_ACTIVE).set(n as f64);
}
pub fn participant_joined() {
    gauge!(PARTICIPANTS_ACTIVE).increment(1.0);
}
pub fn participant_left() {
    gauge!(PARTICIPANTS_ACTIVE).decrement(1.0);
}
pub fn actor_restarted(kind: &'static str) {
    counter!(ACTOR_RESTARTS, "actor" => kind).increment(1);
}
pub fn actor_gave_up(kind: &'static str) {
    counter!(ACTOR_GIVE_UPS, "actor" => kind).increment(1);
}
pub fn command_handled(kind: &'static str, refused: Option<&'static str>) {
    let outcome = refused.unwrap_or("ok");
    counter!(COMMANDS, "command" => kind, "outcome" => outcome).increment(1);
}
pub fn event_emitted(kind: &'static str) {
    counter!(EVENTS, "event" => kind).increment(1);
}
pub fn command_rate_limited() {
    counter!(RATE_LIMITED).increment(1);
}
pub fn slow_consumer_disconnected() {
    counter!(SLOW_CONSUMERS).increment(1);
}
pub fn journal_failed() {
    counter!(JOURNAL_FAILURES).increment(1);
}
pub fn queue_waiting(n: usize) {
    gauge!(QUEUE_WAITING).set(n as f64);
}
