//! The Prometheus exporter, installed once per process, and the metrics the server layer
//! records: HTTP, WebSocket and the SIP endpoint's. The sans-IO SIP endpoint records nothing
//! itself; its shell counts what it reports through the `sip_*` functions here. Domain metrics
//! of the actors and media workers are named in tandem_actors::telemetry.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics::{counter, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tandem_actors::telemetry::{self, Kind, Metric};

pub const HTTP_REQUESTS: &str = "tandem_http_requests_total";
pub const HTTP_DURATION: &str = "tandem_http_request_duration_seconds";
pub const WS_MESSAGES: &str = "tandem_ws_messages_total";
pub const WS_CONNECTIONS: &str = "tandem_ws_connections";
pub const WS_BAD_FRAMES: &str = "tandem_ws_bad_frames_total";
pub const WS_SILENT_CLOSED: &str = "tandem_ws_silent_closed_total";

pub const HTTP_CONNECTIONS: &str = "tandem_http_connections";
pub const HTTP_CONNECTIONS_REFUSED: &str = "tandem_http_connections_refused_total";
pub const HTTP_CONNECTIONS_TIMED_OUT: &str = "tandem_http_connections_timed_out_total";

pub const PASSWORD_HASHING_REFUSED: &str = "tandem_password_hashing_refused_total";
pub const MAIL_REFUSED: &str = "tandem_mail_refused_total";

pub const SIP_REQUESTS: &str = "tandem_sip_requests_total";
pub const SIP_RESPONSES: &str = "tandem_sip_responses_total";
pub const SIP_REQUESTS_SENT: &str = "tandem_sip_requests_sent_total";
pub const SIP_STRAY_RESPONSES: &str = "tandem_sip_stray_responses_total";
pub const SIP_MALFORMED: &str = "tandem_sip_malformed_total";
pub const SIP_AUTH: &str = "tandem_sip_auth_total";
pub const SIP_REGISTRATIONS: &str = "tandem_sip_registrations_total";
pub const SIP_REGISTERED: &str = "tandem_sip_registrations";
pub const SIP_DIALS: &str = "tandem_sip_dials_total";
pub const SIP_CONNECTIONS_REFUSED: &str = "tandem_sip_connections_refused_total";
pub const SIP_CONNECTIONS_CLOSED: &str = "tandem_sip_connections_closed_total";
pub const SIP_RATE_LIMITED: &str = "tandem_sip_rate_limited_total";
pub const SIP_TRANSACTIONS_FULL: &str = "tandem_sip_transactions_full_total";
pub const SIP_TCP_SEND_DROPPED: &str = "tandem_sip_tcp_send_dropped_total";
pub const SIP_TCP_CONNECTIONS: &str = "tandem_sip_tcp_connections";
pub const SIP_CALLS_ACTIVE: &str = "tandem_sip_calls_active";
pub const SIP_LEGS_ACTIVE: &str = "tandem_sip_legs_active";
pub const SIP_DTMF_DIGITS: &str = "tandem_sip_dtmf_digits_total";
pub const SIP_CALLS_JOINED: &str = "tandem_sip_calls_joined_total";
pub const SESSION_NUMBER_TRIES: &str = "tandem_session_number_tries_total";
pub const PAIRING_CODE_TRIES: &str = "tandem_pairing_code_tries_total";

pub const ARFS_STARTED: &str = "tandem_arfs_started_total";
pub const ARF_FAILURES: &str = "tandem_arf_failures_total";
pub const EXPORTS: &str = "tandem_exports_total";
pub const EXPORT_DURATION: &str = "tandem_export_duration_seconds";
pub const EXPORT_SPEED: &str = "tandem_export_speed_ratio";
pub const EXPORT_FAILURES: &str = "tandem_export_failures_total";
pub const EXPORTS_CANCELLED: &str = "tandem_exports_cancelled_total";
pub const EXPORTS_WAITING: &str = "tandem_exports_waiting";
pub const EXPORTS_RUNNING: &str = "tandem_exports_running";
pub const UPLOADS_REFUSED: &str = "tandem_uploads_refused_total";

