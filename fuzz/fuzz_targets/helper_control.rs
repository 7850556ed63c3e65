//! Any bytes as a message on the helper's `control` data channel: parsing never panics, and
//! whatever it accepts is within the limits the platform code relies on (points inside the
//! picture, bounded wheel steps and text). Nothing the server relays is admitted before the
//! customer's own consent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_helper::consent::Consent;
use tandem_helper::control::{self, Control, MAX_TEXT_CHARS, MAX_WHEEL_STEPS};

fuzz_target!(|data: &[u8]| {
    let Ok(c) = control::parse(data) else {
        return;
    };
    let inside = |p: control::Point| (0.0..=1.0).contains(&p.x) && (0.0..=1.0).contains(&p.y);
    match &c {
        Control::Move(p) | Control::Press(p, _) | Control::Release(p, _) => assert!(inside(*p)),
        Control::Wheel { at, dx, dy } => {
            assert!(inside(*at));
            assert!(dx.abs() <= MAX_WHEEL_STEPS && dy.abs() <= MAX_WHEEL_STEPS);
        }
        Control::Text(t) => assert!(!t.is_empty() && t.chars().count() <= MAX_TEXT_CHARS),
        Control::Key { .. } | Control::Combo(_) | Control::ReleaseAll => {}
    }
    assert_eq!(Consent::new().admits(&c), c == Control::ReleaseAll);
});
