//! The helper's window (issue 16 item 3): a small GTK 4 window that shows a [`View`] and turns
//! the customer's clicks into [`UiEvent`]s. It decides nothing: the words come from
//! src/status.rs and the answers go to the consent record through whoever reads the events.
//!
//! GTK runs on the thread that calls [`run`] (the process's main thread); the helper's core runs
//! elsewhere and talks to the window only through two channels: views in, events out. Every
//! button's label is its accessible name, so a screen reader, and the tests over AT-SPI, find
//! "Allow", "Allow everything this session", "Deny" and "Stop" by those words.
//!
//! D6's pick (src/window/picker.rs: a check button per window, by its title) takes the
//! question's place; the clipboard question ("Send", "Don't send") stands beside the question.
//!
//! While control is allowed, a second small window, the indicator, says who is controlling and
//! has its own Stop; it asks the window manager to keep it above the others (src/window/above.rs).

mod above;
mod notice;
pub mod picker;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use gtk4::glib;
use gtk4::prelude::*;

use crate::consent::Answer;
use crate::status::{self, PickView, View};

/// What the customer did in the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UiEvent {
    /// The pairing code typed, as typed ("4831 0276"; the server checks it), and the server's
    /// address when it was asked for too.
    Join {
        server: Option<String>,
        code: String,
    },
    /// An answer to the question with this id (src/consent.rs).
    Answer { question: u64, answer: Answer },
    /// D6: the windows ticked in the pick for this question (none: "Don't allow").
    Picked { question: u64, windows: Vec<u64> },
    /// The clipboard question with this id: send the copied text or not.
    ClipboardAnswer { question: u64, send: bool },
    /// Stop, in the window or in the indicator: end viewing and control at once.
    Stop,
    /// D4: "Take control back" in the indicator (this is the CSR's computer, given to a customer).
    TakeControl,
    /// The window was closed: Stop, then leave the session. The window is gone after this.
    Close,
}

/// The widgets a [`View`] changes.
struct Shown {
    status: gtk4::Label,
    who: gtk4::Label,
    allowed: gtk4::Label,
    question_box: gtk4::Box,
    question: gtk4::Label,
    question_id: Cell<Option<u64>>,
    /// Where the pick goes, and the pick shown there (rebuilt when it changes).
    pick_slot: gtk4::Box,
    pick: RefCell<Option<PickView>>,
    clipboard_box: gtk4::Box,
    clipboard: gtk4::Label,
    clipboard_id: Cell<Option<u64>>,
    stop: gtk4::Button,
    stop_row: gtk4::Box,
    code_box: gtk4::Box,
    code: gtk4::Entry,
    server_row: gtk4::Box,
    server: gtk4::Entry,
    refused: gtk4::Label,
    close: gtk4::Button,
    /// The session is over: the window stays, with Close, until the customer closes it.
    ended: Cell<bool>,
    indicator: RefCell<Option<Indicator>>,
    /// M4: the notice over the whole screen while the CSR is signed in as another user.
    notice: RefCell<Option<notice::Notice>>,
    events: async_channel::Sender<UiEvent>,
}

struct Indicator {
    window: gtk4::Window,
    label: gtk4::Label,
    take_back: gtk4::Button,
}

/// Shows the window and runs GTK until the window is closed or `views` is closed (the helper's
/// core has finished). Call on the main thread. GTK does not see the process's arguments.
pub fn run(
    views: async_channel::Receiver<View>,
    events: async_channel::Sender<UiEvent>,
) -> glib::ExitCode {
    let app = gtk4::Application::builder()
        .application_id("org.tandem.Helper")
        // Two helpers (two sessions) may run at once; each is its own window.
        .flags(gtk4::gio::ApplicationFlags::NON_UNIQUE)
        .build();
    // `activate` runs once; the channels move into the window built then.
    let once = RefCell::new(Some((views, events)));
    app.connect_activate(move |app| {
        if let Some((views, events)) = once.borrow_mut().take() {
            build(app, views, events);
        }
    });
    app.run_with_args::<&str>(&[])
}

fn send(events: &async_channel::Sender<UiEvent>, event: UiEvent) {
    // Unbounded: never blocks GTK. If the core has gone, there is nobody left to tell.
    let _ = events.try_send(event);
}

fn label(css: Option<&str>) -> gtk4::Label {
    let l = gtk4::Label::builder()
        .wrap(true)
        .xalign(0.0)
        .max_width_chars(48)
        .build();
    if let Some(c) = css {
        l.add_css_class(c);
    }
    l
}

