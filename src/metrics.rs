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
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

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

/// The process-wide recorder. Tests start several servers in one process; they share it.
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .install_recorder()
                .expect("no other metrics recorder is installed in this process");
            metrics::describe_counter!(HTTP_REQUESTS, "HTTP requests by route, method and status");
            metrics::describe_histogram!(HTTP_DURATION, "HTTP request handling time");
            metrics::describe_counter!(WS_MESSAGES, "WebSocket frames by direction");
            metrics::describe_gauge!(WS_CONNECTIONS, "Open participant WebSockets");
            metrics::describe_counter!(WS_BAD_FRAMES, "WebSocket frames that could not be read");
            metrics::describe_counter!(
                WS_SILENT_CLOSED,
                "Participant WebSockets closed because nothing came from them, not even a pong"
            );
            metrics::describe_gauge!(
                HTTP_CONNECTIONS,
                "Open HTTP connections, upgraded WebSockets included"
            );
            metrics::describe_counter!(
                HTTP_CONNECTIONS_REFUSED,
                "HTTP connections refused at once: every place taken (full) or the address's share (address)"
            );
            metrics::describe_counter!(
                HTTP_CONNECTIONS_TIMED_OUT,
                "HTTP connections closed, and request bodies cut off, for waiting too long on the client, by what was awaited"
            );
            metrics::describe_counter!(
                PASSWORD_HASHING_REFUSED,
                "Sign-ins and password changes refused because too many passwords were being hashed"
            );
            metrics::describe_counter!(
                MAIL_REFUSED,
                "E-mails not sent for the hourly limit they were past: sender, recipient or server"
            );
            metrics::describe_counter!(
                SESSION_NUMBER_TRIES,
                "Session numbers tried (HTTP join and assist, SIP dial-in and keypad), by outcome: right, wrong, or refused by the address's limit or the ceiling from everywhere"
            );
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
pub fn sip_call_joined() {
    counter!(SIP_CALLS_JOINED).increment(1);
}
