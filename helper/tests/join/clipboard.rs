//! The rest of the control channel end to end, under Xvfb with the real server in this process
//! and the real `tandem-helper` answering on its terminal: the wheel and a modifier held across
//! messages land in the test window, and clipboard text goes both ways: the CSR's text is on the
//! display's CLIPBOARD (read back with xclip), and the customer's copied text reaches the CSR
//! only after the customer's yes on the helper's terminal; after a no, no text does.

use std::io::Write;

use super::*;

/// The display's CLIPBOARD text, as xclip reads it (empty when nobody holds it).
fn xclip_out(display: &str) -> String {
    let out = Command::new("xclip")
        .args(["-o", "-selection", "clipboard", "-display", display])
        .stderr(Stdio::null())
        .output()
        .expect("xclip");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// xclip holding `text` on the display's CLIPBOARD, as a program the customer copied from;
/// killed when dropped.
pub(super) fn xclip_in(display: &str, text: &str) -> Proc {
    // xclip says it holds the clipboard on stderr: on stdout here, to wait for it.
    let mut c = Command::new("sh");
    c.args([
        "-c",
        "exec xclip -i -verbose -selection clipboard -display \"$0\" 2>&1",
        display,
    ]);
    let mut x = Proc::spawn(c);
    let mut stdin = x.stdin.take().expect("stdin");
    stdin.write_all(text.as_bytes()).expect("write");
    drop(stdin);
    x.line(|l| l.contains("Waiting for selection request"));
    x
}

/// The messages the CSR received on the control channel so far.
pub(super) fn control_in(peer: &Peer) -> Vec<Value> {
    let c = peer.0.lock().unwrap();
    c.channel_in
        .iter()
        .filter(|(k, _)| *k == ChannelKind::Control)
        .map(|(_, d)| serde_json::from_slice(d).expect("json"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wheel_held_keys_and_clipboard_both_ways_with_the_customers_yes() {
    let x = xvfb::Xvfb::start("1280x800");
    let display = x.display.clone();
    let (window, _) = test_window(&display);
    let mut s = session().await;
    let (mut helper, peer) = viewing(&mut s, &display).await;
    allowed(
        &mut s.csr,
        &mut helper,
        "control_desktop",
        "Carol asks to control your computer",
    )
    .await;
    // Inside the test window (at 700,100 on the 1280x800 screen).
    let at = json!([900.0 / 1280.0, 250.0 / 800.0]);
    eventually(
        "the CSR's control channel is open and a picture was sent",
        || peer.last_picture().is_some() && peer.send_control(json!({"t": "move", "at": at})),
    )
    .await;

    // Shift held across messages while clicking, then the wheel: two steps down.
    for m in [
        json!({"t": "key", "code": "ShiftLeft", "key": "Shift", "down": true}),
        json!({"t": "down", "at": at, "button": 0}),
        json!({"t": "up", "at": at, "button": 0}),
        json!({"t": "key", "code": "ShiftLeft", "key": "Shift", "down": false}),
        json!({"t": "wheel", "at": at, "dy": 2}),
    ] {
        assert!(peer.send_control(m));
    }
    let click = window.event("button_press");
    assert_eq!(click["button"], 1);
    assert_eq!(click["state"], json!(["shift"]), "{click}");
    for _ in 0..2 {
        let wheel = window.event("button_press");
        assert_eq!(wheel["button"], 5, "{wheel}");
        assert_eq!(wheel["state"], json!([]), "Shift was released: {wheel}");
    }

    // The CSR puts text on Dave's clipboard: the customer is told, and any program pastes it.
    assert!(peer.send_control(json!({"t": "clipboard_set", "text": "from Carol ✓\nline 2"})));
    helper.line(|l| l == "note: Carol put text on your clipboard (19 characters)");
    eventually("the display's clipboard holds Carol's text", || {
        xclip_out(&display) == "from Carol ✓\nline 2"
    })
    .await;

    // Dave copies something; Carol asks for it; Dave says yes on the helper's terminal.
    let _copied = xclip_in(&display, "Dave's serial: 4711-XY");
    assert!(peer.send_control(json!({"t": "clipboard_get"})));
    let q = helper.line(|l| l.starts_with("clipboard question:"));
    assert!(
        q.contains("Carol asks for the text you copied: send it?"),
        "{q}"
    );
    assert!(
        control_in(&peer).is_empty(),
        "nothing is sent before the customer answers"
    );
    helper.type_line("y");
    eventually("Carol receives the copied text", || {
        control_in(&peer) == [json!({"t": "clipboard", "text": "Dave's serial: 4711-XY"})]
    })
    .await;

    // Asked again, Dave says no: Carol is told, and no text comes.
    assert!(peer.send_control(json!({"t": "clipboard_get"})));
    helper.line(|l| l.starts_with("clipboard question:"));
    helper.type_line("n");
    eventually("Carol is told Dave declined", || {
        control_in(&peer).len() == 2
    })
    .await;
    assert_eq!(
        control_in(&peer)[1],
        json!({"t": "clipboard", "none": "declined"})
    );
}
