//! The clipboard on X11, as ICCCM selections: the CLIPBOARD selection belongs to whichever
//! program last claimed it, and others ask that program for its contents.
//!
//! Reading asks the owner for UTF8_STRING into a property of a window of our own and waits for
//! its answer with a timeout, taking INCR (chunked) transfers up to the size bound. Setting
//! claims the selection from a thread with its own connection, which answers requests for
//! TARGETS, UTF8_STRING, TEXT and STRING until another program claims the selection (X sends
//! SelectionClear) or the clipboard is dropped. Each read and each claim has a connection of its
//! own, so that a late answer to one read never reaches the next.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};
use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::protocol::xproto::{
    AtomEnum, ClientMessageEvent, ConnectionExt as _, CreateWindowAux, EventMask, PropMode,
    Property, SELECTION_NOTIFY_EVENT, SelectionNotifyEvent, SelectionRequestEvent, Window,
    WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;
use x11rb::{COPY_DEPTH_FROM_PARENT, CURRENT_TIME, NONE};

use crate::platform::{Clipboard, ClipboardLimits, PlatformError};

type Atom = u32;

// TANDEM_CLIPBOARD: the property on our window that owners write their answers into;
// TANDEM_CLIPBOARD_STOP: the message that tells our owner thread to stop.
x11rb::atom_manager! {
    Atoms: AtomsCookie {
        CLIPBOARD,
        TARGETS,
        UTF8_STRING,
        TEXT,
        INCR,
        TANDEM_CLIPBOARD,
        TANDEM_CLIPBOARD_STOP,
    }
}

pub struct X11Clipboard {
    display: Option<String>,
    limits: ClipboardLimits,
    /// The latest claim of the selection; its thread may have ended since (another program
    /// claimed the selection).
    owner: Option<Owner>,
}

impl X11Clipboard {
    pub(super) fn new(
        display: Option<String>,
        limits: ClipboardLimits,
    ) -> Result<X11Clipboard, PlatformError> {
        // Fails early when the display is unreachable.
        Client::connect(display.as_deref(), EventMask::NO_EVENT)?;
        Ok(X11Clipboard {
            display,
            limits,
            owner: None,
        })
    }
}

impl Clipboard for X11Clipboard {
    fn get_text(&mut self) -> Result<Option<String>, PlatformError> {
        let c = Client::connect(self.display.as_deref(), EventMask::PROPERTY_CHANGE)?;
        let a = &c.atoms;
        if c.conn.get_selection_owner(a.CLIPBOARD)?.reply()?.owner == NONE {
            return Ok(None);
        }
        c.conn
            .convert_selection(
                c.window,
                a.CLIPBOARD,
                a.UTF8_STRING,
                a.TANDEM_CLIPBOARD,
                CURRENT_TIME,
            )?
            .check()?;
        let deadline = Instant::now() + self.limits.timeout;
        // Bytes asked for in one GetProperty: one more than allowed tells "too large".
        let words = u32::try_from(self.limits.max_bytes / 4 + 1).unwrap_or(u32::MAX);
        let mut receive = Receive::new(self.limits.max_bytes);
        loop {
            let step = match c.next_event(deadline, self.limits.timeout)? {
                Event::SelectionNotify(e) if e.requestor == c.window && !receive.incr => {
                    if e.property == NONE {
                        // The owner has no text to give.
                        return Ok(None);
                    }
                    let reply = c
                        .conn
                        .get_property(true, c.window, a.TANDEM_CLIPBOARD, AtomEnum::ANY, 0, words)?
                        .reply()?;
                    let kind = if reply.type_ == a.INCR {
                        Kind::Incr
                    } else if reply.type_ == a.UTF8_STRING {
                        Kind::Text
                    } else {
                        Kind::Other
                    };
                    receive.first(kind, reply.value, reply.bytes_after)?
                }
                Event::PropertyNotify(e)
                    if receive.incr
                        && e.window == c.window
                        && e.atom == a.TANDEM_CLIPBOARD
                        && e.state == Property::NEW_VALUE =>
                {
                    let reply = c
                        .conn
                        .get_property(true, c.window, a.TANDEM_CLIPBOARD, AtomEnum::ANY, 0, words)?
                        .reply()?;
                    receive.chunk(reply.value, reply.bytes_after)?
                }
                _ => continue,
            };
            if let Step::Done(bytes) = step {
                return String::from_utf8(bytes)
                    .map(Some)
                    .map_err(|_| PlatformError::ClipboardNotText);
            }
        }
    }

    fn set_text(&mut self, text: &str) -> Result<(), PlatformError> {
        if text.len() > self.limits.max_bytes {
            return Err(PlatformError::ClipboardTooLarge(self.limits.max_bytes));
        }
        // The new claim ends the previous one (its thread gets SelectionClear).
        let owner = Owner::claim(self.display.as_deref(), text.to_owned())?;
        if let Some(old) = self.owner.replace(owner) {
            old.stop();
        }
        Ok(())
    }
}

impl Drop for X11Clipboard {
    fn drop(&mut self) {
        if let Some(owner) = self.owner.take() {
            owner.stop();
        }
    }
}

/// One connection with an invisible window of its own.
struct Client {
    conn: RustConnection,
    window: Window,
    atoms: Atoms,
}

impl Client {
    fn connect(display: Option<&str>, events: EventMask) -> Result<Client, PlatformError> {
        let (conn, screen) = RustConnection::connect(display)?;
        let root = conn
            .setup()
            .roots
            .get(screen)
            .ok_or_else(|| PlatformError::Connect(format!("the display has no screen {screen}")))?
            .root;
        let window = conn.generate_id()?;
        conn.create_window(
            COPY_DEPTH_FROM_PARENT,
            window,
            root,
            0,
            0,
            1,
            1,
            0,
            WindowClass::INPUT_ONLY,
            0,
            &CreateWindowAux::new().event_mask(events),
        )?;
        let atoms = Atoms::new(&conn)?.reply()?;
        Ok(Client {
            conn,
            window,
            atoms,
        })
    }

    /// The next event, waiting at most until `deadline`.
    fn next_event(&self, deadline: Instant, timeout: Duration) -> Result<Event, PlatformError> {
        loop {
            if let Some(event) = self.conn.poll_for_event()? {
                return Ok(event);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(PlatformError::ClipboardTimeout(timeout));
            }
            let mut fds = [PollFd::new(self.conn.stream(), PollFlags::IN)];
            super::poll_for(&mut fds, left).map_err(|e| PlatformError::Protocol(e.to_string()))?;
        }
    }
}

/// A claim of the selection, answered by a thread of its own.
struct Owner {
    client: Arc<Client>,
    thread: JoinHandle<()>,
}

impl Owner {
    fn claim(display: Option<&str>, text: String) -> Result<Owner, PlatformError> {
        let client = Arc::new(Client::connect(display, EventMask::NO_EVENT)?);
        let (c, a) = (&client.conn, &client.atoms);
        c.set_selection_owner(client.window, a.CLIPBOARD, CURRENT_TIME)?;
        if c.get_selection_owner(a.CLIPBOARD)?.reply()?.owner != client.window {
            return Err(PlatformError::Protocol(
                "the display did not give the helper the clipboard".into(),
            ));
        }
        let serving = client.clone();
        let thread = std::thread::Builder::new()
            .name("clipboard".into())
            .spawn(move || serve(&serving, &text))
            .map_err(|e| PlatformError::Protocol(format!("cannot start a thread: {e}")))?;
        Ok(Owner { client, thread })
    }

    /// Ends the thread (at once if it has ended already) and gives up the claim.
    fn stop(self) {
        let c = &self.client;
        let stop = ClientMessageEvent::new(32, c.window, c.atoms.TANDEM_CLIPBOARD_STOP, [0u32; 5]);
        if c.conn
            .send_event(false, c.window, EventMask::NO_EVENT, stop)
            .and_then(|_| c.conn.flush())
            .is_ok()
        {
            let _ = self.thread.join();
        }
    }
}

/// Answers requests for the selection until it is claimed by another program or we are told to
/// stop. Failures to answer one request (a requestor that went away) do not end it.
fn serve(client: &Client, text: &str) {
    let a = &client.atoms;
    loop {
        match client.conn.wait_for_event() {
            Ok(Event::SelectionRequest(request)) => {
                let _ = answer(client, text, &request);
            }
            Ok(Event::SelectionClear(e)) if e.selection == a.CLIPBOARD => return,
            Ok(Event::ClientMessage(m)) if m.type_ == a.TANDEM_CLIPBOARD_STOP => return,
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

fn answer(
    client: &Client,
    text: &str,
    request: &SelectionRequestEvent,
) -> Result<(), PlatformError> {
    let (c, a) = (&client.conn, &client.atoms);
    // Obsolete requestors give no property: the target names it then (ICCCM 2.2).
    let property = if request.property == NONE {
        request.target
    } else {
        request.property
    };
    let content = (request.selection == a.CLIPBOARD)
        .then(|| content(request.target, a, text))
        .flatten();
    let property = match content {
        Some(Content::Atoms(atoms)) => {
            c.change_property32(
                PropMode::REPLACE,
                request.requestor,
                property,
                AtomEnum::ATOM,
                &atoms,
            )?;
            property
        }
        Some(Content::Bytes(type_, bytes)) => {
            c.change_property8(
                PropMode::REPLACE,
                request.requestor,
                property,
                type_,
                &bytes,
            )?;
            property
        }
        None => NONE,
    };
    let notify = SelectionNotifyEvent {
        response_type: SELECTION_NOTIFY_EVENT,
        sequence: 0,
        time: request.time,
        requestor: request.requestor,
        selection: request.selection,
        target: request.target,
        property,
    };
    c.send_event(false, request.requestor, EventMask::NO_EVENT, notify)?;
    c.flush()?;
    Ok(())
}

/// What an owner writes for one requested target.
#[derive(Debug, PartialEq, Eq)]
enum Content {
    /// A list of atoms (type ATOM, format 32).
    Atoms(Vec<Atom>),
    /// Bytes of the given type (format 8).
    Bytes(Atom, Vec<u8>),
}

/// The answer to a request for `target`, or `None` to refuse it.
fn content(target: Atom, a: &Atoms, text: &str) -> Option<Content> {
    let string = u32::from(AtomEnum::STRING);
    if target == a.TARGETS {
        Some(Content::Atoms(vec![
            a.TARGETS,
            a.UTF8_STRING,
            a.TEXT,
            string,
        ]))
    } else if target == a.UTF8_STRING || target == a.TEXT {
        // TEXT lets the owner choose the encoding (ICCCM 2.6.2): UTF-8.
        Some(Content::Bytes(a.UTF8_STRING, text.as_bytes().to_vec()))
    } else if target == string {
        Some(Content::Bytes(string, latin1(text)))
    } else {
        None
    }
}

/// STRING is ISO Latin-1: characters beyond it become '?'.
fn latin1(text: &str) -> Vec<u8> {
    text.chars()
        .map(|ch| u8::try_from(u32::from(ch)).unwrap_or(b'?'))
        .collect()
}

/// The type of the first property an owner writes in answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The text itself.
    Text,
    /// An INCR transfer follows, in chunks; the value is a lower bound of its size.
    Incr,
    /// Anything else: not the text asked for.
    Other,
}

#[derive(Debug, PartialEq, Eq)]
enum Step {
    More,
    Done(Vec<u8>),
}

/// The bytes of one read, as the owner hands them over, within the bound.
struct Receive {
    max: usize,
    incr: bool,
    data: Vec<u8>,
}

impl Receive {
    fn new(max: usize) -> Receive {
        Receive {
            max,
            incr: false,
            data: Vec::new(),
        }
    }

    /// The owner's first answer; `bytes_after` is what did not fit in the bytes asked for.
    fn first(
        &mut self,
        kind: Kind,
        value: Vec<u8>,
        bytes_after: u32,
    ) -> Result<Step, PlatformError> {
        match kind {
            Kind::Other => Err(PlatformError::ClipboardNotText),
            Kind::Text if bytes_after > 0 || value.len() > self.max => {
                Err(PlatformError::ClipboardTooLarge(self.max))
            }
            Kind::Text => Ok(Step::Done(value)),
            Kind::Incr => {
                let at_least = value
                    .get(..4)
                    .map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                if usize::try_from(at_least).unwrap_or(usize::MAX) > self.max {
                    return Err(PlatformError::ClipboardTooLarge(self.max));
                }
                self.incr = true;
                Ok(Step::More)
            }
        }
    }

    /// One chunk of an INCR transfer; an empty one ends it.
    fn chunk(&mut self, value: Vec<u8>, bytes_after: u32) -> Result<Step, PlatformError> {
        if value.is_empty() && bytes_after == 0 {
            return Ok(Step::Done(std::mem::take(&mut self.data)));
        }
        if bytes_after > 0 || self.data.len() + value.len() > self.max {
            return Err(PlatformError::ClipboardTooLarge(self.max));
        }
        self.data.extend_from_slice(&value);
        Ok(Step::More)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn atoms() -> Atoms {
        Atoms {
            CLIPBOARD: 100,
            TARGETS: 101,
            UTF8_STRING: 102,
            TEXT: 103,
            INCR: 104,
            TANDEM_CLIPBOARD: 105,
            TANDEM_CLIPBOARD_STOP: 106,
        }
    }

    #[test]
    fn owners_offer_text_in_utf8_and_latin1_and_refuse_other_targets() {
        let a = atoms();
        let string = u32::from(AtomEnum::STRING);
        assert_eq!(
            content(a.TARGETS, &a, "x"),
            Some(Content::Atoms(vec![101, 102, 103, string]))
        );
        let text = "ö € 😀";
        let utf8 = Some(Content::Bytes(102, text.as_bytes().to_vec()));
        assert_eq!(content(a.UTF8_STRING, &a, text), utf8);
        assert_eq!(content(a.TEXT, &a, text), utf8);
        assert_eq!(
            content(string, &a, text),
            Some(Content::Bytes(string, vec![0xf6, b' ', b'?', b' ', b'?']))
        );
        assert_eq!(content(999, &a, text), None);
    }

    #[test]
    fn reads_take_text_whole_or_in_chunks_within_the_bound() {
        let mut r = Receive::new(10);
        assert_eq!(
            r.first(Kind::Text, b"hello".to_vec(), 0).unwrap(),
            Step::Done(b"hello".to_vec())
        );

        let mut r = Receive::new(10);
        assert_eq!(
            r.first(Kind::Incr, 8u32.to_ne_bytes().to_vec(), 0).unwrap(),
            Step::More
        );
        assert_eq!(r.chunk(b"hello ".to_vec(), 0).unwrap(), Step::More);
        assert_eq!(r.chunk(b"you".to_vec(), 0).unwrap(), Step::More);
        assert_eq!(
            r.chunk(vec![], 0).unwrap(),
            Step::Done(b"hello you".to_vec())
        );
    }

    #[test]
    fn reads_past_the_bound_or_of_other_types_are_refused() {
        let too_large = |r: Result<Step, PlatformError>| {
            assert!(
                matches!(r, Err(PlatformError::ClipboardTooLarge(10))),
                "{r:?}"
            )
        };
        too_large(Receive::new(10).first(Kind::Text, vec![b'x'; 11], 0));
        too_large(Receive::new(10).first(Kind::Text, vec![b'x'; 8], 4));
        too_large(Receive::new(10).first(Kind::Incr, 11u32.to_ne_bytes().to_vec(), 0));
        let mut r = Receive::new(10);
        r.first(Kind::Incr, 4u32.to_ne_bytes().to_vec(), 0).unwrap();
        r.chunk(vec![b'x'; 6], 0).unwrap();
        too_large(r.chunk(vec![b'x'; 5], 0));
        assert!(matches!(
            Receive::new(10).first(Kind::Other, b"x".to_vec(), 0),
            Err(PlatformError::ClipboardNotText)
        ));
    }
}