/// A box with `margin` around its children, 10 pixels between them.
fn padded(orientation: gtk4::Orientation, margin: i32) -> gtk4::Box {
    let b = gtk4::Box::new(orientation, 10);
    b.set_margin_top(margin);
    b.set_margin_bottom(margin);
    b.set_margin_start(margin);
    b.set_margin_end(margin);
    b
}

fn stop_button() -> gtk4::Button {
    let stop = gtk4::Button::with_label(status::STOP);
    stop.add_css_class("destructive-action");
    stop.set_tooltip_text(Some(status::STOP_EXPLAINED));
    stop
}

fn build(
    app: &gtk4::Application,
    views: async_channel::Receiver<View>,
    events: async_channel::Sender<UiEvent>,
) {
    let window = gtk4::ApplicationWindow::builder()
        .application(app)
        .title(status::TITLE)
        // Room for the fullest view (three lines of what is allowed, a question and its three
        // answers) from the start: a shown GTK 4 window does not grow when a question appears,
        // and the answers and Stop would be cut off.
        .default_width(400)
        .default_height(520)
        .build();
    let column = padded(gtk4::Orientation::Vertical, 14);
    column.set_valign(gtk4::Align::Start);

    let status = label(Some("heading"));
    let who = label(None);
    let allowed = label(None);

    let question_box = gtk4::Box::new(gtk4::Orientation::Vertical, 6);
    question_box.add_css_class("card");
    let question = label(Some("title-4"));
    let answers = gtk4::Box::new(gtk4::Orientation::Vertical, 6);
    let allow = gtk4::Button::with_label(status::ALLOW);
    allow.add_css_class("suggested-action");
    let allow_all = gtk4::Button::with_label(status::ALLOW_ALL);
    let deny = gtk4::Button::with_label(status::DENY);
    for b in [&allow, &allow_all, &deny] {
        answers.append(b);
    }
    question_box.append(&question);
    question_box.append(&answers);
    question_box.set_visible(false);
    let pick_slot = gtk4::Box::new(gtk4::Orientation::Vertical, 0);
    pick_slot.set_visible(false);

    let clipboard_box = gtk4::Box::new(gtk4::Orientation::Vertical, 6);
    clipboard_box.add_css_class("card");
    let clipboard = label(Some("title-4"));
    let clipboard_answers = gtk4::Box::new(gtk4::Orientation::Horizontal, 6);
    let send_text = gtk4::Button::with_label(status::SEND);
    send_text.add_css_class("suggested-action");
    let dont_send = gtk4::Button::with_label(status::DONT_SEND);
    clipboard_answers.append(&send_text);
    clipboard_answers.append(&dont_send);
    clipboard_box.append(&clipboard);
    clipboard_box.append(&clipboard_answers);
    clipboard_box.set_visible(false);

    let stop = stop_button();
    let stop_row = gtk4::Box::new(gtk4::Orientation::Horizontal, 10);
    stop_row.append(&stop);
    let stop_text = label(None);
    stop_text.set_text(status::STOP_EXPLAINED);
    stop_text.set_hexpand(true);
    stop_row.append(&stop_text);
    let close_text = label(Some("dim-label"));
    close_text.set_text(status::CLOSE_EXPLAINED);

    // The pairing code, typed by the customer when the command line gave none; above it the
    // server's address, when the command line named no server either.
    let code_box = gtk4::Box::new(gtk4::Orientation::Vertical, 6);
    let server_row = gtk4::Box::new(gtk4::Orientation::Vertical, 6);
    let server_label = label(None);
    server_label.set_text(status::SERVER);
    let server = gtk4::Entry::builder()
        .placeholder_text("support.example.com")
        .max_length(256)
        .build();
    server_label.set_mnemonic_widget(Some(&server));
    server_row.append(&server_label);
    server_row.append(&server);
    server_row.set_visible(false);
    code_box.append(&server_row);
    let code_label = label(None);
    code_label.set_text(status::CODE);
    let code = gtk4::Entry::builder()
        .placeholder_text("4831 0276")
        .max_length(32)
        .build();
    // The label names the entry for screen readers (GTK 4.8: the labelled-by relation).
    code_label.set_mnemonic_widget(Some(&code));
    let refused = label(Some("error"));
    refused.set_visible(false);
    let join = gtk4::Button::with_label(status::JOIN);
    join.add_css_class("suggested-action");
    for w in [
        code_label.upcast_ref::<gtk4::Widget>(),
        code.upcast_ref(),
        refused.upcast_ref(),
        join.upcast_ref(),
    ] {
        code_box.append(w);
    }
    code_box.set_visible(false);
    let close = gtk4::Button::with_label(status::CLOSE);
    close.set_visible(false);

    for w in [
        status.upcast_ref::<gtk4::Widget>(),
        code_box.upcast_ref(),
        who.upcast_ref(),
        allowed.upcast_ref(),
        question_box.upcast_ref(),
        pick_slot.upcast_ref(),
        clipboard_box.upcast_ref(),
        stop_row.upcast_ref(),
        close_text.upcast_ref(),
        close.upcast_ref(),
    ] {
        column.append(w);
    }
    window.set_child(Some(&column));

    let shown = Rc::new(Shown {
        status,
        who,
        allowed,
        question_box,
        question,
        question_id: Cell::new(None),
        pick_slot,
        pick: RefCell::new(None),
        clipboard_box,
        clipboard,
        clipboard_id: Cell::new(None),
        stop: stop.clone(),
        stop_row: stop_row.clone(),
        code_box,
        code: code.clone(),
        server_row,
        server: server.clone(),
        refused,
        close: close.clone(),
        ended: Cell::new(false),
        indicator: RefCell::new(None),
        notice: RefCell::new(None),
        events: events.clone(),
    });

    for (button, answer) in [
        (&allow, Answer::Allow),
        (&allow_all, Answer::AllowAll),
        (&deny, Answer::Deny),
    ] {
        let shown = shown.clone();
        button.connect_clicked(move |_| {
            // Answer once: the next view shows the next question, if any.
            if let Some(question) = shown.question_id.take() {
                shown.question_box.set_visible(false);
                send(&shown.events, UiEvent::Answer { question, answer });
            }
        });
    }
    for (button, yes) in [(&send_text, true), (&dont_send, false)] {
        let shown = shown.clone();
        button.connect_clicked(move |_| {
            if let Some(question) = shown.clipboard_id.take() {
                shown.clipboard_box.set_visible(false);
                send(
                    &shown.events,
                    UiEvent::ClipboardAnswer {
                        question,
                        send: yes,
                    },
                );
            }
        });
    }
    let ev = events.clone();
    stop.connect_clicked(move |_| send(&ev, UiEvent::Stop));
    let ev = events.clone();
    let entry = code.clone();
    let (server_entry, server_shown) = (server.clone(), shown.server_row.clone());
    let typed = move || {
        let code = entry.text().trim().to_owned();
        let server = server_shown
            .is_visible()
            .then(|| server_entry.text().trim().to_owned());
        if !code.is_empty() && server.as_ref().is_none_or(|s| !s.is_empty()) {
            send(&ev, UiEvent::Join { server, code });
        }
    };
    let typed_too = typed.clone();
    join.connect_clicked(move |_| typed());
    code.connect_activate(move |_| typed_too());
    let w = window.clone();
    close.connect_clicked(move |_| w.close());

    let ev = events.clone();
    let app_for_close = app.clone();
    let shown_for_close = shown.clone();
    window.connect_close_request(move |_| {
        send(&ev, UiEvent::Close);
        if let Some(i) = shown_for_close.indicator.take() {
            i.window.destroy();
        }
        if let Some(n) = shown_for_close.notice.take() {
            n.window.destroy();
        }
        app_for_close.quit();
        glib::Propagation::Proceed
    });

    let app = app.clone();
    glib::spawn_future_local(async move {
        while let Ok(view) = views.recv().await {
            show(&shown, &view);
        }
        // The helper's core is done: nothing more to show or to answer.
        if let Some(i) = shown.indicator.take() {
            i.window.destroy();
        }
        if let Some(n) = shown.notice.take() {
            n.window.destroy();
        }
        // Why it ended stays on screen until the customer presses Close.
        if !shown.ended.get() {
            app.quit();
        }
    });
    window.present();
}

