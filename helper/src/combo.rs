//! The console's menu of key combinations that a CSR cannot press on their own keyboard without
//! their own computer taking them (Ctrl+Alt+Del, Alt+Tab...).

use crate::key::{Key, Modifiers, NamedKey};

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

    /// The key pressed, and the modifiers held around it.
    pub fn keys(self) -> (Key, Modifiers) {
        let none = Modifiers::default();
        let alt = Modifiers { alt: true, ..none };
        let control = Modifiers {
            control: true,
            ..none
        };
        let meta = Modifiers { meta: true, ..none };
        match self {
            Combo::CtrlAltDel => (
                Key::Named(NamedKey::Delete),
                Modifiers {
                    alt: true,
                    ..control
                },
            ),
            Combo::AltTab => (Key::Named(NamedKey::Tab), alt),
            Combo::AltF4 => (Key::Named(NamedKey::F(4)), alt),
            Combo::CtrlEsc => (Key::Named(NamedKey::Escape), control),
            Combo::Super => (Key::Named(NamedKey::Meta), none),
            Combo::SuperL => (Key::Char('l'), meta),
            Combo::PrintScreen => (Key::Named(NamedKey::PrintScreen), none),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_combination_is_found_by_its_name_and_names_are_distinct() {
        for &c in Combo::ALL {
            assert_eq!(Combo::from_name(c.name()), Some(c));
        }
        let mut names: Vec<_> = Combo::ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Combo::ALL.len());
        assert_eq!(Combo::from_name("CTRL_ALT_DEL"), None);
    }

    /// The CSR's console (web/remote_control.js) offers every combination by its name and label
    /// (its limits are held by control.rs's tests).
    #[test]
    fn the_consoles_keys_menu_matches_the_helper() {
        let js = include_str!("../../web/remote_control.js");
        for &c in Combo::ALL {
            let entry = format!("['{}', '{}']", c.name(), c.label());
            assert!(js.contains(&entry), "the console's Keys menu lacks {entry}");
        }
        assert_eq!(
            js.matches("  ['").count(),
            Combo::ALL.len(),
            "the console offers a combination the helper does not know"
        );
    }
}
