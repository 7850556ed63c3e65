//! D6: the pick in the helper's window. The question ("Carol asks to see the windows you choose,
//! and nothing else.") with one check button per application window (its label, and so its
//! accessible name, is the window's title; the application's name is its tooltip), and two
//! buttons: "Show selected" (only when at least one is ticked) and "Don't allow". The customer's
//! choice is the only source of the windows shown: the server never names them.
//!
//! It decides nothing: the ids ticked go to `answer` (none for "Don't allow"), once, and the
//! session machine (src/session.rs) keeps only windows it offered.

use std::cell::Cell;
use std::rc::Rc;

use gtk4::prelude::*;

/// The pick's button words, which are their accessible names.
pub const SHOW_SELECTED: &str = "Show selected";
pub const DONT_ALLOW: &str = "Don't allow";

/// A window offered: its id, title and application (as `connection::UiUpdate::Pick` lists them).
pub type Offered = (u64, String, String);

/// The ids of the ticked windows, in the order they are listed.
pub fn ticked(offered: &[Offered], checks: &[bool]) -> Vec<u64> {
    offered
        .iter()
        .zip(checks)
        .filter(|(_, on)| **on)
        .map(|((id, _, _), _)| *id)
        .collect()
}

/// The pick as a box to put where the question goes. `answer` is called once, with the windows
/// ticked ("Show selected") or none ("Don't allow"); then the box is insensitive.
pub fn build(
    question: &str,
    offered: &[Offered],
    answer: impl Fn(Vec<u64>) + 'static,
) -> gtk4::Box {
    let column = gtk4::Box::new(gtk4::Orientation::Vertical, 6);
    column.add_css_class("card");
    let text = gtk4::Label::builder()
        .label(question)
        .wrap(true)
        .xalign(0.0)
        .max_width_chars(48)
        .build();
    text.add_css_class("title-4");
    column.append(&text);
    if offered.is_empty() {
        let none = gtk4::Label::new(Some("No application window is open."));
        none.set_xalign(0.0);
        column.append(&none);
    }
    let checks: Vec<gtk4::CheckButton> = offered
        .iter()
        .map(|(_, title, app)| {
            let check = gtk4::CheckButton::with_label(title);
            if !app.is_empty() {
                check.set_tooltip_text(Some(app));
            }
            column.append(&check);
            check
        })
        .collect();
    let show = gtk4::Button::with_label(SHOW_SELECTED);
    show.add_css_class("suggested-action");
    show.set_sensitive(false);
    let deny = gtk4::Button::with_label(DONT_ALLOW);
    column.append(&show);
    column.append(&deny);

    for check in &checks {
        let (show, checks) = (show.clone(), checks.clone());
        check.connect_toggled(move |_| show.set_sensitive(checks.iter().any(|c| c.is_active())));
    }
    let answer = Rc::new(answer);
    let answered = Rc::new(Cell::new(false));
    let offered: Rc<[Offered]> = offered.into();
    for (button, show_them) in [(&show, true), (&deny, false)] {
        let (answer, answered, offered, checks, column) = (
            answer.clone(),
            answered.clone(),
            offered.clone(),
            checks.clone(),
            column.clone(),
        );
        button.connect_clicked(move |_| {
            if answered.replace(true) {
                return;
            }
            column.set_sensitive(false);
            let states: Vec<bool> = checks.iter().map(|c| c.is_active()).collect();
            answer(if show_them {
                ticked(&offered, &states)
            } else {
                Vec::new()
            });
        });
    }
    column
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ticked_windows_are_answered_in_the_listed_order() {
        let offered = vec![
            (1, "Invoice".into(), String::new()),
            (2, "Bank".into(), String::new()),
            (3, "Mail".into(), String::new()),
        ];
        assert_eq!(ticked(&offered, &[true, false, true]), vec![1, 3]);
        assert!(ticked(&offered, &[false, false, false]).is_empty());
        // Fewer states than windows (a list that changed): the rest count as not ticked.
        assert_eq!(ticked(&offered, &[false, true]), vec![2]);
    }
}
