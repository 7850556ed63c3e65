//! The customer's side of `join --terminal` (tests, computers without a desktop): questions are
//! printed, answered with a letter on stdin ("y" allow, "a" allow everything this session, "n"
//! deny, "s" stop). A clipboard question ("Carol asks for the text you copied: send it?") is
//! answered with "y" or "n" and comes before the consent question while it is shown. It speaks
//! to the connection through the same [`UiEvent`]s and [`UiUpdate`]s as the window
//! (src/connection/desktop.rs).

use std::io::Write;

use super::{UiEvent, UiUpdate};
use crate::consent::{Answer, Question};
use crate::session::ClipboardQuestion;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

pub async fn run(
    mut updates: UnboundedReceiver<UiUpdate>,
    mut lines: UnboundedReceiver<String>,
    events: UnboundedSender<UiEvent>,
) {
    let mut shown: Option<Question> = None;
    let mut clipboard: Option<ClipboardQuestion> = None;
    // D6: the pick shown (its question id and the windows' ids, numbered from 1).
    let mut pick: Option<(u64, Vec<u64>)> = None;
    let mut stdin_open = true;
    // M4: the notice the window would show over the desktop, said once when it changes.
    let mut notice: Option<String> = None;
    loop {
        tokio::select! {
            update = updates.recv() => match update {
                Some(u) => {
                    match &u {
                        UiUpdate::Question(q) => {
                            shown.clone_from(q);
                            pick = None;
                        }
                        UiUpdate::ClipboardQuestion(q) => clipboard.clone_from(q),
                        UiUpdate::Pick { question, windows } => {
                            shown = None;
                            pick = Some((question.id, windows.iter().map(|w| w.0).collect()));
                        }
                        UiUpdate::View(v) if v.notice != notice => {
                            notice.clone_from(&v.notice);
                            say(&notice.as_ref().map_or_else(
                                || "the notice over your desktop is gone".to_owned(),
                                |n| format!("notice over your desktop: {n}"),
                            ));
                        }
                        _ => {}
                    }
                    say(&words(&u));
                }
                None => return,
            },
            line = lines.recv(), if stdin_open => match line {
                Some(line) => match pick.as_ref().map_or_else(|| read_with_clipboard(&line, clipboard.as_ref(), shown.as_ref()), |p| read_pick(&line, p)) {
                    Ok(event) => {
                        if events.send(event).is_err() {
                            return;
                        }
                    }
                    Err(help) => say(help),
                },
                None => stdin_open = false,
            },
        }
    }
}

/// Reads stdin's lines on a thread of its own (stdin blocks) into `lines`, until it closes.
pub fn read_stdin(lines: UnboundedSender<String>) {
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { return };
            if lines.send(line).is_err() {
                return;
            }
        }
    });
}

fn say(text: &str) {
    if text.is_empty() {
        return;
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// What the terminal prints for an update.
pub fn words(update: &UiUpdate) -> String {
    match update {
        UiUpdate::Joined { name } => format!(
            "joined the session as {name:?}. Questions are asked here; type s and Enter to stop viewing and control at any time."
        ),
        UiUpdate::Question(Some(q)) => format!(
            "question: {} Type y (allow), a (allow everything this session), n (no) or s (stop), then Enter.",
            q.text().replace('\n', " ")
        ),
        UiUpdate::Question(None) => String::new(),
        UiUpdate::Sharing(true) => "your screen is being shown".into(),
        UiUpdate::Sharing(false) => "your screen is no longer shown".into(),
        UiUpdate::ClipboardQuestion(Some(q)) => format!(
            "clipboard question: {} Type y (send it) or n (do not send it), then Enter.",
            q.words()
        ),
        UiUpdate::ClipboardQuestion(None) => String::new(),
        UiUpdate::Notice(n) => format!("note: {n}"),
        UiUpdate::Pick { question, windows } => {
            let mut text = format!("question: {}", question.text());
            if windows.is_empty() {
                text.push_str(
                    " No application window is open. Type n (no) or s (stop), then Enter.",
                );
                return text;
            }
            text.push_str(" Your windows:");
            for (n, (_, title, app)) in windows.iter().enumerate() {
                let app = if app.is_empty() {
                    String::new()
                } else {
                    format!(" ({app})")
                };
                text.push_str(&format!("\n  {}. {title}{app}", n + 1));
            }
            text.push_str("\nType the numbers of the windows to show (such as 1 3), n (no) or s (stop), then Enter.");
            text
        }
        // The window's view: the lines above say the same on a terminal.
        UiUpdate::View(_) => String::new(),
    }
}

/// A line the customer typed while a clipboard question may be shown: "y" and "n" answer it
/// first; anything else goes to [`read`].
pub fn read_with_clipboard(
    line: &str,
    clipboard: Option<&ClipboardQuestion>,
    shown: Option<&Question>,
) -> Result<UiEvent, &'static str> {
    if let Some(q) = clipboard {
        let send = match line.trim().to_lowercase().as_str() {
            "y" | "yes" => true,
            "n" | "no" => false,
            _ => return read(line, shown),
        };
        return Ok(UiEvent::ClipboardAnswer { id: q.id, send });
    }
    read(line, shown)
}

/// A line the customer typed while windows are offered: their numbers (1 is the first listed),
/// no, or Stop.
pub fn read_pick(line: &str, (id, windows): &(u64, Vec<u64>)) -> Result<UiEvent, &'static str> {
    let line = line.trim().to_lowercase();
    match line.as_str() {
        "s" | "stop" => return Ok(UiEvent::Stop),
        "n" | "no" => {
            return Ok(UiEvent::Picked {
                id: *id,
                windows: Vec::new(),
            });
        }
        _ => {}
    }
    let mut picked = Vec::new();
    for word in line
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
    {
        let n: usize = word
            .parse()
            .map_err(|_| "type the windows' numbers (such as 1 3), n or s")?;
        let window = n
            .checked_sub(1)
            .and_then(|i| windows.get(i))
            .ok_or("no window has that number")?;
        if !picked.contains(window) {
            picked.push(*window);
        }
    }
    if picked.is_empty() {
        return Err("type the windows' numbers (such as 1 3), n or s");
    }
    Ok(UiEvent::Picked {
        id: *id,
        windows: picked,
    })
}