/// This module's metrics and those the exporter and recordings record by name: each with its
/// HELP, its buckets if a histogram, and every value of its closed labels (tandem_actors's
/// `Metric`). A metric added here needs its entry below (the unit test
/// `every_metric_named_here_is_declared` fails otherwise).
pub fn declared() -> Vec<Metric> {
    const IN_OUT: &[&str] = &["in", "out"];
    const TRANSPORTS: &[&str] = &["UDP", "TCP"];
    vec![
        Metric::counter(HTTP_REQUESTS, "HTTP requests by route, method and status").open_labels(),
        Metric::histogram(
            HTTP_DURATION,
            &[
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ],
            "HTTP request handling time, by route",
        )
        .open_labels(),
        Metric::counter(WS_MESSAGES, "WebSocket frames by direction").label("direction", IN_OUT),
        Metric::gauge(WS_CONNECTIONS, "Open participant WebSockets"),
        Metric::counter(WS_BAD_FRAMES, "WebSocket frames that could not be read").label(
            "reason",
            &["malformed_json", "invalid_command", "too_large", "binary"],
        ),
        Metric::counter(
            WS_SILENT_CLOSED,
            "Participant WebSockets closed because nothing came from them, not even a pong",
        ),
        Metric::gauge(
            HTTP_CONNECTIONS,
            "Open HTTP connections, upgraded WebSockets included",
        ),
        Metric::counter(
            HTTP_CONNECTIONS_REFUSED,
            "HTTP connections refused at once: every place taken (full) or the address's share (address)",
        )
        .label("reason", &["full", "address"]),
        Metric::counter(
            HTTP_CONNECTIONS_TIMED_OUT,
            "HTTP connections closed, and request bodies cut off, for waiting too long on the client, by what was awaited",
        )
        .label("phase", &["headers", "idle", "send", "body"]),
        Metric::counter(
            MAIL_REFUSED,
            "E-mails not sent for the hourly limit they were past: sender, recipient or server",
        )
        .label("limit", &["sender", "recipient", "server"]),
        Metric::counter(
            SESSION_NUMBER_TRIES,
            "Session numbers tried (HTTP join and assist, SIP dial-in and keypad), by outcome: right, wrong, or refused by the address's limit or the ceiling from everywhere",
        )
        .label("via", &["http", "sip"])
        .label("result", &["right", "wrong", "address", "everywhere"]),
        Metric::counter(
            PAIRING_CODE_TRIES,
            "Tandem Helper pairing codes tried, by outcome: right, wrong (unknown, expired, used, replaced, malformed), or refused by the address's limit or the ceiling from everywhere",
        )
        .label("result", &["right", "wrong", "address", "everywhere"]),
        Metric::counter(
            PASSWORD_HASHING_REFUSED,
            "Sign-ins and password changes refused because too many passwords were being hashed",
        ),
        Metric::counter(SIP_REQUESTS, "SIP requests received, retransmissions included")
            .open_labels(),
        Metric::counter(
            SIP_RESPONSES,
            "SIP responses sent, by the request's method and the status code",
        )
        .open_labels(),
        Metric::counter(SIP_REQUESTS_SENT, "SIP requests Tandem sent")
            .label("method", &["BYE", "INVITE", "CANCEL"]),
        Metric::counter(SIP_STRAY_RESPONSES, "SIP responses to no request of ours"),
        Metric::counter(SIP_MALFORMED, "SIP messages that could not be read")
            .label("transport", TRANSPORTS)
            .label(
                "reason",
                &[
                    "too_large",
                    "garbage",
                    "bad_header",
                    "bad_content_length",
                    "cseq_mismatch",
                    "too_many_headers",
                    "incomplete",
                ],
            ),
        Metric::counter(SIP_AUTH, "SIP digest authentication outcomes")
            .label("method", &["REGISTER", "INVITE"])
            .label(
                "result",
                &[
                    "ok",
                    "challenged",
                    "stale",
                    "throttled",
                    "wrong_password",
                    "unknown_user",
                    "bad_nonce",
                    "replay",
                    "wrong_uri",
                    "wrong_realm",
                    "algorithm",
                    "no_qop",
                    "malformed",
                ],
            ),
        Metric::counter(
            SIP_REGISTRATIONS,
            "Authenticated REGISTERs, by what became of them",
        )
        .label(
            "result",
            &[
                "ok",
                "too_brief",
                "bad_request",
                "out_of_order",
                "too_many",
                "not_own_aor",
            ],
        ),
        Metric::gauge(SIP_REGISTERED, "Softphone bindings now valid"),
        Metric::counter(SIP_DIALS, "Calls Tandem placed to CSRs' softphones").label(
            "result",
            &["started", "answered", "declined", "no_answer", "unreachable"],
        ),
        Metric::counter(
            SIP_CONNECTIONS_REFUSED,
            "SIP TCP connections closed at once: all places taken (full) or the address's share (per_address)",
        )
        .label("reason", &["full", "per_address"]),
        Metric::counter(
            SIP_CONNECTIONS_CLOSED,
            "SIP TCP connections Tandem closed: idle, or a message too slow to complete",
        )
        .label("reason", &["idle", "slow_message"]),
        Metric::counter(
            SIP_RATE_LIMITED,
            "SIP messages past their address's rate: UDP ones dropped, TCP ones delayed",
        )
        .label("transport", TRANSPORTS),
        Metric::counter(
            SIP_TRANSACTIONS_FULL,
            "New SIP requests refused with 503 because the transaction limit was reached",
        ),
        Metric::counter(
            SIP_TCP_SEND_DROPPED,
            "SIP messages not written because a TCP connection's queue was full",
        ),
        Metric::gauge(SIP_TCP_CONNECTIONS, "Open SIP TCP connections"),
        Metric::gauge(SIP_CALLS_ACTIVE, "SIP calls (dialogs) not yet over"),
        Metric::gauge(
            SIP_LEGS_ACTIVE,
            "SIP calls being put into a session or in one",
        ),
        Metric::counter(SIP_DTMF_DIGITS, "Keys pressed at the SIP service prompt"),
        Metric::counter(SIP_CALLS_JOINED, "SIP calls that joined a session"),
        // Recorded by name in src/recordings.rs and src/exporter.rs.
        Metric::counter(ARFS_STARTED, "Recordings started (a file and a row made)"),
        Metric::counter(ARF_FAILURES, "Recordings that ended in failure, by code").open_labels(),
        Metric::counter(EXPORTS, "Recordings exported to MP4"),
        Metric::histogram(
            EXPORT_DURATION,
            &[1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0],
            "Wall time of one export to MP4",
        ),
        Metric::histogram(
            EXPORT_SPEED,
            &[0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0],
            "Seconds of recording exported per second of wall time",
        ),
        Metric::counter(EXPORT_FAILURES, "Exports that failed, by code").open_labels(),
        Metric::counter(
            EXPORTS_CANCELLED,
            "Exports stopped because their recording was deleted or the server stopped",
        ),
        Metric::gauge(
            EXPORTS_WAITING,
            "Recordings waiting for a free export worker",
        ),
        Metric::gauge(EXPORTS_RUNNING, "Exports under way"),
        Metric::counter(UPLOADS_REFUSED, "Recording uploads refused, by code")
            .label(
                "code",
                &[
                    "body_too_large",
                    "invalid_recording",
                    "recording_too_long",
                    "recording_gap",
                    "frame_too_large",
                    "upload_quota_exceeded",
                    "insufficient_storage",
                ],
            ),
    ]
}

