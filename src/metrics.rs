//! The Prometheus exporter, installed once per process, and the HTTP and WebSocket metrics the
//! server layer records. Domain metrics are named in tandem_actors::telemetry.

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
    let method = req.method().to_string();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    counter!(HTTP_REQUESTS, "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    histogram!(HTTP_DURATION, "route" => route).record(started.elapsed().as_secs_f64());
    res
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
pub fn ws_opened() {
    metrics::gauge!(WS_CONNECTIONS).increment(1.0);
}
pub fn ws_closed() {
    metrics::gauge!(WS_CONNECTIONS).decrement(1.0);
}
