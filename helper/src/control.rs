//! The CSR's input as it arrives on the `control` data channel (SPEC D2), parsed and checked
//! before anything reaches the platform. The channel is relayed by the server, so every message
//! is treated as hostile: bounded in size, every number in range, every key from a known table.
//! A message that fails any check is refused whole, with a stable code the helper reports;
//! nothing of it is injected.
//!
//! Coordinates are in picture space: `[x, y]` with 0 and 1 the picture's edges, so the console
//! needs to know nothing of the customer's screen; [`crate::control`]'s caller maps them to the
//! monitor or window shown.

use serde::Deserialize;

use crate::combo::Combo;
use crate::key::{Key, Modifiers};
pub use crate::platform::Button;

/// The longest control message accepted, either way. The longest legitimate one is a
/// `clipboard_set` (or the helper's `clipboard` answer) of [`MAX_CLIPBOARD_CHARS`] characters of
/// up to 4 bytes each, plus its envelope: well under the 64 KiB a data channel message may be.
pub const MAX_MESSAGE_BYTES: usize = 4 * MAX_CLIPBOARD_CHARS + 64;
/// The most characters of clipboard text moved at once, either way; longer text is refused
/// whole (never cut), so what arrives is what was copied.
pub const MAX_CLIPBOARD_CHARS: usize = 8192;
/// The most characters one `text` message types; longer text is sent in several messages.
pub const MAX_TEXT_CHARS: usize = 1024;
/// The most wheel steps one `wheel` message scrolls, either way, on either axis.
pub const MAX_WHEEL_STEPS: i32 = 20;

/// A point in the picture: 0 is the left or top edge, 1 the right or bottom edge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

/// One checked control message.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    Move(Point),
    Press(Point, Button),
    Release(Point, Button),
    /// Wheel steps: positive `dy` scrolls down, positive `dx` right.
    Wheel {
        at: Point,
        dx: i32,
        dy: i32,
    },
    /// A key. `down: None` is a press and release with `mods` held around it (what a console
    /// that sends key-down only means): the key is the character the CSR typed
    /// (`KeyboardEvent.key`). `down: Some(_)` presses or releases one key held across
    /// messages: the key is its position (`KeyboardEvent.code`).
    Key {
        key: Key,
        down: Option<bool>,
        mods: Modifiers,
    },
    /// Text typed as characters, whatever the two keyboards' layouts.
    Text(String),
    /// A special key combination from the console's menu (Ctrl+Alt+Del and the like).
    Combo(Combo),
    /// Release every key and button the CSR holds (the console lost focus).
    ReleaseAll,
    /// Put this text on the customer's clipboard (only while the customer allows control).
    ClipboardSet(String),
    /// The CSR asks for the customer's clipboard text: the helper asks the customer first.
    ClipboardGet,
}

/// Why a control message was refused. [`ControlError::code`] is the stable code reported.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ControlError {
    #[error("the control message is {0} bytes; at most {MAX_MESSAGE_BYTES} are accepted")]
    TooLong(usize),
    #[error("the control message is not a JSON object of a known shape: {0}")]
    Malformed(String),
    #[error("unknown control message type {0:?}")]
    UnknownType(String),
    #[error("{0} is out of range")]
    OutOfRange(&'static str),
    #[error("unknown key code {0:?}")]
    UnknownKey(String),
    #[error("unknown key combination {0:?}")]
    UnknownCombo(String),
    #[error("text is empty, longer than {MAX_TEXT_CHARS} characters, or holds control characters")]
    BadText,
    #[error(
        "clipboard text is empty, longer than {MAX_CLIPBOARD_CHARS} characters, or holds control characters other than line breaks and tabs"
    )]
    BadClipboard,
}

impl ControlError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLong(_) => "control_too_long",
            Self::Malformed(_) => "control_malformed",
            Self::UnknownType(_) => "control_unknown_type",
            Self::OutOfRange(_) => "control_out_of_range",
            Self::UnknownKey(_) => "control_unknown_key",
            Self::UnknownCombo(_) => "control_unknown_combo",
            Self::BadText => "control_bad_text",
            Self::BadClipboard => "control_bad_clipboard",
        }
    }
}