/// A line the customer typed: an answer to the question shown, or Stop.
pub fn read(line: &str, shown: Option<&Question>) -> Result<UiEvent, &'static str> {
    let answer = match line.trim().to_lowercase().as_str() {
        "s" | "stop" => return Ok(UiEvent::Stop),
        // D4: on the CSR's own computer, take control back from the customer.
        "t" | "take" => return Ok(UiEvent::TakeControl),
        "y" | "yes" => Answer::Allow,
        "a" | "all" => Answer::AllowAll,
        "n" | "no" => Answer::Deny,
        _ => return Err("type y, a, n or s, then Enter"),
    };
    let q = shown.ok_or("nothing is asked now (s stops viewing and control)")?;
    Ok(UiEvent::Answer { id: q.id, answer })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::Activity;

    #[test]
    fn letters_answer_the_question_shown() {
        let q = Question {
            id: 4,
            activity: Activity::ControlDesktop,
            csr: "Carol".into(),
            detail: None,
        };
        assert_eq!(
            read(" y\n", Some(&q)),
            Ok(UiEvent::Answer {
                id: 4,
                answer: Answer::Allow
            })
        );
        assert_eq!(
            read("A", Some(&q)),
            Ok(UiEvent::Answer {
                id: 4,
                answer: Answer::AllowAll
            })
        );
        assert_eq!(read("s", None), Ok(UiEvent::Stop));
        assert!(read("y", None).is_err(), "no question, no answer");
        assert!(read("maybe", Some(&q)).is_err());
        assert!(words(&UiUpdate::Question(Some(q))).contains("Carol asks to control"));
    }

    #[test]
    fn y_and_n_answer_the_clipboard_question_first_and_s_still_stops() {
        let q = Question {
            id: 4,
            activity: Activity::ViewDesktop,
            csr: "Carol".into(),
            detail: None,
        };
        let c = ClipboardQuestion {
            id: 9,
            csr: "Carol".into(),
        };
        assert_eq!(
            read_with_clipboard("y", Some(&c), Some(&q)),
            Ok(UiEvent::ClipboardAnswer { id: 9, send: true })
        );
        assert_eq!(
            read_with_clipboard("no", Some(&c), Some(&q)),
            Ok(UiEvent::ClipboardAnswer { id: 9, send: false })
        );
        assert_eq!(read_with_clipboard("s", Some(&c), None), Ok(UiEvent::Stop));
        assert_eq!(
            read_with_clipboard("a", Some(&c), Some(&q)),
            Ok(UiEvent::Answer {
                id: 4,
                answer: Answer::AllowAll
            })
        );
        assert_eq!(
            read_with_clipboard("y", None, Some(&q)),
            Ok(UiEvent::Answer {
                id: 4,
                answer: Answer::Allow
            })
        );
        assert_eq!(
            words(&UiUpdate::ClipboardQuestion(Some(c))),
            "clipboard question: Carol asks for the text you copied: send it? Type y (send it) or n (do not send it), then Enter."
        );
    }

    #[test]
    fn numbers_pick_the_windows_listed() {
        let offered = (9, vec![0x20, 0x30, 0x40]);
        assert_eq!(
            read_pick("3, 1 3", &offered),
            Ok(UiEvent::Picked {
                id: 9,
                windows: vec![0x40, 0x20]
            })
        );
        assert_eq!(
            read_pick("n", &offered),
            Ok(UiEvent::Picked {
                id: 9,
                windows: vec![]
            })
        );
        assert_eq!(read_pick("s", &offered), Ok(UiEvent::Stop));
        assert!(read_pick("4", &offered).is_err());
        assert!(read_pick("0", &offered).is_err());
        assert!(read_pick("y", &offered).is_err());
        let shown = words(&UiUpdate::Pick {
            question: Question {
                id: 9,
                activity: Activity::ViewApplication,
                csr: "Carol".into(),
                detail: None,
            },
            windows: vec![(0x20, "Invoice".into(), "libreoffice".into())],
        });
        assert!(shown.contains("1. Invoice (libreoffice)"), "{shown}");
    }
}