fn show(shown: &Shown, view: &View) {
    shown.status.set_text(&view.status);
    shown.code_box.set_visible(view.code_entry.is_some());
    shown.server_row.set_visible(view.server_entry);
    if let Some(refused) = &view.code_entry {
        shown.refused.set_text(refused.as_deref().unwrap_or(""));
        shown.refused.set_visible(refused.is_some());
        // Typing again starts from what was typed: the customer fixes it (the server's
        // address first while it is still empty).
        if view.server_entry && shown.server.text().trim().is_empty() {
            shown.server.grab_focus();
        } else {
            shown.code.grab_focus();
        }
    }
    shown
        .stop_row
        .set_visible(view.code_entry.is_none() && !view.ended);
    shown.close.set_visible(view.ended);
    shown.ended.set(view.ended);
    shown.who.set_text(view.who.as_deref().unwrap_or(""));
    shown.who.set_visible(view.who.is_some());
    shown.allowed.set_text(&view.allowed.join("\n"));
    shown.allowed.set_visible(!view.allowed.is_empty());
    match &view.question {
        Some(q) => {
            shown.question.set_text(&q.text);
            shown.question_id.set(Some(q.id));
            shown.question_box.set_visible(true);
        }
        None => {
            shown.question_id.set(None);
            shown.question_box.set_visible(false);
        }
    }
    show_pick(shown, view.pick.as_ref());
    match &view.clipboard {
        Some(q) => {
            shown.clipboard.set_text(&q.text);
            shown.clipboard_id.set(Some(q.id));
            shown.clipboard_box.set_visible(true);
        }
        None => {
            shown.clipboard_id.set(None);
            shown.clipboard_box.set_visible(false);
        }
    }
    shown.stop.set_sensitive(view.stop_enabled);
    let mut indicator = shown.indicator.borrow_mut();
    match (&view.indicator, indicator.as_ref()) {
        (Some(text), Some(i)) => {
            i.window.set_title(Some(text));
            i.label.set_text(text);
            i.take_back.set_visible(view.take_back);
        }
        (Some(text), None) => {
            let i = indicator_window(text, &shown.events);
            i.take_back.set_visible(view.take_back);
            *indicator = Some(i);
        }
        (None, Some(_)) => {
            if let Some(i) = indicator.take() {
                i.window.destroy();
            }
        }
        (None, None) => {}
    }
    drop(indicator);
    let mut notice = shown.notice.borrow_mut();
    match (&view.notice, notice.as_ref()) {
        (Some(text), Some(n)) => n.label.set_text(text),
        (Some(text), None) => *notice = Some(notice::show(text, &shown.events)),
        (None, Some(_)) => {
            if let Some(n) = notice.take() {
                n.window.destroy();
            }
        }
        (None, None) => {}
    }
}