/// The wire shape, before any check. Unknown fields are ignored so a newer console can add some.
#[derive(Deserialize)]
struct Wire {
    t: String,
    at: Option<[f64; 2]>,
    button: Option<i64>,
    dx: Option<i64>,
    dy: Option<i64>,
    code: Option<String>,
    key: Option<String>,
    down: Option<bool>,
    mods: Option<Vec<String>>,
    text: Option<String>,
    name: Option<String>,
}

/// Parses and checks one message from the `control` channel.
pub fn parse(bytes: &[u8]) -> Result<Control, ControlError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(ControlError::TooLong(bytes.len()));
    }
    let wire: Wire =
        serde_json::from_slice(bytes).map_err(|e| ControlError::Malformed(e.to_string()))?;
    let at = || point(wire.at);
    let button = || button(wire.button);
    Ok(match wire.t.as_str() {
        "move" => Control::Move(at()?),
        "down" => Control::Press(at()?, button()?),
        "up" => Control::Release(at()?, button()?),
        "wheel" => Control::Wheel {
            at: at()?,
            dx: steps(wire.dx, "dx")?,
            dy: steps(wire.dy, "dy")?,
        },
        "key" => {
            let name = match wire.down {
                None => wire.key.or(wire.code),
                Some(_) => wire.code.or(wire.key),
            };
            let name = name.ok_or(ControlError::Malformed("key without code or key".into()))?;
            let key = Key::parse(&name).map_err(|_| ControlError::UnknownKey(name))?;
            let mods = modifiers(wire.mods.as_deref().unwrap_or_default())?;
            Control::Key {
                key,
                down: wire.down,
                mods,
            }
        }
        "text" => Control::Text(text(wire.text)?),
        "combo" => {
            let name = wire
                .name
                .ok_or(ControlError::Malformed("combo without name".into()))?;
            Control::Combo(Combo::from_name(&name).ok_or(ControlError::UnknownCombo(name))?)
        }
        "release_all" => Control::ReleaseAll,
        "clipboard_set" => Control::ClipboardSet(clipboard_text(wire.text)?),
        "clipboard_get" => Control::ClipboardGet,
        _ => return Err(ControlError::UnknownType(wire.t)),
    })
}

fn point(at: Option<[f64; 2]>) -> Result<Point, ControlError> {
    let [x, y] = at.ok_or(ControlError::Malformed("no point `at`".into()))?;
    let inside = |v: f64| (0.0..=1.0).contains(&v);
    if !inside(x) || !inside(y) {
        return Err(ControlError::OutOfRange("at"));
    }
    Ok(Point { x, y })
}

fn button(n: Option<i64>) -> Result<Button, ControlError> {
    Ok(
        match n.ok_or(ControlError::Malformed("no button".into()))? {
            0 => Button::Left,
            1 => Button::Middle,
            2 => Button::Right,
            3 => Button::Back,
            4 => Button::Forward,
            _ => return Err(ControlError::OutOfRange("button")),
        },
    )
}

fn steps(n: Option<i64>, name: &'static str) -> Result<i32, ControlError> {
    let n = n.unwrap_or(0);
    if n.unsigned_abs() > MAX_WHEEL_STEPS as u64 {
        return Err(ControlError::OutOfRange(name));
    }
    Ok(n as i32)
}

fn modifiers(names: &[String]) -> Result<Modifiers, ControlError> {
    let mut mods = Modifiers::default();
    for name in names {
        let held = match name.as_str() {
            "Shift" => &mut mods.shift,
            "Control" => &mut mods.control,
            "Alt" => &mut mods.alt,
            "Meta" => &mut mods.meta,
            _ => return Err(ControlError::UnknownKey(name.clone())),
        };
        *held = true;
    }
    Ok(mods)
}

/// Typed text: line breaks and tabs are keys a person types; other control characters are not.
fn text(text: Option<String>) -> Result<String, ControlError> {
    bounded(text, MAX_TEXT_CHARS, &['\n', '\t']).ok_or(ControlError::BadText)
}

/// Text that is not empty, at most `max` characters, with no control character but `allowed`.
fn bounded(text: Option<String>, max: usize, allowed: &[char]) -> Option<String> {
    let text = text.unwrap_or_default();
    let fine = |c: char| !c.is_control() || allowed.contains(&c);
    (!text.is_empty() && text.chars().count() <= max && text.chars().all(fine)).then_some(text)
}

