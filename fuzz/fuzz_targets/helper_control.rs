//! Any bytes as a message on the helper's `control` data channel: parsing never panics, and
//! whatever it accepts is within the limits the platform code relies on (points inside the
//! picture, bounded wheel steps, text and clipboard text; the helper's clipboard answer stays
//! within the message bound and is one the SFU lets back). Nothing the server relays is
//! admitted before the customer's own consent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_helper::consent::Consent;
use tandem_helper::control::{
    self, ClipboardReply, Control, MAX_CLIPBOARD_CHARS, MAX_MESSAGE_BYTES, MAX_TEXT_CHARS,
    MAX_WHEEL_STEPS,
};

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
        Control::ClipboardSet(t) => {
            assert!(!t.is_empty() && t.chars().count() <= MAX_CLIPBOARD_CHARS);
            // Whatever the CSR may put there, the helper's answer carrying it back is bounded.
            let back = ClipboardReply::of_read(Ok(Some(t.clone()))).message();
            assert!(back.len() <= MAX_MESSAGE_BYTES);
            assert!(tandem_media::policy::is_clipboard_reply(&back));
        }
        Control::Key { .. } | Control::Combo(_) | Control::ReleaseAll | Control::ClipboardGet => {}
    }
    assert_eq!(Consent::new().admits(&c), c == Control::ReleaseAll);
});
