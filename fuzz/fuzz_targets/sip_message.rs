//! Anything a phone (or anyone) sends to the SIP port: the endpoint must answer or drop it,
//! never panic, and its SDP parsing must do the same. An account with a SIP password exists,
//! so digest credentials are checked in full; REGISTER's Contact and Expires reading and the
//! digest parameter parser are also fed the bytes directly.
#![no_main]

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use libfuzzer_sys::fuzz_target;
use tandem::sip::digest::{Algorithm, DigestAuth, SipCredential};
use tandem::sip::endpoint::{Endpoint, EndpointConfig};
use tandem::sip::message::{self, StreamFramer};
use tandem::sip::registrar::SipAccount;
use tandem::sip::sdp;
use tandem::sip::transaction::Peer;

fuzz_target!(|data: &[u8]| {
    let mut endpoint = Endpoint::new(
        EndpointConfig {
            service_number: "100".into(),
            contact: "127.0.0.1:5060".parse().unwrap(),
            max_calls: 10,
            realm: "tandem".into(),
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            require_auth: false,
            // Small, so inputs also reach the refusal past the cap.
            max_transactions: 64,
        },
        Instant::now(),
        SystemTime::now(),
    );
    let credential = SipCredential::new("dave", "tandem", "softphone password");
    let dave = SipAccount {
        credential: credential.clone(),
        id: tandem_actors::ids::AccountId::random(),
        display_name: "Dave".into(),
        email: "dave@example.com".into(),
        is_agent: false,
    };
    endpoint.set_accounts(Arc::new([("dave".to_string(), dave)].into_iter().collect()));
    let now = Instant::now();
    let peer = "127.0.0.1:40000".parse().unwrap();
    endpoint.receive(now, Peer::Udp(peer), data);
    let mut framer = StreamFramer::default();
    framer.push(data);
    while let Some(Ok(m)) = framer.next_message() {
        endpoint.receive(now, Peer::Tcp(peer), &m);
        if let Ok(rsip::SipMessage::Request(req)) = message::parse(&m, true) {
            let _ = message::registration(&req);
        }
    }
    endpoint.handle_timeout(now + std::time::Duration::from_secs(40));
    let _ = sdp::negotiate(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let mut digest = DigestAuth::new("tandem", vec![Algorithm::Md5]);
        let client = std::net::IpAddr::from([127, 0, 0, 1]);
        let _ = digest.check(1, client, "REGISTER", text, |_| true, |_| Some(&credential));
        let _ = tandem::sip::digest::claimed_username(text);
    }
});