/// Clipboard text: what a person copies, so line breaks (`\r\n` too) and tabs, and no other
/// control character.
fn clipboard_text(text: Option<String>) -> Result<String, ControlError> {
    bounded(text, MAX_CLIPBOARD_CHARS, &['\n', '\r', '\t']).ok_or(ControlError::BadClipboard)
}

/// The helper's answer to `clipboard_get`, the one message the computer sends the CSR on the
/// `control` channel (the SFU passes nothing else from it: media/src/policy.rs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClipboardReply {
    /// The customer said yes: the clipboard's text.
    Text(String),
    /// The customer said no.
    Declined,
    /// The clipboard holds no text (nothing copied, or an image).
    Empty,
    /// The text is over [`MAX_CLIPBOARD_CHARS`] characters (or its message over
    /// [`MAX_MESSAGE_BYTES`]): nothing of it is sent.
    TooLarge,
    /// The clipboard could not be read (its owner did not answer in time...).
    Failed,
}

/// How every clipboard answer begins on the wire; the SFU checks this prefix.
pub const CLIPBOARD_REPLY_PREFIX: &str = r#"{"t":"clipboard""#;

impl ClipboardReply {
    /// The answer for what the clipboard gave, within the bounds.
    pub fn of_read(read: Result<Option<String>, crate::platform::PlatformError>) -> Self {
        match read {
            Ok(Some(text)) if text.is_empty() => Self::Empty,
            Ok(Some(text)) if text.chars().count() > MAX_CLIPBOARD_CHARS => Self::TooLarge,
            Ok(Some(text)) => Self::Text(text),
            Ok(None) | Err(crate::platform::PlatformError::ClipboardNotText) => Self::Empty,
            Err(crate::platform::PlatformError::ClipboardTooLarge(_)) => Self::TooLarge,
            Err(_) => Self::Failed,
        }
    }

