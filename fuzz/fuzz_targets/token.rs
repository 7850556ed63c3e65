//! Any string presented as a token (bearer header, ?token=, invite): verification never panics
//! and never accepts what this server did not sign; session numbers likewise.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem::auth::Signer;
use tandem_actors::ids::SessionNumber;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let signer = Signer::from_secret(&[42; 32]);
    assert!(
        signer.verify(text).is_err(),
        "accepted a token nobody signed: {text:?}"
    );
    if let Ok(n) = text.parse::<SessionNumber>() {
        assert_eq!(n.to_string().len(), 9);
    }
});
