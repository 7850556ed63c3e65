//! Keys by physical position, named as the browser's `KeyboardEvent.code` names them (W3C UI
//! Events KeyboardEvent code values). A physical key, not a character, is what a remote keyboard
//! must press so the customer's own layout, shortcuts and input methods behave as with their own
//! keyboard; characters whatever the layouts go as typed text instead. Each platform maps
//! [`Key`] to its own key numbers.

macro_rules! keys {
    ($($name:ident),* $(,)?) => {
        /// A physical key. The variant's name is its `KeyboardEvent.code`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Key {
            $($name),*
        }

        impl Key {
            /// Every key the helper knows, in a fixed order.
            pub const ALL: &'static [Key] = &[$(Key::$name),*];

            /// The key for a `KeyboardEvent.code`, or `None` for codes the helper does not press.
            pub fn from_code(code: &str) -> Option<Key> {
                match code {
                    $(stringify!($name) => Some(Key::$name),)*
                    _ => None,
                }
            }

            /// The key's `KeyboardEvent.code`.
            pub fn code(self) -> &'static str {
                match self {
                    $(Key::$name => stringify!($name),)*
                }
            }
        }
    };
}

keys! {
    KeyA, KeyB, KeyC, KeyD, KeyE, KeyF, KeyG, KeyH, KeyI, KeyJ, KeyK, KeyL, KeyM,
    KeyN, KeyO, KeyP, KeyQ, KeyR, KeyS, KeyT, KeyU, KeyV, KeyW, KeyX, KeyY, KeyZ,
    Digit0, Digit1, Digit2, Digit3, Digit4, Digit5, Digit6, Digit7, Digit8, Digit9,
    Backquote, Minus, Equal, BracketLeft, BracketRight, Backslash, Semicolon, Quote,
    Comma, Period, Slash, IntlBackslash,
    Enter, Escape, Backspace, Tab, Space, CapsLock,
    ShiftLeft, ShiftRight, ControlLeft, ControlRight, AltLeft, AltRight, MetaLeft, MetaRight,
    ContextMenu,
    F1, F2, F3, F4, F5, F6, F7, F8, F9, F10, F11, F12,
    PrintScreen, ScrollLock, Pause,
    Insert, Delete, Home, End, PageUp, PageDown,
    ArrowUp, ArrowDown, ArrowLeft, ArrowRight,
    NumLock, Numpad0, Numpad1, Numpad2, Numpad3, Numpad4, Numpad5, Numpad6, Numpad7, Numpad8,
    Numpad9, NumpadAdd, NumpadSubtract, NumpadMultiply, NumpadDivide, NumpadDecimal, NumpadEnter,
}

impl Key {
    /// Shift, Control, Alt and Meta: the keys a combination holds while it presses the rest.
    pub fn is_modifier(self) -> bool {
        use Key::*;
        matches!(
            self,
            ShiftLeft
                | ShiftRight
                | ControlLeft
                | ControlRight
                | AltLeft
                | AltRight
                | MetaLeft
                | MetaRight
        )
    }
}

/// The console's menu of key combinations that a CSR cannot press on their own keyboard without
/// their own computer taking them (Ctrl+Alt+Del, Alt+Tab...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Combo {
    CtrlAltDel,
    AltTab,
    AltF4,
    CtrlEsc,
    Super,
    SuperL,
    PrintScreen,
}

impl Combo {
    pub const ALL: &'static [Combo] = &[
        Combo::CtrlAltDel,
        Combo::AltTab,
        Combo::AltF4,
        Combo::CtrlEsc,
        Combo::Super,
        Combo::SuperL,
        Combo::PrintScreen,
    ];

    pub fn from_name(name: &str) -> Option<Combo> {
        Combo::ALL.iter().copied().find(|c| c.name() == name)
    }

    /// The name the console sends.
    pub fn name(self) -> &'static str {
        match self {
            Combo::CtrlAltDel => "ctrl_alt_del",
            Combo::AltTab => "alt_tab",
            Combo::AltF4 => "alt_f4",
            Combo::CtrlEsc => "ctrl_esc",
            Combo::Super => "super",
            Combo::SuperL => "super_l",
            Combo::PrintScreen => "print_screen",
        }
    }

    /// The label the console's menu shows.
    pub fn label(self) -> &'static str {
        match self {
            Combo::CtrlAltDel => "Ctrl+Alt+Del",
            Combo::AltTab => "Alt+Tab",
            Combo::AltF4 => "Alt+F4",
            Combo::CtrlEsc => "Ctrl+Esc",
            Combo::Super => "Windows/Super key",
            Combo::SuperL => "Lock screen (Super+L)",
            Combo::PrintScreen => "Print Screen",
        }
    }

    /// The keys pressed in order and then released in reverse order.
    pub fn keys(self) -> &'static [Key] {
        use Key::*;
        match self {
            Combo::CtrlAltDel => &[ControlLeft, AltLeft, Delete],
            Combo::AltTab => &[AltLeft, Tab],
            Combo::AltF4 => &[AltLeft, F4],
            Combo::CtrlEsc => &[ControlLeft, Escape],
            Combo::Super => &[MetaLeft],
            Combo::SuperL => &[MetaLeft, KeyL],
            Combo::PrintScreen => &[Key::PrintScreen],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_round_trips_through_its_code() {
        for &k in Key::ALL {
            assert_eq!(Key::from_code(k.code()), Some(k));
        }
        assert_eq!(Key::ALL.len(), 105);
        assert_eq!(
            Key::from_code("keya"),
            None,
            "codes are case-sensitive, as in the browser"
        );
        assert_eq!(Key::from_code("Fn"), None, "Fn never reaches a page");
    }

    #[test]
    fn every_combination_holds_modifiers_then_presses_one_key() {
        for &c in Combo::ALL {
            assert_eq!(Combo::from_name(c.name()), Some(c));
            let (last, held) = c.keys().split_last().expect("a combination presses a key");
            assert!(held.iter().all(|k| k.is_modifier()), "{c:?}");
            assert!(!last.is_modifier() || c.keys().len() == 1, "{c:?}");
        }
    }
}