    /// The message: `{"t":"clipboard","text":…}`, or `{"t":"clipboard","none":"declined"}`
    /// (`empty`, `too_large`, `failed`). A text whose message would be over
    /// [`MAX_MESSAGE_BYTES`] (escaping grows it) is sent as `too_large`.
    pub fn message(&self) -> Vec<u8> {
        let none = |why: &str| format!(r#"{CLIPBOARD_REPLY_PREFIX},"none":"{why}"}}"#).into_bytes();
        match self {
            Self::Text(text) => {
                let quoted = serde_json::Value::String(text.clone()).to_string();
                let m = format!(r#"{CLIPBOARD_REPLY_PREFIX},"text":{quoted}}}"#).into_bytes();
                if m.len() > MAX_MESSAGE_BYTES {
                    return none("too_large");
                }
                m
            }
            Self::Declined => none("declined"),
            Self::Empty => none("empty"),
            Self::TooLarge => none("too_large"),
            Self::Failed => none("failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::NamedKey;
    use crate::platform::PlatformError;

    /// The CSR's console (web/remote_control.js) splits and bounds what it sends with the
    /// helper's own limits.
    #[test]
    fn the_consoles_limits_are_the_helpers() {
        let js = include_str!("../../web/remote_control.js");
        for line in [
            format!("const MAX_TEXT_CHARS = {MAX_TEXT_CHARS};"),
            format!("const MAX_CLIPBOARD_CHARS = {MAX_CLIPBOARD_CHARS};"),
            format!("const MAX_WHEEL_STEPS = {MAX_WHEEL_STEPS};"),
        ] {
            assert!(js.contains(&line), "the console lacks {line}");
        }
    }

    fn ok(json: &str) -> Control {
        parse(json.as_bytes()).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    fn refused(json: &str) -> &'static str {
        parse(json.as_bytes()).expect_err(json).code()
    }

    #[test]
    fn what_the_console_sends_is_understood() {
        let at = Point { x: 0.25, y: 1.0 };
        assert_eq!(ok(r#"{"t":"move","at":[0.25,1]}"#), Control::Move(at));
        assert_eq!(
            ok(r#"{"t":"down","at":[0.25,1],"button":2}"#),
            Control::Press(at, Button::Right)
        );
        assert_eq!(
            ok(r#"{"t":"up","at":[0.25,1],"button":0}"#),
            Control::Release(at, Button::Left)
        );
        assert_eq!(
            ok(r#"{"t":"wheel","at":[0.25,1],"dy":-3}"#),
            Control::Wheel { at, dx: 0, dy: -3 }
        );
        // Today's console sends key-down only, with `key` beside `code`.
        let none = Modifiers::default();
        assert_eq!(
            ok(r#"{"t":"key","key":"A","code":"KeyA"}"#),
            Control::Key {
                key: Key::Char('A'),
                down: None,
                mods: none
            }
        );
        assert_eq!(
            ok(r#"{"t":"key","key":"c","code":"KeyC","mods":["Control"]}"#),
            Control::Key {
                key: Key::Char('c'),
                down: None,
                mods: Modifiers {
                    control: true,
                    ..none
                }
            }
        );
        // Held keys go by position, whatever character the CSR's layout gave them.
        assert_eq!(
            ok(r#"{"t":"key","key":"Q","code":"KeyA","down":true}"#),
            Control::Key {
                key: Key::Char('a'),
                down: Some(true),
                mods: none
            }
        );
        assert_eq!(
            ok(r#"{"t":"key","code":"ShiftLeft","down":false}"#),
            Control::Key {
                key: Key::Named(NamedKey::Shift),
                down: Some(false),
                mods: none
            }
        );
        assert_eq!(
            ok(r#"{"t":"text","text":"Grüße\n"}"#),
            Control::Text("Grüße\n".into())
        );
        assert_eq!(
            ok(r#"{"t":"combo","name":"ctrl_alt_del"}"#),
            Control::Combo(Combo::CtrlAltDel)
        );
        assert_eq!(
            ok(r#"{"t":"release_all","from":"a newer console"}"#),
            Control::ReleaseAll
        );
        assert_eq!(
            ok(r#"{"t":"clipboard_set","text":"line 1\r\n\tline 2"}"#),
            Control::ClipboardSet("line 1\r\n\tline 2".into())
        );
        assert_eq!(ok(r#"{"t":"clipboard_get"}"#), Control::ClipboardGet);
    }

    #[test]
    fn malformed_and_out_of_range_messages_are_refused_with_their_code() {
        assert_eq!(refused("not json"), "control_malformed");
        assert_eq!(refused("[1,2]"), "control_malformed");
        assert_eq!(refused(r#"{"at":[0,0]}"#), "control_malformed");
        assert_eq!(refused(r#"{"t":"move"}"#), "control_malformed");
        assert_eq!(refused(r#"{"t":"move","at":[0.5]}"#), "control_malformed");
        assert_eq!(
            refused(r#"{"t":"move","at":["0","0"]}"#),
            "control_malformed"
        );
        assert_eq!(
            refused(r#"{"t":"move","at":[1.0001,0]}"#),
            "control_out_of_range"
        );
        assert_eq!(
            refused(r#"{"t":"move","at":[0,-0.1]}"#),
            "control_out_of_range"
        );
        assert_eq!(
            refused(r#"{"t":"move","at":[0,1e999]}"#),
            "control_malformed"
        );
        assert_eq!(
            refused(r#"{"t":"down","at":[0,0],"button":5}"#),
            "control_out_of_range"
        );
        assert_eq!(
            refused(r#"{"t":"down","at":[0,0],"button":-1}"#),
            "control_out_of_range"
        );
        assert_eq!(refused(r#"{"t":"down","at":[0,0]}"#), "control_malformed");
        assert_eq!(
            refused(r#"{"t":"wheel","at":[0,0],"dy":21}"#),
            "control_out_of_range"
        );
        assert_eq!(
            refused(r#"{"t":"wheel","at":[0,0],"dx":-9223372036854775808}"#),
            "control_out_of_range"
        );
        assert_eq!(
            refused(r#"{"t":"key","code":"KeyÄ","down":true}"#),
            "control_unknown_key"
        );
        assert_eq!(
            refused(r#"{"t":"key","key":"Hyper"}"#),
            "control_unknown_key"
        );
        assert_eq!(
            refused(r#"{"t":"key","key":"\u0007"}"#),
            "control_unknown_key"
        );
        assert_eq!(
            refused(r#"{"t":"key","key":"a","mods":["Fn"]}"#),
            "control_unknown_key"
        );
        assert_eq!(refused(r#"{"t":"key","down":true}"#), "control_malformed");
        assert_eq!(
            refused(r#"{"t":"combo","name":"format_c"}"#),
            "control_unknown_combo"
        );
        assert_eq!(refused(r#"{"t":"text","text":""}"#), "control_bad_text");
        assert_eq!(
            refused(r#"{"t":"text","text":"a\u0007b"}"#),
            "control_bad_text"
        );
        assert_eq!(
            refused(r#"{"t":"launch","path":"/bin/sh"}"#),
            "control_unknown_type"
        );
        assert_eq!(refused(r#"{"t":"clipboard_set"}"#), "control_bad_clipboard");
        assert_eq!(
            refused(r#"{"t":"clipboard_set","text":""}"#),
            "control_bad_clipboard"
        );
        assert_eq!(
            refused(r#"{"t":"clipboard_set","text":"a\u0000b"}"#),
            "control_bad_clipboard"
        );
        assert_eq!(
            refused(r#"{"t":"clipboard_set","text":7}"#),
            "control_malformed"
        );
        // The helper's own answer is not something the CSR may send it.
        assert_eq!(
            refused(r#"{"t":"clipboard","text":"x"}"#),
            "control_unknown_type"
        );
    }

    #[test]
    fn clipboard_text_is_bounded_both_ways() {
        let set =
            |s: &str, n: usize| format!(r#"{{"t":"clipboard_set","text":"{}"}}"#, s.repeat(n));
        assert!(
            matches!(ok(&set("😀", MAX_CLIPBOARD_CHARS)), Control::ClipboardSet(t) if t.chars().count() == MAX_CLIPBOARD_CHARS)
        );
        assert_eq!(
            refused(&set("a", MAX_CLIPBOARD_CHARS + 1)),
            "control_bad_clipboard"
        );
        // The answer: the text whole, or why not, never a part of it.
        let reply = |r: ClipboardReply| String::from_utf8(r.message()).unwrap();
        assert_eq!(
            reply(ClipboardReply::Text("a \"b\"\n".into())),
            r#"{"t":"clipboard","text":"a \"b\"\n"}"#
        );
        assert_eq!(
            reply(ClipboardReply::Declined),
            r#"{"t":"clipboard","none":"declined"}"#
        );
        let full = ClipboardReply::of_read(Ok(Some("😀".repeat(MAX_CLIPBOARD_CHARS))));
        assert!(matches!(full, ClipboardReply::Text(_)));
        assert!(full.message().len() <= MAX_MESSAGE_BYTES);
        assert_eq!(
            ClipboardReply::of_read(Ok(Some("a".repeat(MAX_CLIPBOARD_CHARS + 1)))),
            ClipboardReply::TooLarge
        );
        // Escaping may grow a text past the message bound: then it is too large, not cut.
        let escaped = ClipboardReply::Text("\u{1}".repeat(MAX_CLIPBOARD_CHARS));
        assert_eq!(reply(escaped), r#"{"t":"clipboard","none":"too_large"}"#);
        assert_eq!(ClipboardReply::of_read(Ok(None)), ClipboardReply::Empty);
        assert_eq!(
            ClipboardReply::of_read(Err(PlatformError::ClipboardTooLarge(9))),
            ClipboardReply::TooLarge
        );
        assert_eq!(
            ClipboardReply::of_read(Err(PlatformError::ClipboardTimeout(
                std::time::Duration::from_secs(5)
            ))),
            ClipboardReply::Failed
        );
        for r in [
            ClipboardReply::Text("x".into()),
            ClipboardReply::Declined,
            ClipboardReply::Empty,
            ClipboardReply::TooLarge,
            ClipboardReply::Failed,
        ] {
            // The SFU passes exactly these from the computer (media/src/policy.rs).
            assert!(tandem_media::policy::is_clipboard_reply(&r.message()));
        }
    }

    #[test]
    fn size_limits_hold_at_their_edges() {
        let text = |n: usize| format!(r#"{{"t":"text","text":"{}"}}"#, "€".repeat(n));
        assert!(matches!(ok(&text(MAX_TEXT_CHARS)), Control::Text(t) if t.chars().count() == 1024));
        assert_eq!(refused(&text(MAX_TEXT_CHARS + 1)), "control_bad_text");
        let huge = format!(
            r#"{{"t":"move","at":[0,0],"pad":"{}"}}"#,
            " ".repeat(MAX_MESSAGE_BYTES)
        );
        assert_eq!(refused(&huge), "control_too_long");
    }
}
