//! Input on X11 with XTest: absolute pointer motion on the root, buttons (wheel notches are
//! buttons 4 to 7), and keys found in the server's keyboard mapping. A character the keyboard
//! cannot type is given a spare key code for as long as the helper runs (restored on drop).

use std::sync::Arc;

use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::xproto::{
    BUTTON_PRESS_EVENT, BUTTON_RELEASE_EVENT, ConnectionExt as _, KEY_PRESS_EVENT,
    KEY_RELEASE_EVENT, MOTION_NOTIFY_EVENT,
};
use x11rb::protocol::xtest::{self, ConnectionExt as _};

use super::Shared;
use super::keymap::{Keymap, Level, keysym};
use crate::key::{Key, Modifiers, NamedKey};
use crate::platform::{Button, Input, PlatformError};

/// Wheel notches injected for one message at most, in each direction.
const MAX_NOTCHES: i32 = 50;
/// Characters typed for one message at most.
pub const MAX_TEXT_CHARS: usize = 4096;

pub struct X11Input {
    d: Arc<Shared>,
    keymap: Keymap,
    /// Key codes free for characters the keyboard lacks, used in turn; the keysym each holds now.
    spares: Vec<(u8, u32)>,
    next_spare: usize,
}

impl X11Input {
    pub(super) fn new(d: Arc<Shared>) -> Result<X11Input, PlatformError> {
        if d.conn
            .extension_information(xtest::X11_EXTENSION_NAME)?
            .is_none()
        {
            return Err(PlatformError::MissingExtension("XTEST"));
        }
        d.conn.xtest_get_version(2, 2)?.reply()?;
        let setup = d.conn.setup();
        let (min, max) = (setup.min_keycode, setup.max_keycode);
        let reply = d
            .conn
            .get_keyboard_mapping(min, max.saturating_sub(min).saturating_add(1))?
            .reply()?;
        let keymap = Keymap::new(min, reply.keysyms_per_keycode, reply.keysyms);
        let spares = keymap.spare_codes().into_iter().map(|c| (c, 0)).collect();
        Ok(X11Input {
            d,
            keymap,
            spares,
            next_spare: 0,
        })
    }

    fn fake(&self, kind: u8, detail: u8, x: i16, y: i16) -> Result<(), PlatformError> {
        self.d
            .conn
            .xtest_fake_input(kind, detail, x11rb::CURRENT_TIME, self.d.root, x, y, 0)?;
        Ok(())
    }

    fn press(&self, code: u8, pressed: bool) -> Result<(), PlatformError> {
        let kind = if pressed {
            KEY_PRESS_EVENT
        } else {
            KEY_RELEASE_EVENT
        };
        self.fake(kind, code, 0, 0)
    }

    fn click_button(&self, button: u8, times: i32) -> Result<(), PlatformError> {
        for _ in 0..times.unsigned_abs().min(MAX_NOTCHES as u32) {
            self.fake(BUTTON_PRESS_EVENT, button, 0, 0)?;
            self.fake(BUTTON_RELEASE_EVENT, button, 0, 0)?;
        }
        Ok(())
    }

    /// The key code and level giving `key`, remapping a spare key code when none does.
    fn code_of(&mut self, key: Key) -> Result<(u8, Level), PlatformError> {
        let sym = keysym(key);
        if let Some(found) = self.keymap.find(sym) {
            return Ok(found);
        }
        if self.spares.is_empty() {
            return Err(PlatformError::Unmappable(key));
        }
        let index = self.next_spare % self.spares.len();
        self.next_spare = index + 1;
        let code = self.spares[index].0;
        self.remap(code, sym)?;
        self.spares[index].1 = sym;
        Ok((code, Level::Base))
    }

