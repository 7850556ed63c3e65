//! Any bytes as a line on tandem-helper-logon's socket (SPEC M4; the service runs as root and
//! any local user may connect): reading it never panics, and what is accepted is a user name
//! `useradd` could make, a password with no NUL, and a display size within the service's
//! bounds. The replies the helper reads never panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_helper::logon::proto::{MAX_SIZE, MIN_SIZE, Reply, Request, user_name_ok};

fuzz_target!(|data: &[u8]| {
    if let Ok(Request::Start {
        user,
        password,
        width,
        height,
    }) = Request::parse(data)
    {
        assert!(user_name_ok(&user) && !user.starts_with('-') && user.len() <= 32);
        assert!(!password.is_empty() && !password.contains('\0'));
        assert!((MIN_SIZE.0..=MAX_SIZE.0).contains(&width));
        assert!((MIN_SIZE.1..=MAX_SIZE.1).contains(&height));
    }
    let _ = Reply::parse(data);
});
