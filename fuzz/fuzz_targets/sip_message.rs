//! Anything a phone (or anyone) sends to the SIP port: the endpoint must answer or drop it,
//! never panic, and its SDP parsing must do the same.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use tandem::sip::endpoint::{Endpoint, EndpointConfig};
use tandem::sip::message::StreamFramer;
use tandem::sip::sdp;
use tandem::sip::transaction::Peer;

fuzz_target!(|data: &[u8]| {
    let mut endpoint = Endpoint::new(EndpointConfig {
        service_number: "100".into(),
        contact: "127.0.0.1:5060".parse().unwrap(),
        max_calls: 10,
    });
    let now = Instant::now();
    let peer = "127.0.0.1:40000".parse().unwrap();
    endpoint.receive(now, Peer::Udp(peer), data);
    let mut framer = StreamFramer::default();
    framer.push(data);
    while let Some(Ok(m)) = framer.next_message() {
        endpoint.receive(now, Peer::Tcp(peer), &m);
    }
    endpoint.handle_timeout(now + std::time::Duration::from_secs(40));
    let _ = sdp::negotiate(data);
});