/// Every metric of the process: this module's and the actors' and media workers'.
fn all_declared() -> Vec<Metric> {
    let mut all = declared();
    all.extend(telemetry::declared());
    all.extend(telemetry::media::declared());
    all
}

/// The process-wide recorder, with every declared metric registered. Tests start several
/// servers in one process; they share it.
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let metrics = all_declared();
            let mut builder = PrometheusBuilder::new();
            for m in &metrics {
                if let Kind::Histogram(buckets) = m.kind {
                    builder = builder
                        .set_buckets_for_metric(Matcher::Full(m.name.to_string()), buckets)
                        .expect("declared buckets are not empty");
                }
            }
            let handle = builder
                .install_recorder()
                .expect("no other metrics recorder is installed in this process");
            for m in &metrics {
                m.register();
            }
            handle
        })
        .clone()
}

/// Counts every request by its route template (never the raw path, which would carry ids).
pub async fn track_http(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = method_label(req.method());
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    counter!(HTTP_REQUESTS, "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    histogram!(HTTP_DURATION, "route" => route).record(started.elapsed().as_secs_f64());
    res
}

/// A request's method as a label: the standard ones by name and anything made up as `other`,
/// so no client can add label values (and memory) without end.
fn method_label(method: &axum::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "other",
    }
}

