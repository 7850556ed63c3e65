//! Keys as the CSR's browser names them (KeyboardEvent.key or .code), independent of any platform.
//! Each backend maps a [`Key`] to its own key codes.

use thiserror::Error;

/// Names longer than this are refused before any lookup (the longest real one is "ContextMenu").
const MAX_NAME: usize = 32;

/// A key to press.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    /// A key that types this character (the backend adds Shift when the character needs it).
    Char(char),
    Named(NamedKey),
}

/// The keys that type no character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NamedKey {
    Enter,
    Tab,
    Escape,
    Backspace,
    Delete,
    Insert,
    Home,
    End,
    PageUp,
    PageDown,
    ArrowLeft,
    ArrowRight,
    ArrowUp,
    ArrowDown,
    /// F1 to F24.
    F(u8),
    Shift,
    Control,
    Alt,
    Meta,
    CapsLock,
    PrintScreen,
    ContextMenu,
}

/// Modifiers held while a key is pressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Modifiers {
    pub shift: bool,
    pub control: bool,
    pub alt: bool,
    pub meta: bool,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("unknown key name {0:?}")]
    Unknown(String),
    #[error("the key name is empty")]
    Empty,
    #[error("the key name is longer than {MAX_NAME} bytes")]
    TooLong,
    #[error("the character U+{0:04X} is a control character and cannot be typed")]
    ControlCharacter(u32),
}

impl Key {
    /// Parses a KeyboardEvent.key value ("a", "A", "Enter", "ArrowLeft", "F5", " ") or a
    /// KeyboardEvent.code value ("KeyA", "Digit1", "Space", "ShiftLeft").
    pub fn parse(name: &str) -> Result<Key, KeyError> {
        if name.is_empty() {
            return Err(KeyError::Empty);
        }
        if name.len() > MAX_NAME {
            return Err(KeyError::TooLong);
        }
        let mut chars = name.chars();
        if let (Some(c), None) = (chars.next(), chars.next()) {
            return Key::from_char(c);
        }
        if let Some(named) = named(name) {
            return Ok(Key::Named(named));
        }
        if let Some(c) = code_char(name) {
            return Ok(Key::Char(c));
        }
        Err(KeyError::Unknown(name.to_owned()))
    }

    /// The key that types `c`; newline, tab and backspace are their keys.
    pub fn from_char(c: char) -> Result<Key, KeyError> {
        match c {
            '\n' | '\r' => Ok(Key::Named(NamedKey::Enter)),
            '\t' => Ok(Key::Named(NamedKey::Tab)),
            '\u{8}' => Ok(Key::Named(NamedKey::Backspace)),
            c if c.is_control() => Err(KeyError::ControlCharacter(c.into())),
            c => Ok(Key::Char(c)),
        }
    }
}

fn named(name: &str) -> Option<NamedKey> {
    use NamedKey::*;
    Some(match name {
        "Enter" | "NumpadEnter" => Enter,
        "Tab" => Tab,
        "Escape" | "Esc" => Escape,
        "Backspace" => Backspace,
        "Delete" | "Del" => Delete,
        "Insert" => Insert,
        "Home" => Home,
        "End" => End,
        "PageUp" => PageUp,
        "PageDown" => PageDown,
        "ArrowLeft" | "Left" => ArrowLeft,
        "ArrowRight" | "Right" => ArrowRight,
        "ArrowUp" | "Up" => ArrowUp,
        "ArrowDown" | "Down" => ArrowDown,
        "Shift" | "ShiftLeft" | "ShiftRight" => Shift,
        "Control" | "ControlLeft" | "ControlRight" => Control,
        "Alt" | "AltLeft" | "AltRight" | "AltGraph" => Alt,
        "Meta" | "MetaLeft" | "MetaRight" | "OS" | "Super" => Meta,
        "CapsLock" => CapsLock,
        "PrintScreen" => PrintScreen,
        "ContextMenu" => ContextMenu,
        _ => {
            let n: u8 = name.strip_prefix('F')?.parse().ok()?;
            return (1..=24).contains(&n).then_some(F(n));
        }
    })
}