    /// Gives `code` the keysym `sym` at both levels (0: none). Clients see the new mapping before
    /// the key events that follow (the server handles requests in order and announces the change
    /// with MappingNotify first).
    fn remap(&mut self, code: u8, sym: u32) -> Result<(), PlatformError> {
        let per = self.keymap.per();
        let mut syms = vec![0; per];
        syms[0] = sym;
        if per > 1 {
            syms[1] = sym;
        }
        self.d
            .conn
            .change_keyboard_mapping(1, code, per as u8, &syms)?
            .check()?;
        self.keymap.set(code, sym);
        Ok(())
    }

    fn modifier_code(&mut self, named: NamedKey) -> Result<u8, PlatformError> {
        Ok(self.code_of(Key::Named(named))?.0)
    }
}

impl Input for X11Input {
    fn raise_and_focus(&mut self, window: u64) -> Result<(), PlatformError> {
        super::windows::raise_and_focus(&self.d, window)
    }

    fn focus_within(&mut self, windows: &[u64]) -> Result<bool, PlatformError> {
        super::windows::focus_within(&self.d, windows)
    }

    fn pointer_move(&mut self, x: i32, y: i32) -> Result<(), PlatformError> {
        let x = x
            .clamp(0, i32::from(self.d.width).max(1) - 1)
            .min(i16::MAX.into()) as i16;
        let y = y
            .clamp(0, i32::from(self.d.height).max(1) - 1)
            .min(i16::MAX.into()) as i16;
        self.fake(MOTION_NOTIFY_EVENT, 0, x, y)?;
        self.d.conn.flush()?;
        Ok(())
    }

    fn button(&mut self, button: Button, pressed: bool) -> Result<(), PlatformError> {
        let detail = match button {
            Button::Left => 1,
            Button::Middle => 2,
            Button::Right => 3,
            Button::Back => 8,
            Button::Forward => 9,
        };
        let kind = if pressed {
            BUTTON_PRESS_EVENT
        } else {
            BUTTON_RELEASE_EVENT
        };
        self.fake(kind, detail, 0, 0)?;
        self.d.conn.flush()?;
        Ok(())
    }

    fn wheel(&mut self, dx: i32, dy: i32) -> Result<(), PlatformError> {
        self.click_button(if dy < 0 { 4 } else { 5 }, dy)?;
        self.click_button(if dx < 0 { 6 } else { 7 }, dx)?;
        self.d.conn.flush()?;
        Ok(())
    }

    fn key(&mut self, key: Key, modifiers: Modifiers) -> Result<(), PlatformError> {
        let (code, level) = self.code_of(key)?;
        let mut held = Vec::new();
        let wanted = [
            (modifiers.control, NamedKey::Control),
            (modifiers.alt, NamedKey::Alt),
            (modifiers.meta, NamedKey::Meta),
            (modifiers.shift || level == Level::Shifted, NamedKey::Shift),
        ];
        for (on, named) in wanted {
            if on && Key::Named(named) != key {
                held.push(self.modifier_code(named)?);
            }
        }
        for &m in &held {
            self.press(m, true)?;
        }
        self.press(code, true)?;
        self.press(code, false)?;
        for &m in held.iter().rev() {
            self.press(m, false)?;
        }
        self.d.conn.flush()?;
        Ok(())
    }

    fn key_state(&mut self, key: Key, pressed: bool) -> Result<(), PlatformError> {
        let (code, _) = self.code_of(key)?;
        self.press(code, pressed)?;
        self.d.conn.flush()?;
        Ok(())
    }

    fn text(&mut self, text: &str) -> Result<(), PlatformError> {
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(PlatformError::TooMuchText(MAX_TEXT_CHARS));
        }
        // Every character is checked before any is typed: bad text types nothing.
        let keys = text
            .chars()
            .map(Key::from_char)
            .collect::<Result<Vec<_>, _>>()?;
        for key in keys {
            self.key(key, Modifiers::default())?;
        }
        Ok(())
    }
}

impl Drop for X11Input {
    fn drop(&mut self) {
        let used: Vec<u8> = self
            .spares
            .iter()
            .filter(|s| s.1 != 0)
            .map(|s| s.0)
            .collect();
        for code in used {
            let _ = self.remap(code, 0);
        }
        let _ = self.d.conn.flush();
    }
}