pub fn ws_in() {
    counter!(WS_MESSAGES, "direction" => "in").increment(1);
}
pub fn ws_out() {
    counter!(WS_MESSAGES, "direction" => "out").increment(1);
}
pub fn ws_bad_frame(reason: &'static str) {
    counter!(WS_BAD_FRAMES, "reason" => reason).increment(1);
}
pub fn ws_silent_closed() {
    counter!(WS_SILENT_CLOSED).increment(1);
}
pub fn ws_opened() {
    metrics::gauge!(WS_CONNECTIONS).increment(1.0);
}
pub fn ws_closed() {
    metrics::gauge!(WS_CONNECTIONS).decrement(1.0);
}

pub fn http_connection_opened() {
    metrics::gauge!(HTTP_CONNECTIONS).increment(1.0);
}
pub fn http_connection_closed() {
    metrics::gauge!(HTTP_CONNECTIONS).decrement(1.0);
}
pub fn http_connection_refused(reason: &'static str) {
    counter!(HTTP_CONNECTIONS_REFUSED, "reason" => reason).increment(1);
}
/// `phase`: headers, idle, send (the connection is closed) or body (the request is cut off).
pub fn http_connection_timed_out(phase: &'static str) {
    counter!(HTTP_CONNECTIONS_TIMED_OUT, "phase" => phase).increment(1);
}

/// `limit`: sender, recipient or server.
pub fn mail_refused(limit: &'static str) {
    counter!(MAIL_REFUSED, "limit" => limit).increment(1);
}

pub fn password_hashing_refused() {
    counter!(PASSWORD_HASHING_REFUSED).increment(1);
}