/// The unshifted character of a KeyboardEvent.code on a US layout.
fn code_char(code: &str) -> Option<char> {
    if let Some(letter) = code.strip_prefix("Key") {
        let mut chars = letter.chars();
        return match (chars.next(), chars.next()) {
            (Some(c @ 'A'..='Z'), None) => Some(c.to_ascii_lowercase()),
            _ => None,
        };
    }
    if let Some(digit) = code
        .strip_prefix("Digit")
        .or_else(|| code.strip_prefix("Numpad"))
    {
        let mut chars = digit.chars();
        return match (chars.next(), chars.next()) {
            (Some(c @ '0'..='9'), None) => Some(c),
            _ => None,
        };
    }
    Some(match code {
        "Space" => ' ',
        "Minus" => '-',
        "Equal" => '=',
        "BracketLeft" => '[',
        "BracketRight" => ']',
        "Backslash" => '\\',
        "Semicolon" => ';',
        "Quote" => '\'',
        "Backquote" => '`',
        "Comma" => ',',
        "Period" => '.',
        "Slash" => '/',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_parse() {
        assert_eq!(Key::parse("a"), Ok(Key::Char('a')));
        assert_eq!(Key::parse("A"), Ok(Key::Char('A')));
        assert_eq!(Key::parse(" "), Ok(Key::Char(' ')));
        assert_eq!(Key::parse("é"), Ok(Key::Char('é')));
        assert_eq!(Key::parse("Enter"), Ok(Key::Named(NamedKey::Enter)));
        assert_eq!(Key::parse("ArrowLeft"), Ok(Key::Named(NamedKey::ArrowLeft)));
        assert_eq!(Key::parse("F12"), Ok(Key::Named(NamedKey::F(12))));
        assert_eq!(Key::parse("Control"), Ok(Key::Named(NamedKey::Control)));
    }

    #[test]
    fn code_values_parse() {
        assert_eq!(Key::parse("KeyQ"), Ok(Key::Char('q')));
        assert_eq!(Key::parse("Digit7"), Ok(Key::Char('7')));
        assert_eq!(Key::parse("Space"), Ok(Key::Char(' ')));
        assert_eq!(Key::parse("Slash"), Ok(Key::Char('/')));
        assert_eq!(Key::parse("ShiftRight"), Ok(Key::Named(NamedKey::Shift)));
        assert_eq!(Key::parse("MetaLeft"), Ok(Key::Named(NamedKey::Meta)));
    }

    #[test]
    fn bad_names_are_errors() {
        assert_eq!(Key::parse(""), Err(KeyError::Empty));
        assert_eq!(
            Key::parse("Banana"),
            Err(KeyError::Unknown("Banana".into()))
        );
        assert_eq!(Key::parse("F0"), Err(KeyError::Unknown("F0".into())));
        assert_eq!(Key::parse("F25"), Err(KeyError::Unknown("F25".into())));
        assert_eq!(Key::parse("Keyab"), Err(KeyError::Unknown("Keyab".into())));
        assert_eq!(
            Key::parse("Digit10"),
            Err(KeyError::Unknown("Digit10".into()))
        );
        assert_eq!(Key::parse(&"x".repeat(33)), Err(KeyError::TooLong));
        assert_eq!(Key::parse("\u{7}"), Err(KeyError::ControlCharacter(7)));
    }

    #[test]
    fn text_control_characters_map_to_keys() {
        assert_eq!(Key::from_char('\n'), Ok(Key::Named(NamedKey::Enter)));
        assert_eq!(Key::from_char('\t'), Ok(Key::Named(NamedKey::Tab)));
        assert_eq!(
            Key::from_char('\u{1b}'),
            Err(KeyError::ControlCharacter(0x1b))
        );
    }
}
