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

/// Describes every metric once, so /metrics carries HELP lines.
pub fn describe() {
    metrics::describe_gauge!(SESSIONS_ACTIVE, "Support sessions live now");
    metrics::describe_gauge!(PARTICIPANTS_ACTIVE, "Participants in live sessions");
    metrics::describe_counter!(
        ACTOR_RESTARTS,
        "Actors restarted by their supervisor after a failure"
    );
    metrics::describe_counter!(
        ACTOR_GIVE_UPS,
        "Actors that failed too often to be restarted"
    );
    metrics::describe_counter!(COMMANDS, "Participant commands by kind and outcome");
    metrics::describe_counter!(EVENTS, "Session events emitted, by kind");
    metrics::describe_counter!(
        RATE_LIMITED,
        "Commands refused because a participant sent too fast"
    );
    metrics::describe_counter!(
        SLOW_CONSUMERS,
        "WebSockets closed because the client could not keep up"
    );
    metrics::describe_counter!(JOURNAL_FAILURES, "Session journal writes that failed");
    metrics::describe_gauge!(QUEUE_WAITING, "Sessions waiting in queues and agent offers");
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
