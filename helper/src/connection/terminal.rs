//! The customer's side of `join` on a terminal, until the helper's window lands: questions are
//! printed, answered with a letter on stdin ("y" allow, "a" allow everything this session, "n"
//! deny, "s" stop). It speaks to the connection through the same [`UiEvent`]s and [`UiUpdate`]s
//! as the window will.

use std::io::Write;

use super::{UiEvent, UiUpdate};
use crate::consent::{Answer, Question};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

pub async fn run(
    mut updates: UnboundedReceiver<UiUpdate>,
    mut lines: UnboundedReceiver<String>,
    events: UnboundedSender<UiEvent>,
) {
    let mut shown: Option<Question> = None;
    let mut stdin_open = true;
    loop {
        tokio::select! {
            update = updates.recv() => match update {
                Some(u) => {
                    if let UiUpdate::Question(q) = &u {
                        shown.clone_from(q);
                    }
                    say(&words(&u));
                }
                None => return,
            },
            line = lines.recv(), if stdin_open => match line {
                Some(line) => match read(&line, shown.as_ref()) {
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
            q.activity.question(&q.csr)
        ),
        UiUpdate::Question(None) => String::new(),
        UiUpdate::Sharing(true) => "your screen is being shown".into(),
        UiUpdate::Sharing(false) => "your screen is no longer shown".into(),
        UiUpdate::Notice(n) => format!("note: {n}"),
    }
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
}
