//! Keys to X keysyms, and keysyms to the key codes of the server's keyboard mapping (plain data,
//! read once and updated when a spare key code is remapped).

use crate::key::{Key, NamedKey};

/// Whether Shift must be held to get the keysym from its key code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Level {
    Base,
    Shifted,
}

/// The X keysym of a key.
pub(super) fn keysym(key: Key) -> u32 {
    use NamedKey::*;
    match key {
        Key::Char(c) => char_keysym(c),
        Key::Named(named) => match named {
            Enter => 0xff0d,
            Tab => 0xff09,
            Escape => 0xff1b,
            Backspace => 0xff08,
            Delete => 0xffff,
            Insert => 0xff63,
            Home => 0xff50,
            End => 0xff57,
            PageUp => 0xff55,
            PageDown => 0xff56,
            ArrowLeft => 0xff51,
            ArrowUp => 0xff52,
            ArrowRight => 0xff53,
            ArrowDown => 0xff54,
            // F1 is 0xffbe, F24 0xffd5; Key::parse keeps n in 1..=24.
            F(n) => 0xffbd + u32::from(n.clamp(1, 24)),
            Shift => 0xffe1,
            Control => 0xffe3,
            Alt => 0xffe9,
            Meta => 0xffeb,
            CapsLock => 0xffe5,
            PrintScreen => 0xff61,
            ContextMenu => 0xff67,
        },
    }
}

/// Latin-1 characters are their own keysyms; every other Unicode character is 0x1000000 + its
/// code point (the X keysym convention).
fn char_keysym(c: char) -> u32 {
    let cp = u32::from(c);
    if (0x20..=0x7e).contains(&cp) || (0xa0..=0xff).contains(&cp) {
        cp
    } else {
        0x0100_0000 + cp
    }
}

/// The server's core keyboard mapping: `per` keysyms for each key code from `min`.
#[derive(Debug, Clone)]
pub(super) struct Keymap {
    min: u8,
    per: usize,
    syms: Vec<u32>,
}

impl Keymap {
    pub(super) fn new(min: u8, per: u8, syms: Vec<u32>) -> Keymap {
        Keymap {
            min,
            per: usize::from(per.max(1)),
            syms,
        }
    }

    pub(super) fn per(&self) -> usize {
        self.per
    }

    fn codes(&self) -> impl Iterator<Item = (u8, &[u32])> {
        self.syms
            .chunks(self.per)
            .zip(self.min..=u8::MAX)
            .map(|(syms, code)| (code, syms))
    }

    /// The key code that gives `sym`, and whether Shift is needed: unshifted positions first.
    /// Only the first group's two levels are used (others need AltGr or a group switch: such
    /// keysyms go to a spare key code instead).
    pub(super) fn find(&self, sym: u32) -> Option<(u8, Level)> {
        if sym == 0 {
            return None;
        }
        let base = self.codes().find(|(_, s)| s.first() == Some(&sym));
        if let Some((code, _)) = base {
            return Some((code, Level::Base));
        }
        let shifted = self.codes().find(|(_, s)| {
            s.get(1) == Some(&sym)
                // An alphabetic key listed with its lower case alone gives the upper case with Shift.
                || (s.get(1).is_none_or(|&x| x == 0) && upper_of(s.first().copied()) == Some(sym))
        });
        shifted.map(|(code, _)| (code, Level::Shifted))
    }

    /// Key codes with no keysym at all: free to be given one for a while.
    pub(super) fn spare_codes(&self) -> Vec<u8> {
        self.codes()
            .filter(|(_, s)| s.iter().all(|&x| x == 0))
            .map(|(code, _)| code)
            .collect()
    }

    /// Records that `code` now gives `sym` at both levels (or nothing, with 0).
    pub(super) fn set(&mut self, code: u8, sym: u32) {
        let Some(index) = code.checked_sub(self.min).map(usize::from) else {
            return;
        };
        if let Some(slot) = self.syms.get_mut(index * self.per..(index + 1) * self.per) {
            slot.fill(0);
            slot[0] = sym;
            if let Some(second) = slot.get_mut(1) {
                *second = sym;
            }
        }
    }
}

/// The upper case keysym of a Latin-1 lower case letter keysym.
fn upper_of(sym: Option<u32>) -> Option<u32> {
    let c = char::from_u32(sym?).filter(|c| u32::from(*c) <= 0xff && c.is_lowercase())?;
    let mut upper = c.to_uppercase();
    match (upper.next(), upper.next()) {
        (Some(u), None) if u32::from(u) <= 0xff => Some(u.into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Key codes 10 to 14 of a US-like map: a/A, 1/!, Return, a lower-case-only ä, and a spare.
    fn map() -> Keymap {
        Keymap::new(
            10,
            2,
            vec![0x61, 0x41, 0x31, 0x21, 0xff0d, 0, 0xe4, 0, 0, 0],
        )
    }

    #[test]
    fn keysyms_of_keys() {
        assert_eq!(keysym(Key::Char('a')), 0x61);
        assert_eq!(keysym(Key::Char('é')), 0xe9);
        assert_eq!(keysym(Key::Char('€')), 0x0100_20ac);
        assert_eq!(keysym(Key::Named(NamedKey::F(1))), 0xffbe);
        assert_eq!(keysym(Key::Named(NamedKey::F(24))), 0xffd5);
        assert_eq!(keysym(Key::Named(NamedKey::Enter)), 0xff0d);
    }

    #[test]
    fn finds_base_and_shifted_levels() {
        let m = map();
        assert_eq!(m.find(0x61), Some((10, Level::Base)));
        assert_eq!(m.find(0x41), Some((10, Level::Shifted)));
        assert_eq!(m.find(0x21), Some((11, Level::Shifted)));
        assert_eq!(m.find(0xff0d), Some((12, Level::Base)));
        // Ä from the lower-case-only ä key, with Shift.
        assert_eq!(m.find(0xc4), Some((13, Level::Shifted)));
        assert_eq!(m.find(0x0100_20ac), None);
        assert_eq!(m.find(0), None);
    }

    #[test]
    fn spare_codes_can_be_given_a_keysym() {
        let mut m = map();
        assert_eq!(m.spare_codes(), vec![14]);
        m.set(14, 0x0100_20ac);
        assert_eq!(m.find(0x0100_20ac), Some((14, Level::Base)));
        assert!(m.spare_codes().is_empty());
        m.set(14, 0);
        assert_eq!(m.spare_codes(), vec![14]);
        // Out of range codes change nothing.
        m.set(9, 0x61);
        m.set(200, 0x61);
        assert_eq!(m.find(0x61), Some((10, Level::Base)));
    }
}
