//! SPEC M4: the notice over the customer's whole screen while the CSR works as another user on
//! a display of its own: who is signed in as whom, that the desktop comes back, and Stop. It is
//! not a lock (the customer's session runs underneath); it says why their screen is not theirs
//! to use for now, and leaves them the way to end it.

use gtk4::prelude::*;

use super::{above, label, send, stop_button};
use crate::status;

pub struct Notice {
    pub window: gtk4::Window,
    pub label: gtk4::Label,
}

pub fn show(text: &str, events: &async_channel::Sender<super::UiEvent>) -> Notice {
    let window = gtk4::Window::builder()
        .title(status::NOTICE_TITLE)
        .decorated(false)
        .deletable(false)
        .build();
    let column = gtk4::Box::new(gtk4::Orientation::Vertical, 24);
    column.set_valign(gtk4::Align::Center);
    column.set_halign(gtk4::Align::Center);
    let label = label(Some("title-1"));
    label.set_text(text);
    label.set_xalign(0.5);
    label.set_justify(gtk4::Justification::Center);
    let stop = stop_button();
    stop.set_halign(gtk4::Align::Center);
    column.append(&label);
    column.append(&stop);
    window.set_child(Some(&column));
    let ev = events.clone();
    stop.connect_clicked(move |_| send(&ev, super::UiEvent::Stop));
    window.connect_close_request(|_| gtk4::glib::Propagation::Stop);
    // Without a window manager (a bare X server) fullscreen is not honoured: the monitor's
    // size is asked for too, and the notice kept above the rest.
    if let Some(monitor) = gtk4::gdk::Display::default().and_then(|d| {
        d.monitors()
            .item(0)
            .and_then(|m| m.downcast::<gtk4::gdk::Monitor>().ok())
    }) {
        let geometry = monitor.geometry();
        window.set_default_size(geometry.width(), geometry.height());
    }
    window.connect_map(above::keep_above);
    window.fullscreen();
    window.present();
    Notice { window, label }
}