pub fn sip_request(method: &str) {
    counter!(SIP_REQUESTS, "method" => method.to_string()).increment(1);
}
pub fn sip_response(method: &str, code: u16) {
    counter!(SIP_RESPONSES, "method" => method.to_string(), "code" => code.to_string())
        .increment(1);
}
pub fn sip_request_sent(method: &str) {
    counter!(SIP_REQUESTS_SENT, "method" => method.to_string()).increment(1);
}
pub fn sip_stray_response() {
    counter!(SIP_STRAY_RESPONSES).increment(1);
}
pub fn sip_malformed(transport: &'static str, reason: &'static str) {
    counter!(SIP_MALFORMED, "transport" => transport, "reason" => reason).increment(1);
}
pub fn sip_auth(method: &str, result: &'static str) {
    counter!(SIP_AUTH, "method" => method.to_string(), "result" => result).increment(1);
}
pub fn sip_registration(result: &'static str) {
    counter!(SIP_REGISTRATIONS, "result" => result).increment(1);
}
pub fn sip_dial(result: &'static str) {
    counter!(SIP_DIALS, "result" => result).increment(1);
}
pub fn sip_connection_refused(reason: &'static str) {
    counter!(SIP_CONNECTIONS_REFUSED, "reason" => reason).increment(1);
}
pub fn sip_connection_closed(reason: &'static str) {
    counter!(SIP_CONNECTIONS_CLOSED, "reason" => reason).increment(1);
}
pub fn sip_rate_limited(transport: &'static str) {
    counter!(SIP_RATE_LIMITED, "transport" => transport).increment(1);
}
pub fn sip_transactions_full() {
    counter!(SIP_TRANSACTIONS_FULL).increment(1);
}
pub fn sip_tcp_send_dropped() {
    counter!(SIP_TCP_SEND_DROPPED).increment(1);
}
/// The endpoint's state after each pass of its loop.
pub fn sip_endpoint_state(calls: usize, tcp_connections: usize) {
    metrics::gauge!(SIP_CALLS_ACTIVE).set(calls as f64);
    metrics::gauge!(SIP_TCP_CONNECTIONS).set(tcp_connections as f64);
}
pub fn sip_registered(bindings: usize) {
    metrics::gauge!(SIP_REGISTERED).set(bindings as f64);
}
pub fn sip_leg_started() {
    metrics::gauge!(SIP_LEGS_ACTIVE).increment(1.0);
}
pub fn sip_leg_ended() {
    metrics::gauge!(SIP_LEGS_ACTIVE).decrement(1.0);
}
pub fn sip_dtmf_digit() {
    counter!(SIP_DTMF_DIGITS).increment(1);
}
/// A session number tried `via` ("http", "sip"): `result` is "right", "wrong", or the limit
/// that refused it ("address", "everywhere").
pub fn session_number_try(via: &'static str, result: &'static str) {
    counter!(SESSION_NUMBER_TRIES, "via" => via, "result" => result).increment(1);
}
/// A pairing code tried: `result` is "right", "wrong", or the limit that refused it.
pub fn pairing_code_try(result: &'static str) {
    counter!(PAIRING_CODE_TRIES, "result" => result).increment(1);
}
pub fn sip_call_joined() {
    counter!(SIP_CALLS_JOINED).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `tandem_*` name in these files has its declaration (so HELP, buckets and the
    /// counters' zeros), and no name is declared twice.
    #[test]
    fn every_metric_named_here_is_declared() {
        let declared: Vec<&str> = all_declared().iter().map(|m| m.name).collect();
        let mut seen = std::collections::HashSet::new();
        for name in &declared {
            assert!(seen.insert(*name), "{name} is declared twice");
        }
        // Every source file of the server and the actors: a metric recorded anywhere is seen.
        fn rust_files(dir: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    rust_files(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(std::fs::read_to_string(&path).unwrap());
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut sources = Vec::new();
        rust_files(&root.join("src"), &mut sources);
        rust_files(&root.join("actors/src"), &mut sources);
        for source in &sources {
            for piece in source.split("\"tandem_").skip(1) {
                let rest = piece.split('"').next().unwrap();
                let is_name = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
                if rest.is_empty() || !rest.chars().all(is_name) {
                    continue;
                }
                let name = format!("tandem_{rest}");
                assert!(
                    declared.contains(&name.as_str()),
                    "{name} has no declaration (a Metric entry in a declared() list)"
                );
            }
        }
    }

    /// At start, before any event: HELP and TYPE for every metric but those of open label
    /// sets, each counter of closed labels at 0 with every label value, and histograms as histograms (buckets), not
    /// summaries.
    #[test]
    fn every_metric_is_described_and_every_counter_is_there_at_start() {
        let text = handle().render();
        for m in all_declared() {
            if m.label_sets().is_empty() {
                continue; // labels of an open set: no series before the first event
            }
            assert!(
                text.contains(&format!("# HELP {} ", m.name)),
                "{} has no HELP:\n{text}",
                m.name
            );
            let kind = match m.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram(_) => "histogram",
            };
            assert!(
                text.contains(&format!("# TYPE {} {kind}", m.name)),
                "{} is not exported as a {kind}",
                m.name
            );
            if m.kind != Kind::Counter {
                continue;
            }
            for labels in m.label_sets() {
                let series = if labels.is_empty() {
                    format!("{} ", m.name)
                } else {
                    let inner: Vec<String> = labels
                        .iter()
                        .map(|l| format!("{}=\"{}\"", l.key(), l.value()))
                        .collect();
                    format!("{}{{{}}} ", m.name, inner.join(","))
                };
                assert!(
                    text.lines().any(|l| l.starts_with(&series)),
                    "{series}is missing at start"
                );
            }
        }
    }
}