/// D6: the pick where the question goes, built anew when it changes (a new question or another
/// list of windows); the ticks of a pick still shown are kept.
fn show_pick(shown: &Shown, pick: Option<&PickView>) {
    if shown.pick.borrow().as_ref() == pick {
        return;
    }
    while let Some(child) = shown.pick_slot.first_child() {
        shown.pick_slot.remove(&child);
    }
    shown.pick_slot.set_visible(pick.is_some());
    if let Some(p) = pick {
        let (events, question) = (shown.events.clone(), p.id);
        let slot = shown.pick_slot.clone();
        let built = picker::build(&p.text, &p.windows, move |windows| {
            slot.set_visible(false);
            send(&events, UiEvent::Picked { question, windows });
        });
        shown.pick_slot.append(&built);
    }
    *shown.pick.borrow_mut() = pick.cloned();
}

/// The always-visible notice while control runs: who is controlling, and a Stop of its own
/// (D4: and "Take control back" while a customer given this computer's control holds it).
/// Closing it is Stop too: it cannot be put away while someone controls the computer.
fn indicator_window(text: &str, events: &async_channel::Sender<UiEvent>) -> Indicator {
    let window = gtk4::Window::builder()
        .title(text)
        .resizable(false)
        .deletable(false)
        .build();
    let row = padded(gtk4::Orientation::Horizontal, 10);
    let label = label(Some("heading"));
    label.set_text(text);
    let stop = stop_button();
    let take_back = gtk4::Button::with_label(status::TAKE_BACK);
    take_back.add_css_class("suggested-action");
    row.append(&label);
    row.append(&take_back);
    row.append(&stop);
    window.set_child(Some(&row));
    let ev = events.clone();
    take_back.connect_clicked(move |_| send(&ev, UiEvent::TakeControl));
    let ev = events.clone();
    stop.connect_clicked(move |_| send(&ev, UiEvent::Stop));
    let ev = events.clone();
    window.connect_close_request(move |_| {
        send(&ev, UiEvent::Stop);
        glib::Propagation::Stop
    });
    window.connect_map(above::keep_above);
    above::show_without_focus(&window);
    Indicator {
        window,
        label,
        take_back,
    }
}
